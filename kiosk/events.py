"""In-process event broker: use cases publish, SSE streams subscribe (one bounded queue per client).

A slow or vanished client never blocks a publisher: when its queue is full it is dropped and its
stream ends, and the browser's EventSource reconnects and re-fetches the current state.
"""
from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger(__name__)


class Broker:
    """Fan-out of named events to subscribers."""

    def __init__(self, maxsize: int = 100):
        """No subscribers yet; each gets a queue of `maxsize` events."""
        self.maxsize = maxsize
        self._subscribers: set[queue.Queue] = set()
        self._lock = threading.Lock()
        self.published = 0

    def subscribe(self) -> queue.Queue:
        """A new subscriber queue; pass it to `unsubscribe` when done."""
        q: queue.Queue = queue.Queue(self.maxsize)
        with self._lock:
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        """Stop delivering to `q`."""
        with self._lock:
            self._subscribers.discard(q)

    def publish(self, name: str, data: dict | None = None) -> None:
        """Send event `name` (kebab-case) with a small JSON-able payload to every subscriber."""
        with self._lock:
            subscribers = list(self._subscribers)
            self.published += 1
        for q in subscribers:
            try:
                q.put_nowait((name, data or {}))
            except queue.Full:
                log.info("dropping a subscriber that fell %d events behind", self.maxsize)
                self.unsubscribe(q)
                try:
                    q.get_nowait()
                    q.put_nowait(("__closed__", {}))
                except (queue.Empty, queue.Full):
                    pass

    @property
    def subscribers(self) -> int:
        """How many clients are listening."""
        with self._lock:
            return len(self._subscribers)
