"""Configuration: defaults, then instance/kiosk.toml, then KIOSK_* environment variables, then the
`config` mapping handed to create_app (tests). Every value is checked at start-up, so a typo stops
the kiosk with a message naming the setting instead of failing later in front of a citizen."""
from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path

from kiosk.domain.queue_report import DEFAULT_TARGET_WAIT_MIN

DEFAULTS: dict = {
    "DATA_DIR": None,                 # default: <instance>/data
    "CENTRE": "DEMO",                 # centre code, as enrolled at central
    "CENTRE_NAMES": {"ar": "مركز الخدمات العامة", "ckb": "ناوەندی خزمەتگوزارییە گشتییەکان",
                     "en": "Public Service Centre"},
    "TIMEZONE": "Asia/Baghdad",       # the service day and the times printed on tickets
    "OPENS_AT": "08:00",              # when the centre opens (local time): when a closed service reopens
    "LANGUAGES": ["ar", "ckb", "en"],
    "DEFAULT_LANGUAGE": "ar",
    "PRINTER_URL": "",                # empty: preview:// (PNG/PDF in the data directory); "off": none
    "PRINT_QUEUE_MAX": 5000,          # print jobs that may wait in the spool; more are refused (ticket kept)
    "PUBLIC_URL": "http://kiosk.local",  # base of the ticket QR on screen and on paper
    "PRIORITY_RATIO": 2,              # priority calls before a waiting normal ticket gets its turn
    "MAX_WAIT_MIN": 45,               # after this a ticket jumps ahead of both queues
    "TARGET_WAIT_MIN": DEFAULT_TARGET_WAIT_MIN,  # the queue report's "served within target" when a service sets none
    "IDLE_RESET_S": 30,               # citizen screen back to the language choice
    "STAFF_IDLE_MIN": 20,             # attendant session expiry without activity
    "TOKEN_TTL_MIN": 12 * 60,         # API bearer tokens
    "TICKET_RATE_PER_MIN": 60,        # tickets per minute from one terminal address
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "TRUSTED_PROXIES": 0,             # reverse proxies in front of the kiosk whose X-Forwarded-* count
    # where staff screens, the staff API and staff streams may be used from (docs/security.md):
    # loopback and the private ranges; a centre lists its staff LAN only, leaving citizens' Wi-Fi out
    "STAFF_NETWORKS": ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                       "fc00::/7", "fe80::/10"],
    "SECRET_KEY": None,               # default: generated once into <data>/secret.key
    "COMPACT_EVERY": 5000,            # commits between automatic snapshots
    "ARCHIVE_RETENTION_DAYS": 400,    # closed days kept in DATA/archive (pruned only once central has them)
    "INBOX_POLL_S": 5,                # seconds between looks for configuration pulled from central
    "SSE_HEARTBEAT_S": 15,            # keep-alive comment on live-update streams
    "SSE_MAX_AGE_S": 600,             # streams end after this and the browser reconnects
    "SSE_DISPLAY_COALESCE_S": 0.5,    # hall displays hear "the queue changed" at most this often
    "SSE_STAFF_COALESCE_S": 1,        # counters and supervisors likewise
    "SSE_TICKET_COALESCE_S": 2,       # phones following a ticket get its new place at most this often
    "SSE_QUEUE_SIZE": 64,             # messages a slow screen may fall behind before it is dropped
    "SERVER_THREADS": 16,             # worker threads for requests (open streams hold none)
    # health (GET /healthz, the supervisor screen's warnings; docs/operations.md)
    "DISK_WARN_PERCENT": 10,          # warn when less than this share of the data disk is free...
    "DISK_WARN_GB": 2,                # ...or less than this many GB
    "DISK_FAIL_MB": 100,              # below this the kiosk reports failing (stores may stop)
    "SYNC_WARN_HOURS": 24,            # warn when an enrolled kiosk has not synced for this long
    # logs (kiosk server, sync job, print worker)
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "plain",            # plain | kv (key=value) | json
    "LOG_FILE": "",                   # empty: standard error (the journal under systemd)
    "LOG_MAX_BYTES": 10 * 1024 * 1024,  # rotate the log file at this size...
    "LOG_ROTATE_WHEN": "",            # ...or at a time instead: "midnight", "h", "d"... (TimedRotatingFileHandler)
    "LOG_BACKUPS": 7,                 # rotated files kept
}

_INT_KEYS = ("PRIORITY_RATIO", "MAX_WAIT_MIN", "TARGET_WAIT_MIN", "IDLE_RESET_S", "STAFF_IDLE_MIN", "TOKEN_TTL_MIN",
             "TICKET_RATE_PER_MIN", "MAX_CONTENT_LENGTH", "COMPACT_EVERY", "SSE_QUEUE_SIZE", "SERVER_THREADS",
             "PRINT_QUEUE_MAX", "TRUSTED_PROXIES", "ARCHIVE_RETENTION_DAYS", "DISK_FAIL_MB", "LOG_MAX_BYTES",
             "LOG_BACKUPS")
