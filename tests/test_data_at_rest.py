"""Data at rest is owner-only: a new data directory and everything the centre writes into it
(store, journal, keys, prints, sync state) is 0700/0600, central's SQLite file is 0600, and the
`check` commands report looser modes and repair them with --fix."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from kiosk import cases, create_app, keys, services
from kiosk.clock import FrozenClock
from sync import files
from sync.agent import write_state


def _loose(root: Path) -> list[str]:
    """Every path under `root` (and root) with a group or other permission bit."""
    out = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & 0o077:
            out.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return out


def test_nothing_in_a_new_data_directory_is_readable_by_others(tmp_path):
    """The audit found the data directory 0755 and the journal (with PIN hashes) 0644."""
    data = tmp_path / "new" / "data"
    clock = FrozenClock("2026-11-22T06:00:00Z")
    app = create_app({"DATA_DIR": str(data), "PRINTER_URL": ""}, clock=clock)  # preview printer: files
    with app.app_context():
        centre = app.extensions["kiosk"].centre
        services.load_demo_data(centre)
        ticket = services.issue_ticket(centre, service="A")
        services.call_next(centre, counter="1", by="demo")
        services.act(centre, ticket["id"], "start", by="demo")
        case = cases.register_case(centre, ticket_id=ticket["id"], kind="request", reference="AB123456",
                                   by="demo", contact="0770 000 0000")
        assert case["id"]
        keys.load_or_create_centre_key(data)  # the centre's receipt signing key
        write_state(data, {"acked_seq": 0})
        centre.store.compact()
        app.extensions["kiosk"].close()
    written = {p.relative_to(data).parts[0] for p in data.rglob("*")}
    assert {"store", "secret.key", "device.json"} <= written and len(written) >= 5, written
    assert _loose(tmp_path / "new") == []


def test_check_reports_and_fixes_loose_modes(app, data_dir, centre):
    """`flask --app kiosk check` fails on a readable journal and `--fix` takes the bits off."""
    journal = next((data_dir / "store").rglob("*.jsonl"))
    os.chmod(journal, 0o644)
    os.chmod(data_dir, 0o755)
    runner = app.test_cli_runner()
    with app.app_context():
        result = runner.invoke(args=["check"])
        assert result.exit_code == 1
        assert f"{journal} has mode 0644" in result.output and "--fix" in result.output
        fixed = runner.invoke(args=["check", "--fix"])
        assert fixed.exit_code == 0, fixed.output
        assert "ok    data directory readable by its owner only" in fixed.output
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600 and stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert runner.invoke(args=["check"]).exit_code == 0


def test_check_never_follows_a_symbolic_link(data_dir, tmp_path):
    """A link in the data directory is reported for a human to look at, never chmodded through."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    os.chmod(outside, 0o644)
    (data_dir / "link").symlink_to(outside)
    found = files.loose_modes(data_dir)
    assert [f.problem for f in found if f.path.name == "link"] == ["symlink"]
    left = files.tighten(found)
    assert [f.path.name for f in left] == ["link"]
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644


def test_central_sqlite_file_is_owner_only_and_checked(tmp_path):
    """Central's SQLite file (operator password hashes, every centre's records) was 0644."""
    from sync.central import create_app as central_app
    path = tmp_path / "instance" / "central.sqlite3"
    path.parent.mkdir(mode=0o700)
    app = central_app({"CENTRAL_DATABASE_URL": f"sqlite:///{path}", "TESTING": True,
                       "CENTRAL_RECEIPTS_DIR": str(tmp_path / "receipts")})
    app.extensions["central"].engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + extra)
        assert not sidecar.exists() or stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    runner = app.test_cli_runner()
    assert runner.invoke(args=["check"]).exit_code == 0
    os.chmod(path, 0o644)
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1 and "has mode 0644" in result.output
    assert runner.invoke(args=["check", "--fix"]).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
