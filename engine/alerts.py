"""Alerts: the worker that checks every new memory against the watches (engine/watches.py), stores what fires,
writes a short MP4 of the moment, and delivers it (subscribers: the UI and the API's event stream; webhooks).

Ingestion never waits for any of it: the pipeline's hooks (`on_clip` after each acknowledged memory, and
`on_evidence` when a lagging transcript is attached later) only put a reference on a bounded queue; a full queue
drops the item and counts it (`stats()["dropped"]`). One worker thread checks; webhooks go out from two sender
threads of their own, each POST retried with exponential backoff (tenacity) and finally logged.

An alert (table `alerts`, files <bank>/alerts/<watch>-<memory>.jpg|.mp4), as every face shows it:
    {"id", "watch", "watch_id", "stream", "start", "end", "score", "evidence", "thumbnail", "clip",
     "clip_start", "clip_end", "memory_id", "created"}
The webhook body is {"watch", "stream", "start", "end", "score", "evidence", "thumbnail"} plus "id" and
"watch_id" (thumbnail: its path on the server).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import queue
import shutil
import threading
import time
from typing import Callable, Optional

import numpy as np

from . import watches as W
from .moments import write_moment
from .webhooks import WebhookSender

log = logging.getLogger("vigil.alerts")

QUEUE_SIZE = 256            # memories waiting to be checked; more are dropped and counted
RING_SECONDS = 30.0         # sampled frames kept per live stream for the alert's clip
WEBHOOK_KEYS = ("watch", "stream", "start", "end", "score", "evidence", "thumbnail")


def public(row: dict, bank_path: str) -> dict:
    """An alert row as the faces show it (absolute file paths, rounded times)."""
    def path(rel):
        return os.path.join(bank_path, rel) if rel else None

    return {"id": row["id"], "watch": row["watch_text"], "watch_id": row["watch"], "stream": row["stream"],
            "start": round(float(row["t0"]), 3), "end": round(float(row["t1"]), 3),
            "score": round(float(row["score"]), 4), "evidence": row["evidence"] or "",
            "thumbnail": path(row["thumb"]), "clip": path(row["clip"]),
            "clip_start": None if row["clip_t0"] is None else round(float(row["clip_t0"]), 3),
            "clip_end": None if row["clip_t1"] is None else round(float(row["clip_t1"]), 3),
            "memory_id": row["memory_id"], "created": row["created"],
            "delivery": json.loads(row["delivery"]) if row.get("delivery") else {}}


class AlertService:
    """Checks new memories against the bank's watches in one worker thread; see the module docstring.

    bank: the open (writable) MemoryBank; profile: a callable returning the loaded model profile (its text
    embedder, encoder, OCR reader and, with a VLM, the yes/no model)."""

    def __init__(self, bank, profile: Callable[[], object], queue_size: int = QUEUE_SIZE,
                 sender: Optional[WebhookSender] = None):
        self.bank = bank
        self._profile = profile
        self._q: queue.Queue = queue.Queue(queue_size)
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._delivery_lock = threading.Lock()
        self._stop = threading.Event()
        self.sender = sender or WebhookSender()
        self.webhooks: list[str] = []                 # this process's webhooks (every alert goes there too)
        self.media: dict[str, Optional[str]] = {}     # stream -> the file being ingested (None: live)
        self._ring: dict[str, collections.deque] = {}
        self._subscribers: list[queue.Queue] = []
        self._watches: list = []
        self._watches_at = 0.0
        self._version = 0
        self._seen_version = -1
        self._recent: dict[tuple, list] = {}          # (watch, stream) -> [(t0, t1)] of its latest alerts
        self._fired: collections.OrderedDict = collections.OrderedDict()  # (watch, memory) already alerted
        self._matcher: Optional[W.TextMatcher] = None
        self._examples: dict = {}                     # watch id -> (space, key, word stems)
        self._motion: dict[str, object] = {}
        self._runs: dict[tuple, tuple] = {}           # (watch, stream) -> (start, t1) of what a dwell watch sees
        self.counts = collections.Counter()           # checked, dropped, alerts, suppressed, errors
        self.last_error = ""

    # ---- hooks (called on the ingest thread: never block) -------------------------------------------

    def on_clip(self, stream: str, memory_id: int, clip) -> None:
        frames = [(f.t, f.image) for f in getattr(clip, "frames", None) or []]
        if frames and self.media.get(stream) is None:
            ring = self._ring.get(stream)
            if ring is None:
                ring = self._ring[stream] = collections.deque()
            ring.extend(frames)
            while ring and ring[-1][0] - ring[0][0] > RING_SECONDS:
                ring.popleft()
        self._put(("clip", stream, memory_id, frames))

    def on_evidence(self, stream: str, memory_id: int, evidence: dict) -> None:
        self._put(("evidence", stream, memory_id, None))

    def _put(self, item) -> None:
        self._start()
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.counts["dropped"] += 1

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, daemon=True, name="vigil-watches")
                    self._thread.start()

    # ---- subscribers --------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 100) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize)
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def _publish(self, alert: dict) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for q in subs:
            try:
                q.put_nowait(alert)
            except queue.Full:  # a slow reader loses its oldest, never the worker's time
                try:
                    q.get_nowait()
                    q.put_nowait(alert)
                except (queue.Empty, queue.Full):
                    pass

    # ---- watches ------------------------------------------------------------------------------------

    def changed(self) -> None:
        """The bank's watches changed (added, removed): reload them before the next check."""
        with self._lock:
            self._version += 1

    def watches(self) -> list:
        now = time.monotonic()
        if self._seen_version != self._version or now - self._watches_at > 2.0:
            self._seen_version = self._version
            self._watches = [W.Watch.from_row(r) for r in self.bank.watches()]
            self._watches_at = now
            live = {w.id for w in self._watches}
            self._examples = {k: v for k, v in self._examples.items() if k in live}
        return self._watches

    # ---- the loop -----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if item is None:  # close(): wake now rather than at the next poll
                    return
                self._check(*item)
            except Exception as e:  # noqa: BLE001 - a failing check never stops the worker
                self.counts["errors"] += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("checking memory %s against the watches failed: %s", item[2], e, exc_info=True)
            finally:
                self._q.task_done()

    def idle(self) -> bool:
        return self._q.unfinished_tasks == 0

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait (at most timeout seconds) until every queued memory is checked and every webhook delivered."""
        end = time.monotonic() + timeout
        while not self.idle() and time.monotonic() < end:
            time.sleep(0.05)
        return self.sender.drain(max(0.0, end - time.monotonic())) and self.idle()

    def close(self, timeout: float = 5.0) -> None:
        self.drain(timeout)
        self._stop.set()
        if self._thread is not None:
            try:
                self._q.put_nowait(None)
            except queue.Full:  # the drain timed out on a full queue: the worker sees the stop flag instead
                pass
            self._thread.join(2.0)

    def _check(self, event: str, stream: str, memory_id: int, frames) -> None:
        watches = [w for w in self.watches() if w.applies_to(stream)]
        if event == "evidence":  # a transcript arrived: only the checks that read text
            watches = [w for w in watches if w.kind in ("speech", "screen", "text", "image")]
        if not watches:
            return
        mems = self.bank.get([memory_id])
        if not mems:
            return
        mem = mems[0]
        self.counts["checked"] += 1
        cache: dict = {}
        for w in watches:
            if (w.id, mem.id) in self._fired:
                continue
            score, evidence = self._score(w, mem, frames, cache)
            if score >= float(w.threshold):
                self._fire(w, mem, score, evidence, frames)

    # ---- scoring ------------------------------------------------------------------------------------

    def _vlm(self, prof):
        model = getattr(prof, "answerer", None) or getattr(prof, "encoder", None)
        return model if model is not None and W.can_answer_yes_no(model) else None

    def _score(self, w, mem, frames, cache: dict) -> tuple[float, str]:
        prof = self._profile()
        kind = w.kind
        if kind in ("speech", "screen", "text"):
            topic, _ = W.parse_text(w.text)
            where = {"speech": "speech", "screen": "screen"}.get(kind, "any")
            if self._matcher is None or self._matcher.embedder is not getattr(prof, "text_embedder", None):
                self._matcher = W.TextMatcher(getattr(prof, "text_embedder", None))
            best = self._matcher.score(topic, W.units_of(mem.evidence, where))
            if kind == "text" and best[0] < w.threshold and self._vlm(prof) is not None:
                best = max(best, self._vlm_score(prof, w, mem, cache))
            return best
        if kind == "image":
            return self._image_score(prof, w, mem)
        if kind == "vlm":
            return self._vlm_score(prof, w, mem, cache) if self._vlm(prof) is not None else (0.0, "")
        if kind in ("motion", "people"):
            if not frames:
                return 0.0, ""
            if kind == "motion":
                if "motion" not in cache:
                    det = self._motion.get(mem.stream)
                    if det is None:
                        from models.detect import MotionDetector

                        det = self._motion[mem.stream] = MotionDetector()
                    cache["motion"] = max(det.update(img) for _, img in frames)
                best = W.motion_score(cache["motion"])
            else:
                if "faces" not in cache:
                    from models.detect import face_detector

                    det = face_detector()
                    cache["faces"] = max((b[4] for _, img in frames for b in det.detect(img)[:1]), default=0.0)
                best = W.people_score(cache["faces"])
            if best[0] < w.threshold and self._vlm(prof) is not None:
                best = max(best, self._vlm_score(prof, w, mem, cache))
            return self._dwell(w, mem, best)
        return 0.0, ""

    def _dwell(self, w, mem, best: tuple[float, str]) -> tuple[float, str]:
        """A watch that asks for something lasting ("lingers", "for 30 seconds"): the score counts only once it has
        been seen in every clip of the stream for that long (the run restarts at a clip without it)."""
        need = W.dwell_seconds(w.text)
        if need <= 0:
            return best
        key = (w.id, mem.stream)
        if best[0] < w.threshold:
            self._runs.pop(key, None)
            return best
        start, last_t1 = self._runs.get(key, (mem.t0, mem.t0))
        if mem.t0 - last_t1 > 1.0:  # a gap (a clip without it was dropped or the stream jumped): start again
            start = mem.t0
        self._runs[key] = (start, mem.t1)
        if mem.t1 - start + 1e-6 < need:
            return 0.0, ""
        return best[0], f"{best[1]}; there for {mem.t1 - start:.0f} s"

    def _vlm_score(self, prof, w, mem, cache: dict) -> tuple[float, str]:
        from memory.carriers import to_carrier
        from models.base import MemoryView

        model = self._vlm(prof)
        if mem.m is None or not mem.m or mem.space != getattr(model, "space", None):
            return 0.0, ""
        key = ("vlm", w.id)
        if key not in cache:
            if "carrier" not in cache:
                cache["carrier"] = to_carrier(self.bank.carrier(mem.id))
            view = MemoryView(mem.id, mem.stream, mem.t0, mem.t1, 1.0, cache["carrier"], dict(mem.evidence),
                              None, getattr(mem, "steps", None))
            p, _ = W.vlm_yes_probability(model, w.text, view)
            cache[key] = p
        p = cache[key]
        return p, f"the VLM answers yes with P={p:.2f}"

    def _example(self, prof, w):
        if w.id not in self._examples:
            img = W.read_image(os.path.join(self.bank.path, w.image))
            keys = prof.query_keys(image=img)
            space, key = next(iter(keys.items())) if keys else (None, None)
            words: set = set()
            reader = next((getattr(ex, "reader", None) for ex in getattr(prof, "evidence", []) or []
                           if getattr(ex, "reader", None) is not None), None)
            if reader is not None:
                try:
                    words = set(W._stem_words(" ".join(reader.read(img))))
                except Exception:  # noqa: BLE001 - no text then
                    words = set()
            if len(words) < 3:  # a word or two of text does not say which slide it is
                words = set()
            self._examples[w.id] = (space, None if key is None else np.asarray(key, np.float32), words)
        return self._examples[w.id]

    def _image_score(self, prof, w, mem) -> tuple[float, str]:
        if not w.image:
            return 0.0, ""
        space, key, words = self._example(prof, w)
        if space is None:
            return 0.0, ""
        return W.image_score(key, self.bank.key_of(mem.id, space), words, (mem.evidence or {}).get("ocr") or "")

    # ---- firing -------------------------------------------------------------------------------------

    def _cooling(self, w, mem) -> bool:
        key = (w.id, mem.stream)
        if key not in self._recent:
            self._recent[key] = [(a["t0"], a["t1"]) for a in self.bank.alerts(watch=w.id, stream=mem.stream, limit=8)]
        cd = float(w.cooldown or 0.0)
        return any(max(mem.t0 - b, a - mem.t1) < cd for a, b in self._recent[key])

    def _fire(self, w, mem, score: float, evidence: str, frames) -> Optional[dict]:
        self._fired[(w.id, mem.id)] = True
        while len(self._fired) > 20000:
            self._fired.popitem(last=False)
        if self._cooling(w, mem):
            self.counts["suppressed"] += 1
            return None
        recent = self._recent.setdefault((w.id, mem.stream), [])
        recent.append((mem.t0, mem.t1))
        del recent[:-8]
        base = f"{w.id}-{mem.id}"
        thumb = None
        if mem.thumb and os.path.isfile(os.path.join(self.bank.path, mem.thumb)):
            thumb = os.path.join("alerts", base + ".jpg")
            os.makedirs(os.path.join(self.bank.path, "alerts"), exist_ok=True)
            shutil.copyfile(os.path.join(self.bank.path, mem.thumb), os.path.join(self.bank.path, thumb))
        row = dict(watch=w.id, watch_text=w.label(), stream=mem.stream, memory_id=mem.id, t0=float(mem.t0),
                   t1=float(mem.t1), wall=mem.wall, score=float(score), evidence=evidence or "", thumb=thumb,
                   clip=None, clip_t0=None, clip_t1=None, created=time.time(), delivery=None)
        row["id"] = self.bank.add_alert(**row)
        alert = public(row, self.bank.path)
        self.counts["alerts"] += 1
        log.info("alert %s: %r on %s at %.1f-%.1fs (score %.2f) %s", row["id"], w.label(), mem.stream, mem.t0,
                 mem.t1, score, evidence)
        # deliver first (the delay that matters), then write the clip
        body = {**{k: alert[k] for k in WEBHOOK_KEYS}, "id": alert["id"], "watch_id": w.id}
        for url in dict.fromkeys([u for u in [w.webhook, *self.webhooks] if u]):
            self.sender.send(url, body, self._delivered(row["id"]))
        try:
            rel = os.path.join("alerts", base + ".mp4")
            span = write_moment(os.path.join(self.bank.path, rel), t0=mem.t0, t1=mem.t1,
                                media_path=self.media.get(mem.stream),
                                frames=list(self._ring.get(mem.stream, ())) or frames)
            if span is not None:
                self.bank.update_alert(row["id"], clip=rel, clip_t0=span[0], clip_t1=span[1])
                alert.update(clip=os.path.join(self.bank.path, rel), clip_start=round(span[0], 3),
                             clip_end=round(span[1], 3))
        except Exception as e:  # noqa: BLE001 - the alert stands without its clip
            log.warning("alert %s: could not write its clip: %s", row["id"], e)
        self._publish(alert)
        return alert

    def _delivered(self, alert_id: int):
        def done(url: str, ok: bool, why: str) -> None:
            with self._delivery_lock:  # two webhooks of one alert finish on two sender threads
                rows = self.bank.alerts(ids=[alert_id])
                d = json.loads(rows[0]["delivery"]) if rows and rows[0]["delivery"] else {}
                d[url] = "delivered" if ok else f"failed: {why}"
                self.bank.update_alert(alert_id, delivery=json.dumps(d))
        return done

    def stats(self) -> dict:
        return {"checked": self.counts["checked"], "dropped": self.counts["dropped"], "alerts": self.counts["alerts"],
                "suppressed": self.counts["suppressed"], "errors": self.counts["errors"],
                "queued": self._q.qsize(), "webhooks_sent": self.sender.sent, "webhooks_failed": self.sender.failed,
                "webhooks_dropped": self.sender.dropped, "webhook_retries": self.sender.retries,
                "last_error": self.last_error or self.sender.last_error}
