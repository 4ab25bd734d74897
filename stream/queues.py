"""Bounded queues between a source's reader thread and the pipeline.

Live sources drop the oldest item when the consumer falls behind (latency beats completeness);
files block the reader instead (back-pressure: nothing is dropped).
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Optional

_CLOSED = object()


class Closed(Exception):
    """The queue was closed and is empty."""


class FrameQueue:
    """Thread-safe bounded FIFO. drop_oldest=True: put never blocks and evicts the oldest (counted in `dropped`)."""

    def __init__(self, maxsize: int, drop_oldest: bool):
        if maxsize < 1:
            raise ValueError("maxsize must be ≥ 1")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: Any, timeout: Optional[float] = None) -> bool:
        """Add an item; False when the queue is closed (or, blocking, the timeout passed)."""
        with self._cond:
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                if self.drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                else:
                    ok = self._cond.wait_for(lambda: self._closed or len(self._items) < self.maxsize, timeout)
                    if not ok or self._closed:
                        return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: Optional[float] = None) -> Any:
        """Next item; raises Closed when closed and drained, TimeoutError when nothing came in time."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._closed:
                raise Closed()
            if not ok:
                raise TimeoutError()
            raise Closed()  # pragma: no cover

    def close(self) -> None:
        """No more puts; gets drain what is left, then raise Closed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
