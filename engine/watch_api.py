"""Watches and alerts on the Engine: the calls the CLI, the UI and the API make (engine/alerts.py does the work)."""
from __future__ import annotations

import os
import queue
import time
from typing import Optional

from . import watches as W
from .alerts import AlertService, public
from .errors import EngineError, as_engine_errors


class WatchesMixin:
    """Watches and alerts on the Engine. Needs: bank, readonly, profile(), _lock."""

    @property
    def alert_service(self) -> AlertService:
        svc = getattr(self, "_alert_svc", None)
        if svc is None:
            with self._lock:
                svc = getattr(self, "_alert_svc", None)
                if svc is None:
                    svc = self._alert_svc = AlertService(self.bank, self.profile)
        return svc

    def _watch_pipeline(self, pipe, stream: str, media_path: Optional[str] = None) -> None:
        """Hook a stream's pipeline to the watches (every stream is: watches added later apply at once)."""
        if self.readonly:
            return
        svc = self.alert_service
        svc.media[stream] = media_path
        svc._ring.pop(stream, None)
        svc._motion.pop(stream, None)   # a new run learns its background afresh
        prev_clip, prev_ev = pipe.on_clip, getattr(pipe, "on_evidence", None)

        def on_clip(mid, clip):
            if prev_clip is not None:
                prev_clip(mid, clip)
            svc.on_clip(stream, mid, clip)

        def on_evidence(mid, ev):
            if prev_ev is not None:
                prev_ev(mid, ev)
            svc.on_evidence(stream, mid, ev)

        pipe.on_clip, pipe.on_evidence = on_clip, on_evidence

    def _writable(self) -> None:
        if self.readonly:
            raise EngineError("this bank is open read-only", "conflict")

    def add_watch(self, text: str = "", *, image=None, stream: Optional[str] = None, threshold=None, cooldown=None,
                  kind: str = "auto", webhook: Optional[str] = None, dry_run: bool = False) -> dict:
        """Store a watch (see engine/watches.py); returns it as a dict. The same text, stream, kind and example
        image again updates that watch (threshold, cooldown, webhook) instead of adding a second one.
        image: a path, raw bytes or an RGB array. EngineError (one line) for anything wrong.
        dry_run: only check the input (the watch it would be, without an id), store nothing."""
        fields = W.validate(text, image=image, stream=stream, threshold=threshold, cooldown=cooldown, kind=kind,
                            webhook=webhook)
        pic = W.read_image(image) if image is not None else None
        if dry_run:
            return {"id": None, **fields, "image": None, "created": None}
        self._writable()
        with self._lock, as_engine_errors():
            digest = None
            if pic is not None:
                import hashlib

                digest = hashlib.sha1(pic.tobytes() + str(pic.shape).encode()).hexdigest()[:16]
            for row in self.bank.watches():
                same_image = (row["image"] or None) == (os.path.join("watches", digest + ".png") if digest else None)
                if (row["text"], row["stream"], row["kind"]) == (fields["text"], fields["stream"], fields["kind"]) \
                        and same_image:
                    self.bank.update_watch(row["id"], threshold=fields["threshold"], cooldown=fields["cooldown"],
                                           webhook=fields["webhook"])
                    self.alert_service.changed()
                    return self.watch(row["id"])
            if len(self.bank.watches()) >= W.MAX_WATCHES:
                raise EngineError(f"this bank has {W.MAX_WATCHES} watches already; remove some first", "conflict")
            rel = None
            if pic is not None:
                from PIL import Image

                rel = os.path.join("watches", digest + ".png")
                os.makedirs(os.path.join(self.bank.path, "watches"), exist_ok=True)
                dst = os.path.join(self.bank.path, rel)
                Image.fromarray(pic).save(dst + ".tmp.png")
                os.replace(dst + ".tmp.png", dst)
            wid = self.bank.add_watch(**fields, image=rel, created=time.time())
        self.alert_service.changed()
        return self.watch(wid)

    def watches(self, stream: Optional[str] = None) -> list[dict]:
        """The bank's watches (those for one stream and for all when stream is given)."""
        out = [W.Watch.from_row(r) for r in self.bank.watches()]
        return [w.to_dict(self.bank.path) for w in out if stream is None or w.applies_to(stream)]

    def watch(self, watch_id) -> dict:
        wid = self._watch_id(watch_id)
        for row in self.bank.watches():
            if row["id"] == wid:
                return W.Watch.from_row(row).to_dict(self.bank.path)
        raise EngineError(f"no watch with id {watch_id}", "not_found")

    @staticmethod
    def _watch_id(watch_id) -> int:
        try:
            return int(str(watch_id).strip())
        except (TypeError, ValueError):
            raise EngineError(f"no watch with id {watch_id!r} (ids are whole numbers; see `watch list`)",
                              "not_found") from None

    def remove_watch(self, watch_id) -> dict:
        """Remove a watch (its alerts stay); returns it. EngineError not_found for an unknown id."""
        self._writable()
        w = self.watch(watch_id)
        with self._lock:
            self.bank.remove_watch(w["id"])
        self.alert_service.changed()
        return w

    def alerts(self, *, since: Optional[float] = None, stream: Optional[str] = None, watch=None,
               after: Optional[int] = None, limit: Optional[int] = 200) -> list[dict]:
        """Stored alerts, oldest first: those of the last `since` seconds (wall clock), of a stream or a watch,
        after an alert id; the newest `limit`."""
        if since is not None:
            try:
                since = float(since)
            except (TypeError, ValueError):
                raise EngineError(f"since must be a number of seconds, got {since!r}") from None
            if since < 0:
                raise EngineError("since must be >= 0 seconds")
        rows = self.bank.alerts(since_wall=None if since is None else time.time() - since, stream=stream,
                                watch=None if watch is None else self._watch_id(watch), after_id=after, limit=limit)
        return [public(r, self.bank.path) for r in rows]

    def alert(self, alert_id) -> dict:
        try:
            aid = int(alert_id)
        except (TypeError, ValueError):
            raise EngineError(f"no alert {alert_id!r}", "not_found") from None
        rows = self.bank.alerts(ids=[aid])
        if not rows:
            raise EngineError(f"no alert {alert_id!r}", "not_found")
        return public(rows[0], self.bank.path)

    def add_webhook(self, url: str) -> str:
        """POST every alert of this process to url (besides each watch's own webhook)."""
        url = W.check_webhook(url)
        if url and url not in self.alert_service.webhooks:
            self.alert_service.webhooks.append(url)
        return url

    def subscribe_alerts(self, maxsize: int = 100) -> queue.Queue:
        """A queue that receives every new alert of this engine (as a dict); unsubscribe_alerts() when done."""
        return self.alert_service.subscribe(maxsize)

    def unsubscribe_alerts(self, q: queue.Queue) -> None:
        self.alert_service.unsubscribe(q)

    def drain_alerts(self, timeout: float = 30.0) -> bool:
        """Wait until every stored memory was checked and every webhook delivered (or timeout seconds)."""
        svc = getattr(self, "_alert_svc", None)
        return True if svc is None else svc.drain(timeout)

    def alert_stats(self) -> dict:
        """{"checked", "dropped", "alerts", "suppressed", "errors", "queued", "webhooks_*", "last_error"}."""
        svc = getattr(self, "_alert_svc", None)
        if svc is None:
            return {k: 0 for k in ("checked", "dropped", "alerts", "suppressed", "errors", "queued", "webhooks_sent",
                                   "webhooks_failed", "webhooks_dropped", "webhook_retries")} | {"last_error": ""}
        return svc.stats()

    def _close_alerts(self, timeout: float = 10.0) -> None:
        svc = getattr(self, "_alert_svc", None)
        if svc is not None:
            svc.close(timeout)
