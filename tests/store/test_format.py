"""Store format versions: a data directory written by the release before format 2
(tests/fixtures/store-v1.tar.gz, made by tests/fixtures/make_store_v1.py) is upgraded at start and
passes `check`; kill -9 before any file-system step of the upgrade leaves it upgradable, with every
ticket there; a directory of a newer format is refused by the app, the store and the commands."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kiosk import create_app
from kiosk.clock import FrozenClock
from kiosk.store import Store
from kiosk.store.format import CURRENT, FORMAT_FILE, FormatError, read_format
from kiosk.store.journal import decode_commit, list_segments
from tests.processes import ROOT, child_env

FIXTURE = ROOT / "tests" / "fixtures" / "store-v1.tar.gz"


def unpack(tmp_path: Path) -> Path:
    """A fresh copy of the format 1 data directory."""
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="tar")
    return tmp_path / "store-v1"


def raw_tickets(data_dir: Path) -> dict[str, dict]:
    """Every ticket the files hold, live or archived, read without the store's code: the snapshot,
    the journal's commits after it, and the archive files."""
    store = data_dir / "store"
    tickets: dict[str, dict] = {}
    covered = 0
    if (store / "snapshot.json").exists():
        snap = json.loads((store / "snapshot.json").read_bytes())
        tickets.update(snap["tables"].get("tickets", {}))
        covered = snap["seq"]
    for _, path in list_segments(store / "journal"):
        for line in path.read_bytes().splitlines(keepends=True):
            commit = decode_commit(line)
            if commit is None or commit["s"] <= covered:
                continue
            for change in commit["c"]:
                if change["t"] != "tickets":
                    continue
                if change["o"] == "put":
                    tickets[change["k"]] = change["d"]
                elif change["o"] == "del":
                    tickets.pop(change["k"], None)
                else:
                    tickets.clear()
    manifest = data_dir / "archive" / "MANIFEST.json"
    for part in json.loads(manifest.read_bytes())["parts"] if manifest.exists() else []:
        with gzip.open(data_dir / "archive" / part["file"], "rt", encoding="utf-8") as fh:
            for line in list(fh)[1:]:
                record = json.loads(line)
                if record["t"] == "tickets":
                    tickets.setdefault(record["k"], record["d"])
    return tickets


