"""The kiosk's HTTP server: hypercorn (an asyncio ASGI server) in front of the Flask app.

Why hypercorn: live-update streams need an event-loop server, so that an open stream costs a
little memory instead of a worker thread (waitress, thread-per-request, stalled ticket issuance
at 24 open display streams). Hypercorn closes connections that stay idle, including those that
connect and never send a request (`keep_alive_timeout`) and those that stall mid-request
(`read_timeout`), so idle and half-open connections cannot pile up either. The Flask app itself
runs in a pool of worker threads (a2wsgi); the streams are served on the loop by
`kiosk.web.streams.StreamHub`. One process owns the store, as before.

`serve()` runs until SIGTERM/SIGINT; `ServerThread` runs the same server in a background thread
for tests and benchmarks.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import resource
import signal
import socket
import threading

from flask import Flask

log = logging.getLogger(__name__)

KEEP_ALIVE_S = 20        # an idle connection (or one that never sends a request) is closed after this
READ_TIMEOUT_S = 30      # a client that stops sending mid-request is cut off after this
GRACEFUL_S = 3


def _raise_file_limit() -> int:
    """Every open stream is a socket: allow as many as the system lets this process have."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    wanted = min(wanted, 65536)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d: fewer live screens fit", soft)
    return soft


def build_asgi(app: Flask, *, workers: int = 16, background: bool = True):
    """The kiosk app as ASGI with its stream hub (started and stopped with the server)."""
    from kiosk.app import start_background
    from kiosk.web.sse import make_hub
    hub = make_hub(app)
    state = app.extensions["kiosk"]
    app.extensions["kiosk_streams"] = hub

    def startup():
        """Open the store before the first request; subscribe the hub; start housekeeping."""
        with app.app_context():
            state.centre  # noqa: B018 - opening the store now reports its problems at start, not mid-request
        state.events.listen(hub.publish)
        if background:
            start_background(app)

    def shutdown():
        """Stop listening; background work and the store are closed by the caller."""
        state.events.unlisten(hub.publish)

    from kiosk.web.streams import KioskASGI
    return KioskASGI(app, hub, workers=workers, on_startup=startup, on_shutdown=shutdown)


def _config(sock: socket.socket, keep_alive_s: float = KEEP_ALIVE_S, read_timeout_s: int = READ_TIMEOUT_S):
    """Hypercorn's settings for a listening socket (hypercorn takes the socket over and closes it)."""
    from hypercorn.config import Config
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.keep_alive_timeout = keep_alive_s
    config.read_timeout = read_timeout_s
    config.graceful_timeout = GRACEFUL_S
    config.backlog = 1024
    config.accesslog = None
    config.errorlog = logging.getLogger("kiosk.server")
    return config


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


async def _serve(asgi, sock: socket.socket, stop: asyncio.Event, **timeouts) -> None:
    """Serve on `sock` until `stop` is set."""
    from hypercorn.asyncio import serve
    await serve(asgi, _config(sock, **timeouts), shutdown_trigger=stop.wait, mode="asgi")


def serve(app: Flask, host: str, port: int, *, workers: int = 16) -> None:
    """Serve the kiosk until SIGTERM or SIGINT (the production server)."""
    limit = _raise_file_limit()
    log.info("open-file limit %d", limit)
    sock = listen(host, port)
    asgi = build_asgi(app, workers=workers)

    async def main():
        """Run the server; a signal asks it to finish gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await _serve(asgi, sock, stop)

    try:
        # a fresh context: the command line runs inside an app context, and requests (which copy the
        # loop's context into their worker threads) must not share its `g`
        contextvars.Context().run(asyncio.run, main())
    finally:
        sock.close()


class ServerThread:
    """The production server on a loopback port, in a background thread (tests, benchmarks)."""

    def __init__(self, app: Flask, *, host: str = "127.0.0.1", port: int = 0, workers: int = 16,
                 background: bool = False, keep_alive_s: float = KEEP_ALIVE_S):
        """Bind at once (so the URL is known) and start serving."""
        self.keep_alive_s = keep_alive_s
        _raise_file_limit()
        self.app = app
        self.sock = listen(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.asgi = build_asgi(app, workers=workers, background=background)
        self.hub = self.asgi.hub
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="kiosk-server", daemon=True)
        self.thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the kiosk server did not start")
        if self._error is not None:
            raise RuntimeError("the kiosk server did not start") from self._error

    def _run(self) -> None:
        """The server's own event loop."""
        async def main():
            """Serve until stop() is called."""
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await _serve(self.asgi, self.sock, self._stop, keep_alive_s=self.keep_alive_s)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by the constructor or stop()
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        """Finish open requests and streams, then close the socket."""
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self.thread.join(timeout=15)
        self.sock.close()
