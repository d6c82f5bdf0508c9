"""Login throttling: how many wrong PINs (or passwords) an account and an address may send, and how
long each must then wait. Pure rules over a small record; the kiosk keeps the records in memory,
central in its database (several workers share them there).

The rule, per key (an account name, or a client address):
- a few failures are free within a window (5 in 15 minutes for an account): a person who
  mistypes is never slowed down;
- the failure that uses up the allowance locks the key for `base_s`; from then on every further
  failure locks it again at once for twice as long as the last time, up to `max_s`;
- during a lock nothing is checked: the attempt is refused before any PIN is compared;
- a success clears the record; so does a long quiet (`forget_s` after the last failure), which
  is what keeps an attacker at about one guess per `max_s` instead of a fresh allowance every
  window.

An unknown name is throttled exactly like a known one (the key is the name as typed), so a lock
says nothing about whether the name exists.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Rule:
    """How patient to be with one kind of key."""

    free: int            # failures within `window_s` before the first lock
    window_s: float
    base_s: float        # first lock
    max_s: float         # longest lock
    forget_s: float      # quiet time after the last failure that forgets everything


ACCOUNT = Rule(free=5, window_s=15 * 60, base_s=60, max_s=60 * 60, forget_s=24 * 3600)
# An address may try more names than one account may try PINs (a shared staff PC, a typo in the
# name), but not a whole staff list: it is what slows down guessing across many names.
ADDRESS = Rule(free=20, window_s=15 * 60, base_s=60, max_s=60 * 60, forget_s=24 * 3600)


@dataclass(frozen=True)
class Attempts:
    """What is remembered about one key (times are epoch seconds)."""

    window_start: float = 0.0
    window_failures: int = 0
    level: int = 0               # locks so far; the next one lasts base_s * 2**level
    last_failure_at: float = 0.0
    locked_until: float = 0.0


def wait_s(state: Attempts | None, now: float) -> float:
    """Seconds until this key may be checked again (0 when it may be now)."""
    if state is None:
        return 0.0
    return max(0.0, state.locked_until - now)


def is_stale(state: Attempts, rule: Rule, now: float) -> bool:
    """True when the record may be forgotten (not locked, quiet for `forget_s`)."""
    return state.locked_until <= now and now - state.last_failure_at > rule.forget_s


def after_failure(state: Attempts | None, rule: Rule, now: float) -> Attempts:
    """The record after one more wrong PIN for this key."""
    if state is None or is_stale(state, rule, now):
        state = Attempts()
    if now - state.window_start > rule.window_s:
        state = replace(state, window_start=now, window_failures=0)
    state = replace(state, window_failures=state.window_failures + 1, last_failure_at=now)
    if state.level > 0 or state.window_failures >= rule.free:
        lock = min(rule.base_s * 2 ** min(state.level, 32), rule.max_s)
        state = replace(state, level=state.level + 1, locked_until=now + lock)
    return state
