"""Day close survives kill -9 at any moment: `close-day` in a child process is killed again and
again at random points of its file-system work (before a write, fsync, rename, truncation or
unlink) until it finishes, on fresh copies of twelve unclosed days until it was killed twenty
times; after every kill the data directory opens, no record of the closed days is lost, none is in
two archive files, and each is read once; after every round every day is closed and `check`
passes."""
import random
import re
import shutil
import signal
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from kiosk import create_app, services
from kiosk.store.archive import TABLES, Archive, record_day
from kiosk.usecases.days import ENDED
from tests.processes import ROOT, child_env


def run(data_dir, *args, kill_at=0, timeout=300):
    """`close-day`-like commands in a child process, killed before file-system step `kill_at`."""
    return subprocess.run([sys.executable, "-m", "tests.crashpoint", str(kill_at), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=child_env(KIOSK_DATA_DIR=str(data_dir)))


def records(data_dir) -> tuple[dict, list, str, list]:
    """Every record of the archived tables, live or archived: table -> id -> [(where, doc)]; the
    archive's parts; today; and what is wrong (read twice through History, `check` failures)."""
    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "test", "PRINTER_URL": "off"})
    try:
        centre = app.extensions["kiosk"].centre
        found: dict = {t: {} for t in TABLES}
        for table in TABLES:
            for doc in centre.store.all(table):
                found[table].setdefault(doc["id"], []).append(("live", doc))
        parts = Archive(data_dir).parts()
        for part in parts:
            for table, doc in Archive(data_dir).read(part):
                found[table].setdefault(doc["id"], []).append((part.file, doc))
        seen = {t: [d["id"] for _, docs in centre.history.each_day(t) for d in docs] for t in TABLES}
        problems = [f"{t}: {len(ids) - len(set(ids))} read twice" for t, ids in seen.items()
                    if len(ids) != len(set(ids))]
        problems += [message for ok, message in services.check(centre) if not ok]
        return found, parts, centre.today(), problems
    finally:
        app.extensions["kiosk"].close()


@pytest.mark.slow
def test_day_close_survives_kill_9_at_any_moment(tmp_path):
    source = tmp_path / "source"
    source.mkdir(mode=0o700)
    made = subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "simulate", "--days", "12", "--per-day",
                           "60", "--seed", "3", "--no-close", "--quiet"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=child_env(KIOSK_DATA_DIR=str(source)))
    assert made.returncode == 0, made.stderr
    before, _, today, problems = records(source)
    assert not problems and sum(len(v) for v in before.values()) > 1000
    ended = {i for i, [(_, doc)] in before["tickets"].items() if doc["state"] in ENDED and doc["day"] < today}

    dry = tmp_path / "dry"
    shutil.copytree(source, dry)
    whole = run(dry, "close-day")
    assert whole.returncode == 0, whole.stderr
    steps = int(re.search(r"crashpoint steps: (\d+)", whole.stderr).group(1))
    assert steps > 100, "enough moments to kill it at"

    rng = random.Random(20261122)
    kills = rounds = 0
    while kills < 20:
        rounds += 1
        assert rounds <= 30, f"only {kills} kills in {rounds - 1} rounds"
        work = tmp_path / f"work{rounds}"
        shutil.copytree(source, work)
        kills += kill_until_done(work, rng, steps, before, ended)
        assert_all_closed(work, before, ended, today)


def kill_until_done(work, rng, steps, before, ended) -> int:
    """Run close-day on WORK, killed before a random one of a whole run's `steps`, until a run
    finishes by itself; after every kill, check that nothing was lost, archived twice or changed.
    Returns the number of kills."""
    kills = 0
    while True:
        result = run(work, "close-day", kill_at=rng.randint(1, steps))
        if result.returncode == 0:
            return kills
        assert result.returncode == -signal.SIGKILL, result.stderr
        kills += 1
        after, parts, _, problems = records(work)  # the store opens: nothing torn beyond repair
        assert not problems, problems
        for table, expected in before.items():
            missing = expected.keys() - after[table].keys()
            assert not missing, f"{len(missing)} {table} lost after kill {kills}"
            for key, copies in after[table].items():
                files = [where for where, _ in copies if where != "live"]
                assert len(files) == len(set(files)) <= 1, f"{table} {key} archived twice: {files}"
                if key in expected and not (table == "tickets" and key in ended):
                    assert all(doc == expected[key][0][1] for _, doc in copies), f"{table} {key} changed"
        assert kills < 100, "close-day never got to the end"


def assert_all_closed(work, before, ended, today) -> None:
    """Every earlier day archived once, nothing of them left live (but open requests), `check` passes."""
    final, parts, _, problems = records(work)
    assert not problems, problems
    assert {p.day for p in parts} == {doc["day"] for [(_, doc)] in before["tickets"].values()}, "every day archived"
    assert all(p.state == "done" for p in parts) and not Archive(work).leftovers()
    tz = ZoneInfo("Asia/Baghdad")
    for table, expected in before.items():
        assert all(len(final[table][key]) == 1 for key in expected), f"{table}: a record in two places"
        stale = [key for key, copies in final[table].items() for where, doc in copies
                 if where == "live" and record_day(table, doc, tz) < today]
        assert not stale or table in ("requests", "receipts"), f"{len(stale)} {table} of closed days left live"
    assert all(final["tickets"][key][0][1]["state"] == "cancelled" for key in ended)
    check = subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "check"], capture_output=True, text=True,
                           timeout=300, cwd=ROOT, env=child_env(KIOSK_DATA_DIR=str(work)))
    assert check.returncode == 0 and "FAIL" not in check.stdout, check.stdout
