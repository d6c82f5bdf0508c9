"""`flask --app kiosk backup DEST` and `restore SRC` as an operator runs them: a backup taken while the
kiosk serves a burst of tickets (and compacts its store) restores to a store that passes `check` and
holds every ticket acknowledged before the backup started; generations are pruned; restore refuses
a newer store without --force and keeps the data it replaces; bad paths get clear errors; a
restore killed at any moment finishes when run again."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from kiosk.store import Store
from kiosk.store.format import RESTORING
from kiosk.usecases.backup import BACKUP_FILE, GENERATION, generations
from tests.processes import ROOT, child_env, free_port, start_kiosk


def flask(data_dir: Path, *args: str, kill_at: int = 0, **settings: str) -> subprocess.CompletedProcess:
    """`flask --app kiosk ARGS` for DATA_DIR in a child process (killed before step `kill_at`)."""
    return subprocess.run([sys.executable, "-m", "tests.crashpoint", str(kill_at), *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT,
                          env=child_env(KIOSK_DATA_DIR=str(data_dir), KIOSK_PRINTER_URL="off", **settings))


def tickets(data_dir: Path) -> dict[str, dict]:
    """The tickets of a (stopped) data directory."""
    store = Store(data_dir)
    try:
        return {t["id"]: t for t in store.all("tickets")}
    finally:
        store.close()


@pytest.fixture
def centre(tmp_path) -> Path:
    """A data directory with the demo centre and a few tickets."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    assert flask(data, "demo-data").returncode == 0
    return data