_NUMBER_KEYS = ("DISK_WARN_PERCENT", "DISK_WARN_GB", "SYNC_WARN_HOURS")
_SECONDS_KEYS = ("INBOX_POLL_S", "SSE_HEARTBEAT_S", "SSE_MAX_AGE_S", "SSE_DISPLAY_COALESCE_S",
                 "SSE_STAFF_COALESCE_S", "SSE_TICKET_COALESCE_S")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it and where it came from."""


def _networks(value, source: str) -> tuple:
    """STAFF_NETWORKS as ip_network objects, from a list or a comma-separated string (environment)."""
    if isinstance(value, str):
        value = [x.strip() for x in value.split(",") if x.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"STAFF_NETWORKS must be a list of networks like \"192.168.10.0/24\" (from {source})")
    out = []
    for item in value:
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ConfigError(f"STAFF_NETWORKS: {item!r} is not a network like \"192.168.10.0/24\" "
                              f"(from {source})") from None
    return tuple(out)


def load(instance_path: str | os.PathLike, overrides: dict | None = None,
         environ: dict | None = None) -> dict:
    """Merge defaults, kiosk.toml, KIOSK_* environment and overrides; validate; return the result."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    source = {k: "default" for k in config}
    toml_path = Path(instance_path) / "kiosk.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{toml_path} is not valid TOML: {exc}") from exc
        for key, value in data.items():
            name = key.upper()
            if name not in DEFAULTS:
                raise ConfigError(f"{toml_path}: unknown setting {key!r}")
            config[name], source[name] = value, str(toml_path)
    for name in DEFAULTS:
        env_name = f"KIOSK_{name}"
        if env_name in environ:
            config[name], source[name] = environ[env_name], env_name
    for key, value in (overrides or {}).items():
        config[key], source[key] = value, "create_app(config=...)"
    for name in _INT_KEYS:
        try:
            config[name] = int(config[name])
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a whole number (from {source[name]}), got {config[name]!r}") from None
        if config[name] < 0:
            raise ConfigError(f"{name} must not be negative (from {source[name]})")
    for name in _SECONDS_KEYS:
        try:
            config[name] = float(config[name])
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number of seconds (from {source[name]}), got {config[name]!r}") from None
        if config[name] <= 0:
            raise ConfigError(f"{name} must be more than 0 seconds (from {source[name]})")
    for name in _NUMBER_KEYS:
        try:
            config[name] = float(config[name])
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number (from {source[name]}), got {config[name]!r}") from None
        if config[name] < 0:
            raise ConfigError(f"{name} must not be negative (from {source[name]})")
    from kiosk.ops import logs
    try:
        logs.check_settings(config)
    except ValueError as exc:
        raise ConfigError(f"{exc} (from {source.get(str(exc).split()[0], 'settings')})") from None
    if isinstance(config["LANGUAGES"], str):
        config["LANGUAGES"] = [x.strip() for x in config["LANGUAGES"].split(",") if x.strip()]
    unknown = set(config["LANGUAGES"]) - {"ar", "ckb", "en"}
    if unknown or not config["LANGUAGES"]:
        raise ConfigError(f"LANGUAGES may contain ar, ckb and en only (from {source['LANGUAGES']})")
    if config["DEFAULT_LANGUAGE"] not in config["LANGUAGES"]:
        raise ConfigError("DEFAULT_LANGUAGE must be one of LANGUAGES")
    if config["SSE_QUEUE_SIZE"] < 4 or not 1 <= config["SERVER_THREADS"] <= 256:
        raise ConfigError("SSE_QUEUE_SIZE must be at least 4 and SERVER_THREADS from 1 to 256")
    config["STAFF_NETWORKS"] = _networks(config["STAFF_NETWORKS"], source["STAFF_NETWORKS"])
    if config["PRIORITY_RATIO"] < 1:
        raise ConfigError("PRIORITY_RATIO must be at least 1")
    if config["ARCHIVE_RETENTION_DAYS"] < 1:
        raise ConfigError(f"ARCHIVE_RETENTION_DAYS must be at least 1 (from {source['ARCHIVE_RETENTION_DAYS']})")
    if config["PRINT_QUEUE_MAX"] < 1:
        raise ConfigError(f"PRINT_QUEUE_MAX must be at least 1 (from {source['PRINT_QUEUE_MAX']})")
    try:
        from zoneinfo import ZoneInfo
        ZoneInfo(config["TIMEZONE"])
    except Exception:
        raise ConfigError(f"TIMEZONE {config['TIMEZONE']!r} is not a known time zone (from {source['TIMEZONE']})") from None
    if not isinstance(config["OPENS_AT"], str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", config["OPENS_AT"]):
        raise ConfigError(f"OPENS_AT must be a time like \"08:00\" (from {source['OPENS_AT']})")
    config["DATA_DIR"] = Path(config["DATA_DIR"] or Path(instance_path) / "data").resolve()
    return config
