"""Run the kiosk's command line and kill it with SIGKILL just before its N-th file-system step (a
write, fsync, rename, truncation or unlink), as `kill -9` or a power cut would at that moment:

    python -m tests.crashpoint N close-day

N = 0 never kills; the number of steps the run took is written to stderr when it ends normally.
Counting steps rather than time puts every kill on a boundary where what is on disk changes.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys

STEPS = ("write", "fsync", "replace", "rename", "ftruncate", "unlink")


def arm(kill_at: int) -> None:
    """Count the steps; SIGKILL this process before step `kill_at` (never when it is 0)."""
    taken = 0

    def counted(name: str):
        real = getattr(os, name)

        def step(*args, **kwargs):
            nonlocal taken
            taken += 1
            if taken == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return step

    for name in STEPS:
        setattr(os, name, counted(name))
    atexit.register(lambda: sys.stderr.write(f"crashpoint steps: {taken}\n"))


if __name__ == "__main__":
    arm(int(sys.argv[1]))
    from flask.cli import main
    sys.argv = ["flask", "--app", "kiosk", *sys.argv[2:]]
    main()
