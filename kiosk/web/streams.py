"""Live-update streams served from an event loop, so an open stream costs memory, not a thread.

The kiosk is one process that owns the store. Its Flask app runs in a pool of worker threads
behind an ASGI server (hypercorn, see kiosk/web/server.py); server-sent event streams are served
by the `StreamHub` on the server's event loop. A stream is opened through Flask like any other
page (the session, the staff check and the staff-network rules all apply), and the view hands the
connection over by answering with an `X-Kiosk-Stream: CHANNEL[:KEY]` header instead of a body; the
hub then keeps the connection, so a thousand open screens hold no worker thread.

Per channel, each event is transformed and formatted once and the same bytes go to every client.
Events that only say "something changed" (`queue-changed`) are coalesced: a channel sends at most
one per `coalesce_s`, which bounds how often a hall full of screens re-fetches, however busy the
counters are. A message for many clients is handed out `chunk` clients at a time, yielding to the
loop in between, so a request finishing meanwhile (a ticket POST answering its client) waits for one
chunk of stream writes, not for a whole hall of them. A client that falls `queue_size` messages
behind is dropped (its browser reconnects and re-fetches); every stream ends after `max_age_s` (with jitter, so screens do not reconnect all
at once) and a comment heartbeat every `heartbeat_s` lets dead connections be noticed.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

EVENT_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
HANDOFF_HEADER = b"x-kiosk-stream"

Transform = Callable[[str, dict], "tuple[str, dict] | None"]
PerKey = Callable[[list[str]], "dict[str, tuple[str, dict]]"]


def format_event(name: str, data: dict) -> str:
    """One SSE message."""
    if not EVENT_NAME.fullmatch(name):
        raise ValueError(f"event names are kebab-case, got {name!r}")
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


@dataclass
class Channel:
    """What one kind of screen receives.

    `transform(name, data)` turns a published event into what this channel sends, or None to skip
    it (it runs on the event loop: keep it cheap). Events named in `coalesce` are sent at most once
    per `coalesce_s`, as the event with empty data, or, when `per_key` is set, as the per-key
    messages it computes (in a worker thread) for the keys of the clients listening then.
    """

    transform: Transform
    coalesce: frozenset[str] = frozenset({"queue-changed"})
    coalesce_s: float = 1.0
    per_key: PerKey | None = None
    clients: set = field(default_factory=set)
    by_key: dict = field(default_factory=dict)
    dirty: set = field(default_factory=set)
    flushed_at: float = 0.0
    flushing: bool = False
    last_by_key: dict = field(default_factory=dict)


class Client:
    """One open stream: messages waiting to be written, and whether it should end."""

    __slots__ = ("key", "pending", "wake", "closed")

    def __init__(self, key: str):
        """A client of a channel, listening for `key` ('' when the channel has no keys)."""
        self.key = key
        self.pending: collections.deque[bytes] = collections.deque()
        self.wake = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        """End this stream at its next turn."""
        self.closed = True
        self.wake.set()


class StreamHub:
    """Keeps every open stream on one event loop and fans published events out to them."""

    def __init__(self, channels: dict[str, Channel], *, heartbeat_s: float = 15.0, max_age_s: float = 600.0,
                 retry_ms: int = 1000, queue_size: int = 64, tick_s: float = 0.05, chunk: int = 64):
        """Channels by name; timings and `chunk` as in the module's description."""
        self.channels = channels
        self.chunk = chunk
        self.heartbeat_s = heartbeat_s
        self.max_age_s = max_age_s
        self.retry_ms = retry_ms
        self.queue_size = queue_size
        self.tick_s = tick_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.dropped = 0
        self.sent = 0

    @property
    def clients(self) -> int:
        """How many streams are open."""
        return sum(len(ch.clients) for ch in self.channels.values())

    # -- lifecycle (on the loop) ----------------------------------------------------------------

    def start(self) -> None:
        """Begin serving on the running loop."""
        self.loop = asyncio.get_running_loop()
        self._ticker = self.loop.create_task(self._tick())

    async def stop(self) -> None:
        """End every stream (the server is shutting down)."""
        if self._ticker is not None:
            self._ticker.cancel()
        for channel in self.channels.values():
            for client in list(channel.clients):
                client.close()
        self.loop = None

    # -- events (any thread) --------------------------------------------------------------------

    def publish(self, name: str, data: dict) -> None:
        """A Broker listener: hand the event to the loop; never blocks the publisher."""
        loop = self.loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, name, data)
        except RuntimeError:  # the loop closed between the check and the call
            pass

    def _dispatch(self, name: str, data: dict) -> None:
        """Transform an event once per channel and queue it for that channel's clients."""
        for channel_name, channel in self.channels.items():
            if not channel.clients:
                continue
            try:
                out = channel.transform(name, data)
            except Exception:
                log.exception("channel %s could not transform %s", channel_name, name)
                continue
            if out is None:
                continue
            if out[0] in channel.coalesce:
                channel.dirty.add(out[0])
                continue
            self._spawn(self._broadcast(channel, format_event(*out).encode()))

    def _spawn(self, coro) -> None:
        """Run a fan-out on the loop, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _broadcast(self, channel: Channel, message: bytes) -> None:
        """Queue one message for every client of the channel, `chunk` clients per turn of the loop."""
        clients = list(channel.clients)
        for start in range(0, len(clients), self.chunk):
            if start:
                await asyncio.sleep(0)
            for client in clients[start:start + self.chunk]:
                if not client.closed:
                    self._push(channel, client, message)

    def _push(self, channel: Channel, client: Client, message: bytes) -> None:
        """Queue a message for one client, dropping the client when it has fallen behind."""
        if len(client.pending) >= self.queue_size:
            log.info("dropping a stream client that fell %d messages behind", self.queue_size)
            self.dropped += 1
            self._forget(channel, client)
            client.pending.clear()
            client.close()
            return
        client.pending.append(message)
        client.wake.set()

    async def _tick(self) -> None:
        """Flush coalesced events and send heartbeats."""
        heartbeat_at = time.monotonic() + self.heartbeat_s
        beat = b": heartbeat\n\n"
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            for channel in self.channels.values():
                if channel.dirty and not channel.flushing and now - channel.flushed_at >= channel.coalesce_s:
                    channel.flushing = True
                    channel.flushed_at = now
                    names, channel.dirty = channel.dirty, set()
                    self._spawn(self._flush(channel, names))
            if now >= heartbeat_at:
                heartbeat_at = now + self.heartbeat_s
                for channel in self.channels.values():
                    for client in list(channel.clients):
                        if not client.pending:
                            self._push(channel, client, beat)

    async def _flush(self, channel: Channel, names: set[str]) -> None:
        """Send a channel's coalesced events: one shared message, or per-key messages."""
        try:
            if channel.per_key is None:
                for name in sorted(names):
                    await self._broadcast(channel, format_event(name, {}).encode())
                return
            keys = sorted(channel.by_key)
            if not keys:
                return
            messages = await asyncio.get_running_loop().run_in_executor(None, channel.per_key, keys)
            channel.last_by_key = {k: v for k, v in channel.last_by_key.items() if k in channel.by_key}
            done = 0
            for key, event in messages.items():
                if channel.last_by_key.get(key) == event:  # nothing new for this key: send nothing
                    continue
                channel.last_by_key[key] = event
                message = format_event(*event).encode()
                for client in list(channel.by_key.get(key, ())):
                    self._push(channel, client, message)
                    done += 1
                if done >= self.chunk:
                    done = 0
                    await asyncio.sleep(0)
        except Exception:
            log.exception("a live-update flush failed")
        finally:
            channel.flushing = False

    # -- one stream (on the loop) ---------------------------------------------------------------

    async def serve(self, channel_name: str, key: str, receive, send) -> None:
        """Keep one client's stream open until it leaves, falls behind, or its time is up."""
        channel = self.channels[channel_name]
        client = Client(key)
        channel.clients.add(client)
        channel.by_key.setdefault(key, set()).add(client)
        watcher = asyncio.get_running_loop().create_task(self._watch_disconnect(receive, client))
        ends_at = time.monotonic() + self.max_age_s * random.uniform(0.8, 1.0)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"), (b"x-content-type-options", b"nosniff")]})
            first = f"retry: {self.retry_ms}\n" + format_event("ping", {})
            await send({"type": "http.response.body", "body": first.encode(), "more_body": True})
            if channel.per_key is not None:
                channel.dirty.add("ping")  # a keyed client gets its current state at the next flush
                channel.last_by_key.pop(key, None)
            while not client.closed:
                left = ends_at - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(client.wake.wait(), timeout=left)
                except asyncio.TimeoutError:
                    break
                client.wake.clear()
                while client.pending and not client.closed:
                    body = b"".join(client.pending)
                    client.pending.clear()
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    self.sent += 1
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, asyncio.CancelledError, RuntimeError):
            pass  # the client went away mid-write, or the server is stopping
        finally:
            self._forget(channel, client)
            watcher.cancel()

    @staticmethod
    def _forget(channel: Channel, client: Client) -> None:
        """Take a client off its channel."""
        channel.clients.discard(client)
        same_key = channel.by_key.get(client.key)
        if same_key is not None:
            same_key.discard(client)
            if not same_key:
                del channel.by_key[client.key]

    @staticmethod
    async def _watch_disconnect(receive, client: Client) -> None:
        """End the stream as soon as the server reports the client gone."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                client.close()
                return


class KioskASGI:
    """The whole kiosk as one ASGI app: Flask in worker threads, streams on the loop."""

    def __init__(self, flask_app, hub: StreamHub, *, workers: int = 16, on_startup=None, on_shutdown=None):
        """Wrap `flask_app`; `on_startup`/`on_shutdown` run in a thread at the server's start/stop."""
        from a2wsgi import WSGIMiddleware
        self.hub = hub
        self.wsgi = WSGIMiddleware(flask_app, workers=workers)
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope, receive, send):
        """Route one connection: lifespan, a stream hand-off, or a plain Flask request."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets: the screens use server-sent events
        handoff: list[str] = []

        async def intercept(message):
            """Pass Flask's answer through, unless it hands the connection to the hub."""
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == HANDOFF_HEADER and message.get("status") == 200:
                        handoff.append(value.decode("latin-1"))
                if handoff:
                    return
            elif handoff:
                return  # the hand-off's (empty) body
            await send(message)

        await self.wsgi(scope, receive, intercept)
        if handoff:
            channel, _, key = handoff[0].partition(":")
            if channel in self.hub.channels:
                await self.hub.serve(channel, key, receive, send)
            else:
                log.error("a view handed a stream to unknown channel %r", channel)
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive, send):
        """Start the hub (and the app's background work) with the server; stop them with it."""
        loop = asyncio.get_running_loop()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.hub.start()
                    if self.on_startup:
                        await loop.run_in_executor(None, self.on_startup)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.hub.stop()
                if self.on_shutdown:
                    await loop.run_in_executor(None, self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return
