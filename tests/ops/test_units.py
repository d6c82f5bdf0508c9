"""install-service / uninstall-service: the generated systemd units pass `systemd-analyze verify`,
say what they must (user, paths, hardening, timer jitter), the server unit's command starts a
kiosk that answers, and uninstall removes exactly what install wrote (the data stays)."""
from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from kiosk.ops import units
from tests.processes import free_port


def tree(root: Path) -> set[str]:
    """Every path below root."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def unit_settings(text: str) -> dict[str, list[str]]:
    """key -> values of a unit file."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.fixture
def installed(app, tmp_path):
    """Units written and enabled below a temporary root; (root, data dir, port, CLI result)."""
    root, data = tmp_path / "root", tmp_path / "srv" / "data"
    port = free_port()
    result = app.test_cli_runner().invoke(args=[
        "install-service", "--root", str(root), "--data-dir", str(data), "--user", "kiosk",
        "--host", "127.0.0.1", "--port", str(port), "--sync-jitter", "45",
        "--backup-dir", str(tmp_path / "usb" / "backups"), "--backup-at", "2:05"])
    assert result.exit_code == 0, result.output
    return root, data, port


def test_units_pass_systemd_analyze_verify(installed):
    """systemd's own checker accepts every unit (systemd is not PID 1 here)."""
    root, _, _ = installed
    assert shutil.which("systemd-analyze"), "install Debian's systemd package (./run test does)"
    paths = sorted(str(p) for p in (root / "etc/systemd/system").glob("centre-kiosk*.*") if p.suffix != ".json")
    assert len(paths) == 6
    result = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_unit_contents(installed):
    """User, data directory (0700), hardening, restart, timer jitter, enabled symlinks."""
    root, data, port = installed
    unit_dir = root / "etc/systemd/system"
    server = unit_settings((unit_dir / units.SERVER).read_text())
    assert server["User"] == ["kiosk"] and server["Group"] == ["kiosk"]
    assert f"KIOSK_DATA_DIR={data}" in server["Environment"]
    assert server["ReadWritePaths"] == [str(data)] and server["ProtectSystem"] == ["strict"]
    assert server["NoNewPrivileges"] == ["yes"] and server["PrivateTmp"] == ["yes"]
    assert server["Restart"] == ["on-failure"]
    assert shlex.split(server["ExecStart"][0])[-5:] == ["serve", "--host", "127.0.0.1", "--port", str(port)]
    sync = unit_settings((unit_dir / units.SYNC).read_text())
    assert sync["Type"] == ["oneshot"] and sync["User"] == ["kiosk"] and "--quiet" in sync["ExecStart"][0]
    assert sync["ReadWritePaths"] == [str(data)]
    timer = unit_settings((unit_dir / units.TIMER).read_text())
    assert timer["RandomizedDelaySec"] == ["45s"] and timer["OnUnitInactiveSec"] == ["60s"]
    browser = unit_settings((unit_dir / units.BROWSER).read_text())
    assert browser["User"] == ["kiosk-screen"] and browser["Restart"] == ["always"]
    argv = shlex.split(browser["ExecStart"][0])
    assert argv[0].endswith("cage") and "--kiosk" in argv and argv[-1] == f"http://127.0.0.1:{port}/kiosk"
    assert browser["InaccessiblePaths"] == [f"-{data}"]
    backup = unit_settings((unit_dir / units.BACKUP).read_text())
    usb = str(data.parent.parent / "usb" / "backups")
    assert backup["User"] == ["kiosk"] and backup["Type"] == ["oneshot"] and backup["RequiresMountsFor"] == [usb]
    assert shlex.split(backup["ExecStart"][0])[-4:] == ["backup", usb, "--keep", "7"]
    assert backup["ReadWritePaths"] == [str(data), usb], "the backup writes its folder and nothing else"
    nightly = unit_settings((unit_dir / units.BACKUP_TIMER).read_text())
    assert nightly["OnCalendar"] == ["*-*-* 02:05:00"] and nightly["Persistent"] == ["true"]
    target = root / str(data).lstrip("/")
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for wants, name in (("multi-user.target.wants", units.SERVER), ("timers.target.wants", units.TIMER),
                        ("graphical.target.wants", units.BROWSER), ("timers.target.wants", units.BACKUP_TIMER)):
        link = unit_dir / wants / name
        assert link.is_symlink() and os.readlink(link) == f"/etc/systemd/system/{name}"