@pytest.mark.slow
def test_backup_during_a_burst_restores_every_ticket_acknowledged_before_it(centre, tmp_path):
    dest = tmp_path / "usb"
    dest.mkdir()
    port = free_port()
    env = child_env(KIOSK_DATA_DIR=str(centre), KIOSK_PRINTER_URL="off", KIOSK_COMPACT_EVERY="40",
                    KIOSK_TICKET_RATE_PER_MIN="0")
    server = start_kiosk(env, port, tmp_path / "kiosk.log")
    acked: dict[str, tuple[float, str]] = {}
    refused: list[str] = []
    stop = threading.Event()

    def client(service: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                r = session.post(f"http://127.0.0.1:{port}/api/v1/tickets", json={"service": service}, timeout=10)
                if r.status_code != 201:
                    refused.append(r.text)
                    return
                acked[r.json()["ticket"]["id"]] = (time.monotonic(), r.json()["ticket"]["number"])

    threads = [threading.Thread(target=client, args=(s,)) for s in "AB"]
    try:
        for t in threads:
            t.start()
        while len(acked) < 150 and not refused and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        assert not refused, refused[:1]
        started = time.monotonic()
        made = flask(centre, "backup", str(dest), "--keep", "2")
        count_during = len(acked)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert not refused, refused[:1]
    assert made.returncode == 0, made.stdout + made.stderr
    assert "checksums verified" in made.stdout and "FAIL" not in made.stdout
    [generation] = generations(dest)
    info = json.loads((generation / BACKUP_FILE).read_text())
    before = {i for i, (at, _) in acked.items() if at < started}
    assert len(before) >= 150 and count_during > len(before), "tickets kept coming during the backup"

    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    result = flask(restored, "restore", str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"(commit {info['seq']})" in result.stdout and "FAIL" not in result.stdout
    held = tickets(restored)
    assert before <= held.keys(), f"{len(before - held.keys())} acknowledged tickets missing"
    assert all(held[i]["number"] == acked[i][1] for i in held if i in acked)
    check = flask(restored, "check")
    assert check.returncode == 0 and "FAIL" not in check.stdout, check.stdout


def test_generations_are_pruned_to_keep(centre, tmp_path):
    dest = tmp_path / "usb"
    dest.mkdir()
    (dest / "holiday-photos").mkdir()  # other folders on the stick are never touched
    names = []
    for _ in range(4):
        result = flask(centre, "backup", str(dest), "--keep", "2")
        assert result.returncode == 0, result.stdout + result.stderr
        names.append(re.search(r"to (\S+):", result.stdout).group(1))
    kept = [p.name for p in generations(dest)]
    assert kept == [Path(n).name for n in names[-2:]]
    assert "deleted old generation" in result.stdout and (dest / "holiday-photos").is_dir()
    assert all(GENERATION.match(name) for name in kept)
    assert not [p for p in dest.iterdir() if p.name.startswith(".")], "no staging folder left"


def test_restore_refuses_a_newer_store_without_force_and_keeps_what_it_replaces(centre, tmp_path):
    dest = tmp_path / "usb"
    dest.mkdir()
    assert flask(centre, "backup", str(dest)).returncode == 0
    old = tickets(centre)
    app_env = child_env(KIOSK_DATA_DIR=str(centre), KIOSK_PRINTER_URL="off")
    subprocess.run([sys.executable, "-c", "from kiosk import create_app, services\n"
                    "app = create_app()\nc = app.extensions['kiosk'].centre\n"
                    "[services.issue_ticket(c, service='A') for _ in range(3)]\napp.extensions['kiosk'].close()"],
                   check=True, env=app_env, cwd=ROOT, timeout=60)
    newer = tickets(centre)
    assert len(newer) == len(old) + 3

    refused = flask(centre, "restore", str(dest))
    assert refused.returncode == 1
    assert "newer than the backup" in refused.stderr and "--force" in refused.stderr
    assert tickets(centre) == newer, "nothing changed"

    forced = flask(centre, "restore", str(dest), "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    replaced = Path(re.search(r"kept in (\S+)", forced.stdout).group(1))
    assert tickets(centre) == old
    assert tickets(replaced) == newer, "the replaced data is kept, whole"
    assert flask(centre, "check").returncode == 0


def test_bad_paths_get_clear_errors(centre, tmp_path):
    cases = [
        (["backup", str(tmp_path / "not-mounted")], "does not exist: create it, or mount"),
        (["backup", str(centre / "keys")], "inside the data directory"),
        (["restore", str(tmp_path / "nowhere")], "does not exist (is the backup disk mounted?)"),
        (["restore", str(tmp_path)], "neither a backup"),
    ]
    (tmp_path / "a-file").write_text("x")
    cases.append((["backup", str(tmp_path / "a-file")], "is not a folder"))
    for args, message in cases:
        result = flask(centre, *args)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_damaged_or_foreign_backup_is_refused(centre, tmp_path):
    dest = tmp_path / "usb"
    dest.mkdir()
    assert flask(centre, "backup", str(dest)).returncode == 0
    [generation] = generations(dest)
    other = flask(centre, "restore", str(generation), KIOSK_CENTRE="SUL-02")
    assert other.returncode == 1 and "backup of centre DEMO" in other.stderr and "SUL-02" in other.stderr
    segment = sorted((generation / "store" / "journal").iterdir())[-1]
    os.chmod(segment, 0o600)
    segment.write_bytes(segment.read_bytes()[:-3])
    damaged = flask(centre, "restore", str(generation), "--force")
    assert damaged.returncode == 1 and "is damaged" in damaged.stderr and segment.name in damaged.stderr


def test_restore_needs_the_kiosk_stopped(centre, tmp_path):
    dest = tmp_path / "usb"
    dest.mkdir()
    assert flask(centre, "backup", str(dest)).returncode == 0
    store = Store(centre)  # the serving kiosk holds the lock
    try:
        result = flask(centre, "restore", str(dest), "--force")
        assert result.returncode == 1 and "stop it before restoring" in result.stderr
    finally:
        store.close()


@pytest.mark.slow
def test_a_restore_killed_at_any_moment_finishes_when_run_again(centre, tmp_path):
    dest = tmp_path / "usb"
    dest.mkdir()
    assert flask(centre, "backup", str(dest)).returncode == 0
    old = tickets(centre)
    dry = flask(centre, "restore", str(dest), "--force")
    steps = int(dry.stderr.rsplit("crashpoint steps: ", 1)[1].split()[0])
    rng = random.Random(15)
    for kill_at in sorted(rng.sample(range(1, steps + 1), min(steps, 12))):
        killed = flask(centre, "restore", str(dest), "--force", kill_at=kill_at)
        assert killed.returncode == -9, (kill_at, killed.stderr)
        if (centre / RESTORING / "READY").exists():
            refused = flask(centre, "check")
            assert refused.returncode != 0 and "run the same" in refused.stderr
        again = flask(centre, "restore", str(dest), "--force")
        assert again.returncode == 0, (kill_at, again.stdout, again.stderr)
        assert tickets(centre) == old
        assert flask(centre, "check").returncode == 0
        assert not (centre / RESTORING).exists()


def test_backups_stay_consistent_while_the_store_compacts_under_them(centre, tmp_path):
    """Tickets issued and the store compacted (segments trimmed, snapshot replaced) over and over
    while backups are taken: each generation opens, passes the checks and holds every ticket
    acknowledged before it started."""
    from kiosk import create_app, services
    from kiosk.usecases.backup import backup, read_backup
    # as on a centre that syncs: central has everything, so each compaction deletes the segments
    # before the new snapshot (a copy that read the old snapshot then misses them, and reads again)
    (centre / "sync").mkdir(mode=0o700, exist_ok=True)
    (centre / "sync" / "state.json").write_text(json.dumps({"acked_seq": 10 ** 9}))
    app = create_app({"DATA_DIR": str(centre), "SECRET_KEY": "t", "PRINTER_URL": "off", "TICKET_RATE_PER_MIN": 0})
    state = app.extensions["kiosk"]
    c = state.centre
    acked: dict[str, float] = {}
    stop = threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            n = 0
            while not stop.is_set():
                ticket = services.issue_ticket(c, service="ABC"[n % 3])
                acked[ticket["id"]] = time.monotonic()
                n += 1
                if n % 5 == 0:
                    c.store.compact()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    dest = tmp_path / "usb"
    dest.mkdir()
    worker = threading.Thread(target=work)
    worker.start()
    taken = []
    try:
        for _ in range(3):
            while len(acked) < 30 * (len(taken) + 1):
                time.sleep(0.01)
            started = time.monotonic()
            result = backup(centre, dest, centre="DEMO", clock=state.clock, config=app.config, keep=5)
            taken.append((result, {i for i, at in acked.items() if at < started}))
    finally:
        stop.set()
        worker.join(30)
        state.close()
    assert not failures, failures
    for result, before in taken:
        assert all(ok for ok, _ in result["checks"]), result["checks"]
        read_backup(result["path"])  # every checksum still matches
        restored = tmp_path / f"r{result['seq']}"
        restored.mkdir(mode=0o700)
        done = flask(restored, "restore", str(result["path"]))
        assert done.returncode == 0, done.stdout + done.stderr
        assert before <= tickets(restored).keys()


def test_a_copy_that_loses_a_segment_to_compaction_is_read_again(centre):
    """The journal segments a copy needs are trimmed by a compaction in the middle of it (central has
    acknowledged them): the copy notices and reads everything again, from the new snapshot."""
    from kiosk import create_app, services
    from kiosk.usecases.backup import _consistent_copy
    app = create_app({"DATA_DIR": str(centre), "SECRET_KEY": "t", "PRINTER_URL": "off", "TICKET_RATE_PER_MIN": 0})
    state = app.extensions["kiosk"]
    c = state.centre
    try:
        for round_no in range(3):  # three segments, none acknowledged yet
            for _ in range(4):
                services.issue_ticket(c, service="A")
            c.store.compact()
        (centre / "sync").mkdir(mode=0o700, exist_ok=True)
        (centre / "sync" / "state.json").write_text(json.dumps({"acked_seq": 10 ** 9}))
        copied: dict[str, bytes] = {}
        compacted = []

        def put(rel: str, data: bytes) -> None:
            copied[rel] = data
            if not compacted:  # after the first segment is read, central has it all and the store compacts
                services.issue_ticket(c, service="B")
                compacted.append(c.store.compact())

        result = _consistent_copy(centre, 5, put, copied.clear)
    finally:
        state.close()
    assert compacted[0]["segments_removed"] >= 2
    assert result["attempts"] == 2
    assert result["snapshot_seq"] == compacted[0]["seq"] and result["seq"] == c.store.seq
    assert all(name.startswith("store/journal/") for name in copied)