def run(data_dir: Path, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    """A kiosk command in a child process, killed with SIGKILL before file-system step `kill_at`."""
    return subprocess.run([sys.executable, "-m", "tests.crashpoint", str(kill_at), *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=child_env(KIOSK_DATA_DIR=str(data_dir)))


def assert_upgraded(data_dir: Path, tickets: dict) -> None:
    """`check` passes on format 2, and every ticket of the old directory is there unchanged."""
    result = run(data_dir, "check")
    assert result.returncode == 0 and "FAIL" not in result.stdout, result.stdout + result.stderr
    assert f"store format {CURRENT}" in result.stdout
    info = read_format(data_dir)
    assert info["format"] == CURRENT and info["store_id"]
    snapshot = json.loads((data_dir / "store" / "snapshot.json").read_bytes())
    assert snapshot["format"] == CURRENT and snapshot["store_id"] == info["store_id"]
    assert raw_tickets(data_dir) == tickets


def test_the_fixture_is_the_old_format(tmp_path):
    old = unpack(tmp_path)
    assert not (old / FORMAT_FILE).exists()
    assert json.loads((old / "store" / "snapshot.json").read_bytes())["format"] == 1
    tickets = raw_tickets(old)
    assert len(tickets) == 50 and {t["day"] for t in tickets.values()} >= {"2026-12-02", "2026-12-05"}


def test_an_old_data_directory_is_upgraded_at_start_and_passes_check(tmp_path):
    old = unpack(tmp_path)
    tickets = raw_tickets(old)
    first = run(old, "check")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "upgraded now from format 1" in first.stdout
    assert_upgraded(old, tickets)
    assert read_format(old)["upgrades"][0]["from"] == 1
    again = run(old, "check")  # a second start finds nothing to do
    assert "upgraded" not in again.stdout and len(read_format(old)["upgrades"]) == 1


def test_the_app_upgrades_before_handing_out_the_store(tmp_path):
    old = unpack(tmp_path)
    tickets = raw_tickets(old)
    app = create_app({"DATA_DIR": str(old), "SECRET_KEY": "t", "PRINTER_URL": "off"})
    try:
        centre = app.extensions["kiosk"].centre
        assert read_format(old)["format"] == CURRENT
        assert {t["id"] for t in centre.store.all("tickets")} | {
            t["id"] for _, docs in centre.history.each_day("tickets") for t in docs} == set(tickets)
    finally:
        app.extensions["kiosk"].close()


@pytest.mark.slow
def test_kill_9_at_every_step_of_the_upgrade_leaves_it_upgradable(tmp_path):
    dry = unpack(tmp_path / "dry")
    tickets = raw_tickets(dry)
    whole = run(dry, "check")
    steps = int(whole.stderr.rsplit("crashpoint steps: ", 1)[1].split()[0])
    assert steps >= 5, "the upgrade writes something"
    for kill_at in range(1, steps + 1):
        work = unpack(tmp_path / f"k{kill_at}")
        killed = run(work, "check", kill_at=kill_at)
        assert killed.returncode == -9, (kill_at, killed.stdout, killed.stderr)
        assert raw_tickets(work) == tickets, f"a ticket lost or changed by a kill before step {kill_at}"
        # killed again, at an earlier step of the next attempt, then left to finish
        if kill_at > 1:
            assert run(work, "check", kill_at=kill_at - 1).returncode in (-9, 0)
        assert_upgraded(work, tickets)


def test_a_newer_format_is_refused_everywhere(tmp_path):
    newer = unpack(tmp_path)
    (newer / FORMAT_FILE).write_text(json.dumps({"format": CURRENT + 1, "store_id": "X"}), encoding="utf-8")
    before = {p: p.read_bytes() for p in newer.rglob("*") if p.is_file()}
    with pytest.raises(FormatError, match=rf"store format {CURRENT + 1}.*up to {CURRENT}.*Install the release"):
        create_app({"DATA_DIR": str(newer), "SECRET_KEY": "t", "PRINTER_URL": "off"})
    with pytest.raises(FormatError, match=f"format {CURRENT + 1}"):
        Store(newer, clock=FrozenClock("2026-12-05T09:00:00Z"))
    for command in (["check"], ["close-day"], ["serve", "--port", "1"], ["backup", str(tmp_path)]):
        result = run(newer, *command)
        assert result.returncode != 0 and f"store format {CURRENT + 1}" in result.stderr, (command, result.stderr)
    assert {p: p.read_bytes() for p in newer.rglob("*") if p.is_file()} == before, "nothing touched"


def test_a_new_data_directory_starts_in_the_current_format(tmp_path):
    store = Store(tmp_path / "new", clock=FrozenClock("2026-12-05T09:00:00Z"))
    try:
        assert store.upgraded_from == []
        info = read_format(tmp_path / "new")
        assert info["format"] == CURRENT and info["store_id"] == store.storage.store_id
        store.put("tickets", {"id": "T1", "day": "2026-12-05"})
        store.compact()
    finally:
        store.close()
    snapshot = json.loads((tmp_path / "new" / "store" / "snapshot.json").read_bytes())
    assert snapshot["store_id"] == info["store_id"]


def test_a_snapshot_of_another_store_is_refused(tmp_path):
    clock = FrozenClock("2026-12-05T09:00:00Z")
    for name in ("a", "b"):
        store = Store(tmp_path / name, clock=clock)
        store.put("tickets", {"id": name})
        store.compact()
        store.close()
    (tmp_path / "a" / "store" / "snapshot.json").write_bytes((tmp_path / "b" / "store" / "snapshot.json").read_bytes())
    with pytest.raises(Exception, match="belongs to store"):
        Store(tmp_path / "a", clock=clock)
