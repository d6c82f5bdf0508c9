"""One logging set-up for the kiosk server, the sync job and the print worker.

- Under systemd (JOURNAL_STREAM names our standard error) lines carry no timestamp (the journal
  stamps them) and start with a `<N>` syslog priority, which journald turns into the entry's level.
- LOG_FORMAT: `plain` (readable lines), `kv` (key=value pairs) or `json` (one object a line).
- LOG_FILE: a file instead of standard error, rotated by size (LOG_MAX_BYTES) or by time
  (LOG_ROTATE_WHEN, e.g. "midnight"), keeping LOG_BACKUPS old files. Each process writes its own
  file (the print worker's gets a `-print-worker` suffix): two processes never rotate one file.

The settings are copied into KIOSK_LOG_* environment variables, so a print worker the kiosk starts
logs the same way. This module imports nothing of the app (the print worker loads it alone).
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path

FORMATS = ("plain", "kv", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ENV = ("LOG_LEVEL", "LOG_FORMAT", "LOG_FILE", "LOG_MAX_BYTES", "LOG_ROTATE_WHEN", "LOG_BACKUPS")
_WHEN = ("s", "m", "h", "d", "midnight") + tuple(f"w{i}" for i in range(7))
# syslog priorities (sd-daemon(3)): what journald reads from a `<N>` prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_HANDLER_MARK = "_kiosk_log_handler"


def check_settings(config: dict) -> None:
    """Raise ValueError naming the setting when a LOG_* value is wrong (config.load calls this)."""
    config["LOG_LEVEL"] = str(config["LOG_LEVEL"]).upper()
    if config["LOG_LEVEL"] not in LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}")
    if config["LOG_FORMAT"] not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}")
    config["LOG_ROTATE_WHEN"] = str(config["LOG_ROTATE_WHEN"] or "").lower()
    if config["LOG_ROTATE_WHEN"] and config["LOG_ROTATE_WHEN"] not in _WHEN:
        raise ValueError("LOG_ROTATE_WHEN must be empty (rotate by size) or one of " + ", ".join(_WHEN))


def under_journal(stream=None) -> bool:
    """Whether `stream` (standard error) is connected to the systemd journal: JOURNAL_STREAM holds
    "device:inode" of that very stream (systemd.exec(5))."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if ":" not in value:
        return False
    try:
        device, inode = (int(x) for x in value.split(":", 1))
        st = os.fstat((stream or sys.stderr).fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


class Formatter(logging.Formatter):
    """plain, kv or json lines; with `journal` no time and a `<N>` priority prefix."""

    def __init__(self, fmt: str = "plain", *, journal: bool = False, process: str = "kiosk"):
        """Remember the style."""
        super().__init__()
        self.style_name, self.journal, self.process = fmt, journal, process

    def format(self, record: logging.LogRecord) -> str:
        """One record as one line (an exception's traceback follows on further lines)."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        when = None if self.journal else self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z")
        if self.style_name == "json":
            data = {"level": record.levelname.lower(), "logger": record.name, "process": self.process,
                    "pid": record.process, "message": message}
            if when:
                data = {"time": when, **data}
            if record.exc_text:
                data["exception"] = record.exc_text
            line = json.dumps(data, ensure_ascii=False)
        elif self.style_name == "kv":
            pairs = ([("time", when)] if when else []) + [
                ("level", record.levelname.lower()), ("logger", record.name), ("process", self.process),
                ("pid", str(record.process)), ("msg", message)]
            line = " ".join(f"{k}={_quote(v)}" for k, v in pairs)
            if record.exc_text:
                line += " exception=" + _quote(record.exc_text)
        else:
            line = f"{record.levelname} {self.process}[{record.process}] {record.name}: {message}"
            if when:
                line = f"{when} {line}"
            if record.exc_text:
                line += "\n" + record.exc_text
        if self.journal:
            priority = _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
            line = "\n".join(f"<{priority}>{part}" for part in line.split("\n"))
        return line


def _quote(value: str) -> str:
    """A key=value value: bare when simple, else a JSON string (quotes, spaces, new lines escaped)."""
    value = str(value)
    if value and all(c.isalnum() or c in "-_.:/@+" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def file_for(path: str, process: str) -> Path:
    """The log file of a process: LOG_FILE itself for the kiosk server and sync job's own name,
    a suffixed sibling for any other process."""
    path = Path(path)
    if process in ("kiosk", ""):
        return path
    return path.with_name(f"{path.stem}-{process}{path.suffix or '.log'}")


def setup(settings: dict, *, process: str = "kiosk", level: int | str | None = None) -> logging.Handler:
    """Configure the root logger from LOG_* settings (replacing a handler set up here before) and
    export them for child processes; returns the handler."""
    check_settings(settings)
    if settings["LOG_FILE"]:
        target = file_for(settings["LOG_FILE"], process)
        target.parent.mkdir(parents=True, exist_ok=True)
        if settings["LOG_ROTATE_WHEN"]:
            handler = logging.handlers.TimedRotatingFileHandler(
                target, when=settings["LOG_ROTATE_WHEN"], backupCount=int(settings["LOG_BACKUPS"]),
                encoding="utf-8", utc=True)
        else:
            handler = logging.handlers.RotatingFileHandler(
                target, maxBytes=int(settings["LOG_MAX_BYTES"]), backupCount=int(settings["LOG_BACKUPS"]),
                encoding="utf-8")
        journal = False
    else:
        handler = logging.StreamHandler(sys.stderr)
        journal = under_journal(sys.stderr)
    handler.setFormatter(Formatter(settings["LOG_FORMAT"], journal=journal, process=process))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level if level is not None else settings["LOG_LEVEL"])
    for name in _ENV:
        os.environ[f"KIOSK_{name}"] = str(settings[name])
    return handler


def setup_from_environ(*, process: str, level: int | None = None) -> logging.Handler:
    """The same set-up in a child process, from the KIOSK_LOG_* variables its parent exported."""
    settings = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "plain", "LOG_FILE": "", "LOG_MAX_BYTES": 10 * 1024 * 1024,
                "LOG_ROTATE_WHEN": "", "LOG_BACKUPS": 7}
    for name in _ENV:
        if f"KIOSK_{name}" in os.environ:
            settings[name] = os.environ[f"KIOSK_{name}"]
    return setup(settings, process=process, level=level)


def setup_unless_configured(settings: dict, *, process: str) -> logging.Handler | None:
    """`setup`, unless the host process (a test runner, an embedding program) already configured
    the root logger itself: commands call this, and under a test runner leave its capture alone."""
    root = logging.getLogger()
    if any(not getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        return None
    return setup(settings, process=process)
