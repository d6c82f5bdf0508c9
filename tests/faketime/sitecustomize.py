"""Make time.sleep work under libfaketime with the monotonic clock left alone.

`./run test` runs the time-handling tests a second time under `faketime -f +400d` with
FAKETIME_DONT_FAKE_MONOTONIC=1, and puts this folder on PYTHONPATH so that every Python process
of that run (pytest, and the kiosks, central servers and print workers it starts) imports it.

Why: Python 3.11+ sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME). libfaketime 0.9.10
(Debian 12) shifts that absolute deadline even when told not to fake the monotonic clock, the
kernel gets a negative time and time.sleep raises OSError EINVAL (libfaketime issue 426, fixed
after 0.9.10). Faking the monotonic clock instead is worse: lock and queue timeouts then wait on
the kernel's real monotonic clock for a deadline 400 days ahead. Here time.sleep waits in select(),
whose timeout is relative, so the wall clock is the only clock shifted.
"""
import os
import select
import time

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":

    def _sleep(seconds, _select=select.select, _monotonic=time.monotonic):
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = _monotonic() + seconds
        while (left := deadline - _monotonic()) > 0:
            _select([], [], [], left)

    time.sleep = _sleep