def test_server_unit_command_serves_the_kiosk(installed, tmp_path):
    """The server unit's ExecStart, run with the unit's environment and working directory (what
    `systemctl start` would do), answers on its port."""
    root, data, port = installed
    server = unit_settings((root / "etc/systemd/system" / units.SERVER).read_text())
    env = dict(os.environ)
    env.update(dict(item.split("=", 1) for item in server["Environment"]))
    env["KIOSK_DATA_DIR"] = str(tmp_path / "live-data")  # the unit's path lives below the test root
    env["KIOSK_INSTANCE_PATH"] = str(tmp_path / "etc")
    if os.environ.get("PYTHONPATH"):  # keep the faketime pass's own path after the unit's (made absolute)
        extra = [str(Path(p).resolve()) for p in os.environ["PYTHONPATH"].split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""), *extra])
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(shlex.split(server["ExecStart"][0]), env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        with requests.Session() as http:
            for _ in range(600):
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    health = http.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.05)
            assert health.status_code in (200, 503) and health.json()["checks"]["store"]["writable"]
            assert http.get(f"http://127.0.0.1:{port}/kiosk", timeout=5).status_code == 200
    finally:
        proc.terminate()
        code = proc.wait(30)
    assert code == 0, log.read_text(errors="replace")[-3000:]


def test_uninstall_removes_exactly_what_install_wrote(app, tmp_path):
    """uninstall-service leaves the root as it was, but for the data directory it keeps."""
    root, data = tmp_path / "root", tmp_path / "srv" / "data"
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (root / "etc/systemd/system/other.service").write_text("[Service]\nExecStart=/bin/true\n")
    # a real system's wants folder is never empty (systemctl removes one it empties)
    (root / "etc/systemd/system/multi-user.target.wants/other.service").symlink_to("/etc/systemd/system/other.service")
    before = tree(root)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["install-service", "--root", str(root), "--data-dir", str(data),
                                 "--backup-dir", "/media/usb/kiosk-backups"])
    assert result.exit_code == 0, result.output
    assert (root / "etc/systemd/system" / units.BACKUP_TIMER).exists()
    assert len(tree(root) - before) > 8
    result = runner.invoke(args=["uninstall-service", "--root", str(root)])
    assert result.exit_code == 0, result.output
    data_paths = {str(Path(str(data).lstrip("/"))), *(str(p) for p in Path(str(data).lstrip("/")).parents
                                                        if str(p) != ".")}
    assert tree(root) - data_paths == before
    assert (root / str(data).lstrip("/")).is_dir()
    again = runner.invoke(args=["uninstall-service", "--root", str(root)])
    assert again.exit_code != 0 and "nothing to remove" in again.output


def test_no_enable_and_no_browser(app, tmp_path):
    """--no-enable writes the units only; --no-browser leaves the touchscreen unit out."""
    root = tmp_path / "root"
    result = app.test_cli_runner().invoke(args=["install-service", "--root", str(root), "--data-dir",
                                                str(tmp_path / "d"), "--no-enable", "--no-browser"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in (root / "etc/systemd/system").iterdir()}
    assert names == {units.SERVER, units.SYNC, units.TIMER, "centre-kiosk.manifest.json"}
    for wrong, says in ((["--backup-dir", "/media/usb", "--backup-at", "25:00"], "not a time of day"),
                        (["--backup-dir", "relative/folder"], "absolute path")):
        refused = app.test_cli_runner().invoke(args=["install-service", "--root", str(tmp_path / "other"),
                                                     "--data-dir", str(tmp_path / "d"), *wrong])
        assert refused.exit_code == 2 and says in refused.output, refused.output
        assert not (tmp_path / "other").exists(), "nothing written"
