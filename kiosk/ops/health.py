"""The centre machine's health: what `GET /healthz` answers and what the supervisor screen warns
about. Plain values in, plain values out: the caller hands over the data directory, the settings,
the clock and two status functions (printer, sync), so this module reads no request and opens no
store. No check reports anything about a citizen or a staff member."""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Callable

OK, DEGRADED, FAIL = "ok", "degraded", "fail"
_RANK = {OK: 0, DEGRADED: 1, FAIL: 2}
PRINTER_TROUBLE = ("offline", "paper_out", "error")
CLOCK_WARN_S = 300  # a kiosk clock this far from central's prints misleading times on tickets


def _worst(*states: str) -> str:
    """The worst of some check states."""
    return max(states, key=_RANK.__getitem__, default=OK)


def _parse(value) -> dt.datetime | None:
    """An ISO time from the sync state, or None."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def store_check(data_dir: Path) -> dict:
    """Whether the data directory takes a durable write (a file written, fsynced and removed)."""
    probe = Path(data_dir) / f".healthz-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return {"status": FAIL, "writable": False, "error": exc.strerror or type(exc).__name__}
    return {"status": OK, "writable": True}


def disk_check(data_dir: Path, config) -> dict:
    """Free space where the data directory lives, against the warning and failure thresholds."""
    usage = shutil.disk_usage(data_dir)
    percent = round(100 * usage.free / usage.total, 1) if usage.total else 0.0
    if usage.free < config["DISK_FAIL_MB"] * 1024 ** 2:
        state = FAIL  # journal appends are about to fail: tickets could no longer be stored
    elif percent < config["DISK_WARN_PERCENT"] or usage.free < config["DISK_WARN_GB"] * 1024 ** 3:
        state = DEGRADED
    else:
        state = OK
    return {"status": state, "free_bytes": usage.free, "total_bytes": usage.total, "free_percent": percent}


def printer_check(info: dict | None) -> dict:
    """The printer's state from the print queue's status ("none": preview or no printer)."""
    info = info or {}
    state = info.get("state", "unknown")
    return {"status": DEGRADED if state in PRINTER_TROUBLE else OK, "state": state,
            "pending": int(info.get("pending") or 0)}


def sync_check(status: dict | None, now: dt.datetime, warn_hours: float) -> dict:
    """Age of the last successful sync and the measured clock offset. A kiosk that is not enrolled
    is fine (it runs alone); an enrolled one that has not synced for `warn_hours` is degraded."""
    if not status or not status.get("enrolled"):
        return {"status": OK, "enrolled": False}
    last = _parse(status.get("last_success_at"))
    since = last or _parse(status.get("enrolled_at"))
    age = max(0, int((now - since).total_seconds())) if since else None
    offset = status.get("clock_offset_s")
    failing = age is not None and age > warn_hours * 3600
    skewed = offset is not None and abs(float(offset)) > CLOCK_WARN_S
    return {"status": DEGRADED if failing or skewed else OK, "enrolled": True,
            "last_success_age_s": int((now - last).total_seconds()) if last else None,
            "failing_for_a_day": failing, "pending": status.get("pending"),
            "clock_offset_s": offset, "clock_skewed": skewed}


def check(data_dir: Path, config, now: dt.datetime, *, printer: Callable[[], dict | None],
          sync: Callable[[], dict | None], version: str) -> dict:
    """Every check and the overall status: fail when any fails, degraded when any is degraded."""
    checks = {"store": store_check(data_dir)}
    try:
        checks["disk"] = disk_check(data_dir, config)
    except OSError as exc:
        checks["disk"] = {"status": FAIL, "error": exc.strerror or type(exc).__name__}
    for name, probe in (("printer", lambda: printer_check(printer())),
                        ("sync", lambda: sync_check(sync(), now, config["SYNC_WARN_HOURS"]))):
        try:
            checks[name] = probe()
        except Exception as exc:  # a broken status source is a finding, not a crash of the probe
            checks[name] = {"status": DEGRADED, "error": type(exc).__name__}
    return {"status": _worst(*(c["status"] for c in checks.values())), "version": version,
            "checked_at": now.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "checks": checks}


def warnings(result: dict) -> list[str]:
    """What the supervisor screen warns about: "disk_low" and "sync_failing"."""
    out = []
    if result["checks"]["disk"]["status"] != OK:
        out.append("disk_low")
    if result["checks"].get("sync", {}).get("failing_for_a_day"):
        out.append("sync_failing")
    return out
