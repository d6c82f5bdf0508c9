"""A loopback TCP printer double: records jobs and answers DLE EOT status queries like an Epson.

Each connection is one job. While a connection only sends DLE EOT n, the double answers each
query with the status byte of its current state; from the first other byte on, everything up to
the end of the connection is the job (a real printer would not answer inside image data either).
States: online, paper_low, paper_out, offline (cover open), error, silent (accepts connections,
never reads or answers) and down (not listening: connections are refused).
"""

from __future__ import annotations

import socket
import threading
import time

DLE_EOT = b"\x10\x04"

# Replies to DLE EOT 1 (printer), 2 (offline cause), 3 (error cause), 4 (paper sensor).
REPLIES = {
    "online": {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12},
    "paper_low": {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x1E},
    "paper_out": {1: 0x1A, 2: 0x32, 3: 0x12, 4: 0x72},
    "offline": {1: 0x1A, 2: 0x16, 3: 0x12, 4: 0x12},
    "error": {1: 0x1A, 2: 0x52, 3: 0x32, 4: 0x12},
}
STATES = tuple(REPLIES) + ("silent", "down")


def take_queries(pending: bytes) -> tuple[list[int], bytes, bool]:
    """Split leading DLE EOT n queries off `pending`: (their n, the rest, whether job data began)."""
    queries = []
    while pending:
        if pending.startswith(DLE_EOT) and len(pending) >= 3:
            queries.append(pending[2])
            pending = pending[3:]
        elif len(pending) < 3 and DLE_EOT.startswith(pending[:2]):
            return queries, pending, False  # a query cut in two by the network; wait for the rest
        else:
            return queries, pending, True
    return queries, b"", False


class PrinterDouble:
    """A fake network printer on 127.0.0.1 (a free port unless one is given)."""

    def __init__(self, port: int = 0, state: str = "online"):
        """Bind and start serving at once."""
        if state not in STATES:
            raise ValueError(f"unknown double state {state!r}")
        self.host = "127.0.0.1"
        self.port = port
        self.jobs: list[bytes] = []
        self.job_times: list[float] = []
        self.queries: list[int] = []
        self.connections = 0
        self._state = state
        self._cond = threading.Condition()
        self._stopping = False
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._acceptor: threading.Thread | None = None
        if state != "down":
            self._listen()
        elif not port:
            raise ValueError("a double that starts down needs a fixed port")

    # -- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The printer URL of this double (TM-T20II profile, short timeout)."""
        return f"escpos+tcp://{self.host}:{self.port}?profile=TM-T20II&timeout=0.5"

    @property
    def state(self) -> str:
        """The current state."""
        return self._state

    def set_state(self, state: str) -> None:
        """Switch state; 'down' stops listening, leaving 'down' listens again on the same port."""
        if state not in STATES:
            raise ValueError(f"unknown double state {state!r}")
        with self._cond:
            previous, self._state = self._state, state
        if state == "down" and previous != "down":
            self._close_listener()
        elif previous == "down" and state != "down":
            self._listen()

    def wait_for_jobs(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` jobs were received."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.jobs) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        """Stop listening, drop connections and join every thread."""
        with self._cond:
            self._stopping = True
        self._close_listener()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self):
        """Use as a context manager."""
        return self

    def __exit__(self, *exc):
        """Stop on exit."""
        self.stop()

    # -- serving ---------------------------------------------------------------------------

    def _listen(self) -> None:
        """Bind (the same port again when restarting) and start accepting."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), name="printer-double", daemon=True)
        self._threads.append(self._acceptor)
        self._acceptor.start()

    def _close_listener(self) -> None:
        """Stop accepting (new connections are refused)."""
        listener, self._listener = self._listener, None
        acceptor, self._acceptor = self._acceptor, None
        if listener is not None:
            listener.close()
        if acceptor is not None:
            acceptor.join(5)

    def _accept(self, listener: socket.socket) -> None:
        """Accept connections until the listener is closed."""
        while not self._stopping and self._listener is listener:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(0.05)
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="printer-double-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        """Answer status queries, then record the job until the client closes."""
        pending = b""
        job = bytearray()
        in_job = False
        try:
            while not self._stopping:
                if self._state == "silent" and not in_job:
                    time.sleep(0.02)
                    continue
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                if in_job:
                    job += chunk
                    continue
                queries, pending, in_job = take_queries(pending + chunk)
                for n in queries:
                    self.queries.append(n)
                    reply = REPLIES.get(self._state, {}).get(n)
                    if reply is not None:
                        try:
                            conn.sendall(bytes((reply,)))
                        except OSError:
                            return
                if in_job:
                    job += pending
                    pending = b""
        finally:
            if job:
                with self._cond:
                    self.jobs.append(bytes(job))
                    self.job_times.append(time.monotonic())
                    self._cond.notify_all()
            try:
                conn.close()
            finally:
                if conn in self._conns:
                    self._conns.remove(conn)
