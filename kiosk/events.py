"""In-process event broker: use cases publish, listeners (the live-update stream hub) receive.

Publishing never waits: a listener is called in the publisher's thread and must only hand the
event on (the stream hub passes it to its event loop). Use cases never know who listens.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

Listener = Callable[[str, dict], None]


class Broker:
    """Fan-out of named events to listeners."""

    def __init__(self):
        """No listeners yet."""
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.published = 0

    def listen(self, listener: Listener) -> None:
        """Call `listener(name, data)` for every event published from now on."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def unlisten(self, listener: Listener) -> None:
        """Stop calling `listener`."""
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    def publish(self, name: str, data: dict | None = None) -> None:
        """Send event `name` (kebab-case) with a small JSON-able payload to every listener."""
        with self._lock:
            listeners = self._listeners
            self.published += 1
        for listener in listeners:
            try:
                listener(name, data or {})
            except Exception:  # a broken listener must not fail the use case that published
                log.exception("an event listener failed on %s", name)
