"""A serial printer double on a pseudo-terminal: the kiosk opens the pty's path like /dev/ttyUSB0."""

from __future__ import annotations

import os
import select
import threading
import time

from tests.hardware.doubles.printer import REPLIES, take_queries


class PtyPrinter:
    """Answers DLE EOT before a job (unless silent) and records the job bytes after it."""

    def __init__(self, state: str = "online"):
        """Open the pty pair and start listening on the master side."""
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.state = state
        self.received = bytearray()
        self.queries: list[int] = []
        self._in_job = False
        self._pending = b""
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-printer", daemon=True)
        self._thread.start()

    def wait_for_bytes(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` job bytes arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop and close both ends."""
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)

    def _run(self) -> None:
        """Read what the kiosk writes; answer status queries that come before job data."""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                continue
            with self._cond:
                if self._in_job:
                    self.received += chunk
                    self._cond.notify_all()
                    continue
                queries, self._pending, self._in_job = take_queries(self._pending + chunk)
                for n in queries:
                    self.queries.append(n)
                    reply = REPLIES.get(self.state, {}).get(n)
                    if reply is not None:
                        os.write(self.master, bytes((reply,)))
                if self._in_job:
                    self.received += self._pending
                    self._pending = b""
                self._cond.notify_all()
