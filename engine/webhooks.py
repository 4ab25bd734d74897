"""Webhook delivery for alerts: POSTs from threads of their own, retried with exponential backoff (tenacity)."""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Optional

log = logging.getLogger("vigil.alerts")


class _Retryable(Exception):
    pass


class WebhookSender:
    """POSTs JSON to webhooks from its own threads: a bounded queue (full: dropped and counted), each delivery
    retried with exponential backoff (tenacity: `attempts` tries, waits from `wait_min` doubling up to
    `wait_max` seconds) on connection errors, timeouts and 5xx/429 answers; then logged as failed."""

    def __init__(self, attempts: int = 5, timeout: float = 5.0, wait_min: float = 0.5, wait_max: float = 8.0,
                 threads: int = 2, queue_size: int = 1000):
        self.attempts, self.timeout, self.wait_min, self.wait_max = attempts, timeout, wait_min, wait_max
        self._q: queue.Queue = queue.Queue(queue_size)
        self._threads: list = []
        self._n = threads
        self._lock = threading.Lock()
        self.sent = self.failed = self.dropped = self.retries = 0
        self.last_error = ""

    def send(self, url: str, body: dict, done: Optional[Callable[[str, bool, str], None]] = None) -> bool:
        with self._lock:
            if not self._threads:
                for i in range(self._n):
                    t = threading.Thread(target=self._run, daemon=True, name=f"vigil-webhook-{i}")
                    t.start()
                    self._threads.append(t)
        try:
            self._q.put_nowait((url, body, done))
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.warning("webhook queue full: dropped an alert for %s", url)
            return False

    def _post(self, client, url: str, body: dict) -> None:
        import httpx

        try:
            r = client.post(url, json=body, timeout=self.timeout)
        except httpx.HTTPError as e:
            raise _Retryable(f"{type(e).__name__}: {e}".strip()) from None
        if r.status_code >= 500 or r.status_code == 429:
            raise _Retryable(f"HTTP {r.status_code}")
        if r.status_code >= 400:
            raise RuntimeError(f"HTTP {r.status_code}")

    def _deliver(self, client, url: str, body: dict) -> tuple[bool, str]:
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        def before_sleep(state):
            with self._lock:
                self.retries += 1
            log.info("webhook %s: %s; retrying", url, state.outcome.exception())

        try:
            for attempt in Retrying(stop=stop_after_attempt(self.attempts),
                                    wait=wait_exponential(multiplier=self.wait_min, min=self.wait_min,
                                                          max=self.wait_max),
                                    retry=retry_if_exception_type(_Retryable), before_sleep=before_sleep,
                                    reraise=False):
                with attempt:
                    self._post(client, url, body)
            return True, ""
        except RetryError as e:
            return False, f"{e.last_attempt.exception()} after {self.attempts} tries"
        except Exception as e:  # noqa: BLE001 - a 4xx answer: not retried
            return False, str(e)

    def _run(self) -> None:
        import httpx

        with httpx.Client(follow_redirects=False) as client:
            while True:
                url, body, done = self._q.get()
                try:
                    ok, why = self._deliver(client, url, body)
                    with self._lock:
                        if ok:
                            self.sent += 1
                        else:
                            self.failed += 1
                            self.last_error = f"{url}: {why}"
                    if not ok:
                        log.warning("webhook delivery to %s failed: %s", url, why)
                    if done is not None:
                        try:
                            done(url, ok, why)
                        except Exception:  # noqa: BLE001
                            log.debug("webhook callback failed", exc_info=True)
                finally:
                    self._q.task_done()

    def idle(self) -> bool:
        return self._q.unfinished_tasks == 0

    def drain(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self.idle() and time.monotonic() < end:
            time.sleep(0.05)
        return self.idle()


# ---- the worker ---------------------------------------------------------------------------------------
