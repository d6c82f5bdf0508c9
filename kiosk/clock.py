"""Clocks: the app never reads wall time directly, so tests can freeze and move it."""
import datetime as dt
import threading

UTC = dt.timezone.utc


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z and millisecond precision, the one time format on the wire."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> dt.datetime:
    """Parse a time written by `iso` (or any ISO 8601 string with an offset) as an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return value.astimezone(UTC)


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        """Current time as an aware UTC datetime."""
        return dt.datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to (tests, benchmarks, replays)."""

    def __init__(self, start: dt.datetime | str = "2026-11-22T08:00:00Z"):
        """Start at `start` (a datetime or ISO string)."""
        self._now = parse_iso(start) if isinstance(start, str) else start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """The frozen time."""
        with self._lock:
            return self._now

    def __getstate__(self) -> dict:
        """Pickle the time, not the lock: the print worker process gets a copy frozen at its start."""
        return {"now": self.now()}

    def __setstate__(self, state: dict) -> None:
        """Rebuild a copy with a lock of its own."""
        self._now = state["now"]
        self._lock = threading.Lock()

    def advance(self, seconds: float = 0, **kwargs) -> dt.datetime:
        """Move forward by `seconds` (and/or timedelta keyword arguments) and return the new time."""
        with self._lock:
            self._now += dt.timedelta(seconds=seconds, **kwargs)
            return self._now

    def set(self, moment: dt.datetime | str) -> None:
        """Jump to `moment`."""
        with self._lock:
            self._now = parse_iso(moment) if isinstance(moment, str) else moment.astimezone(UTC)
