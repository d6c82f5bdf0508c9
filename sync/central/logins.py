"""Operator sign-in at central: passwords checked in constant time for known and unknown names,
behind the same per-account and per-address back-off as the kiosk's PIN logins
(kiosk.domain.throttle), kept in the database so every gunicorn worker counts the same failures."""
from __future__ import annotations

import datetime as dt
import logging
import math
import secrets

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, select, update

from kiosk.domain import throttle
from sync.central.models import LoginThrottle, Operator
from sync.central.sql import insert_for

log = logging.getLogger(__name__)

RULES = {"account": throttle.ACCOUNT, "address": throttle.ADDRESS}
_hasher = PasswordHasher()
_dummies: dict[str, str] = {}


class Locked(Exception):
    """Too many wrong passwords for this name or from this address: nothing was checked."""

    def __init__(self, wait_s: float):
        """Remember how long to wait (whole seconds, rounded up)."""
        super().__init__(f"locked for {wait_s:.0f} s")
        self.retry_after_s = max(1, math.ceil(wait_s))


def _keys(name: str, address: str) -> list[str]:
    """The throttle rows one attempt touches (a very long name is cut: it names nobody)."""
    return [f"account:{name[:64]}", f"address:{address or '?'}"[:200]]


def _rule(key: str) -> throttle.Rule:
    """The rule of a row key."""
    return RULES[key.split(":", 1)[0]]


def _attempts(row) -> throttle.Attempts:
    """A database row as the domain's record."""
    return throttle.Attempts(window_start=row.window_start, window_failures=row.window_failures,
                             level=row.level, last_failure_at=row.last_failure_at, locked_until=row.locked_until)


def _dummy(like: str | None) -> str:
    """A hash of a random password at the cost of `like`: unknown names cost the same to refuse."""
    try:
        params = extract_parameters(like) if like else None
    except (InvalidHashError, ValueError):
        params = None
    key = repr(params) if params else "default"
    if key not in _dummies:
        hasher = PasswordHasher.from_parameters(params) if params else _hasher
        _dummies[key] = hasher.hash(secrets.token_urlsafe(24))
    return _dummies[key]


def _verify(stored: str, password: str) -> bool:
    """argon2 verification that never raises."""
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def sign_in(engine, name: str, password: str, *, address: str, now: dt.datetime) -> bool:
    """True for a right name and password; False otherwise; Locked while the name or the address
    is backing off (then the password is not even checked)."""
    epoch = now.timestamp()
    keys = _keys(name, address)
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))}
        stored = conn.execute(select(Operator.password_hash).where(Operator.name == name)).scalar()
        if stored is None:
            stored = _dummy(conn.execute(select(Operator.password_hash).limit(1)).scalar())
            known = False
        else:
            known = True
    wait = max((throttle.wait_s(_attempts(rows[k]), epoch) for k in keys if k in rows), default=0.0)
    if wait > 0:
        raise Locked(wait)
    if _verify(stored, password) and known:
        if keys[0] in rows:
            with engine.begin() as conn:
                conn.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0]))
        return True
    with engine.begin() as conn:
        for key in keys:
            _record_failure(conn, key, epoch)
        if secrets.randbelow(64) == 0:
            prune(conn, now)  # now and then, not on every failure
    log.info("wrong operator password or unknown name from %s", address)
    return False


def _record_failure(conn: Connection, key: str, epoch: float) -> None:
    """One more failure on a row, read and written under a row lock (PostgreSQL) or the write lock
    SQLite takes at BEGIN."""
    conn.execute(insert_for(conn, LoginThrottle).values(
        key=key, window_start=epoch, window_failures=0, level=0, last_failure_at=0.0, locked_until=0.0)
        .on_conflict_do_nothing())
    row = conn.execute(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).one()
    state = throttle.after_failure(_attempts(row), _rule(key), epoch)
    conn.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(
        window_start=state.window_start, window_failures=state.window_failures, level=state.level,
        last_failure_at=state.last_failure_at, locked_until=state.locked_until))


def locked(conn: Connection, now: dt.datetime) -> list[dict]:
    """Names and addresses locked now, longest wait first."""
    epoch = now.timestamp()
    rows = conn.execute(select(LoginThrottle).where(LoginThrottle.locked_until > epoch)
                        .order_by(LoginThrottle.locked_until.desc())).all()
    out = []
    for row in rows:
        kind, _, key = row.key.partition(":")
        out.append({"kind": kind, "key": key, "wait_s": row.locked_until - epoch, "locks": row.level})
    return out


def unlock(conn: Connection, kind: str, key: str) -> bool:
    """Forget one name's or address's failures; True when there were any."""
    if kind not in RULES:
        return False
    return conn.execute(delete(LoginThrottle).where(LoginThrottle.key == f"{kind}:{key}")).rowcount > 0


def prune(conn: Connection, now: dt.datetime) -> int:
    """Forget rows that are neither locked nor recent (called now and then)."""
    epoch = now.timestamp()
    forget = max(rule.forget_s for rule in RULES.values())
    return conn.execute(delete(LoginThrottle).where(LoginThrottle.locked_until <= epoch,
                                                    LoginThrottle.last_failure_at < epoch - forget)).rowcount
