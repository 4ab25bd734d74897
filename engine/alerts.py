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
from fractions import Fraction
from typing import Callable, Optional

import numpy as np

from . import watches as W
from .errors import EngineError, as_engine_errors

log = logging.getLogger("vigil.alerts")

QUEUE_SIZE = 256            # memories waiting to be checked; more are dropped and counted
RING_SECONDS = 30.0         # sampled frames kept per live stream for the alert's clip
PAD_S = 2.0                 # the clip covers the moment and this much before and after
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


# ---- the clip of the moment ---------------------------------------------------------------------------

def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def write_moment(out_path: str, *, t0: float, t1: float, media_path: Optional[str] = None,
                 frames: Optional[list] = None, pad: float = PAD_S, max_width: int = 640,
                 max_fps: float = 15.0) -> Optional[tuple[float, float]]:
    """Write an MP4 (H.264, with the file's sound when it has some) of media time [t0 - pad, t1 + pad]: decoded
    from the file when there is one, else from `frames` [(t, rgb)] (a live stream's sampled frames). Written to
    a temporary name and renamed. Returns the (start, end) it covers, or None when there was nothing to write."""
    import av

    lo, hi = max(0.0, t0 - pad), t1 + pad
    pics: list[tuple[float, np.ndarray]] = []
    audio = None
    if media_path and os.path.isfile(media_path):
        pics, audio = _read_range(media_path, lo, hi, max_fps)
    if not pics and frames:
        pics = [(t, img) for t, img in frames if lo - 1e-6 <= t <= hi + 1e-6]
    if not pics:
        return None
    h, w = pics[0][1].shape[:2]
    scale = min(1.0, max_width / w)
    W, H = _even(w * scale), _even(h * scale)
    rate = 30
    start = pics[0][0]
    end = max(hi if media_path else t1, pics[-1][0])  # a live stream's frames: held to the moment's end
    if end - pics[-1][0] > 1e-3:  # hold the last picture to the end of the window
        pics.append((end, pics[-1][1]))
    tmp = out_path + ".tmp.mp4"
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with av.open(tmp, "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        ast = None
        if audio is not None and audio.size:
            ast = out.add_stream("aac", rate=16000, layout="mono")
        last_pts = -1
        for t, img in pics:
            pts = int(round((t - start) * rate))
            if pts <= last_pts:
                continue
            last_pts = pts
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[..., :3]), format="rgb24")
            vf = vf.reformat(width=W, height=H, format="yuv420p")
            vf.pts, vf.time_base = pts, Fraction(1, rate)
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if ast is not None:
            for i in range(0, audio.size, 1024):
                buf = audio[i:i + 1024]
                if buf.size < 1024:
                    buf = np.pad(buf, (0, 1024 - buf.size))
                af = av.AudioFrame.from_ndarray(buf[None, :].astype(np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 16000, i, Fraction(1, 16000)
                for pkt in ast.encode(af):
                    out.mux(pkt)
            for pkt in ast.encode(None):
                out.mux(pkt)
    os.replace(tmp, out_path)
    return start, end


def _read_range(path: str, lo: float, hi: float, max_fps: float) -> tuple[list, Optional[np.ndarray]]:
    """Frames (at most max_fps) and 16 kHz mono sound of media time [lo, hi] of a file (t as the ingest's file
    source counts it: from the video stream's start)."""
    import av

    pics: list = []
    audio = None
    with av.open(path) as c:
        if not c.streams.video:
            return [], None
        vs = c.streams.video[0]
        vs.thread_count = 2
        off = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        c.seek(int((lo + off) / vs.time_base), stream=vs, backward=True, any_frame=False)
        next_t = lo
        for f in c.decode(vs):
            if f.time is None:
                continue
            t = float(f.time) - off
            if t > hi + 1e-6:
                break
            if t < lo - 1e-6 or t + 1e-6 < next_t:
                continue
            next_t = t + 1.0 / max_fps
            pics.append((t, f.to_ndarray(format="rgb24")))
    try:
        with av.open(path) as c:
            if c.streams.audio:
                a = c.streams.audio[0]
                c.seek(int((lo + off) / a.time_base), stream=a, backward=True, any_frame=False)
                rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
                parts, first = [], None
                for f in c.decode(a):
                    if f.time is None:
                        continue
                    if float(f.time) - off > hi:
                        break
                    for g in rs.resample(f):
                        if first is None:
                            first = float(f.time) - off
                        parts.append(g.to_ndarray().reshape(-1))
                if parts and pics:
                    s = np.concatenate(parts).astype(np.float32)
                    cut = int(round((pics[0][0] - first) * 16000))
                    s = s[cut:] if cut >= 0 else np.concatenate([np.zeros(-cut, np.float32), s])
                    audio = s[: int(round((hi - pics[0][0]) * 16000))]
    except (av.error.FFmpegError, ValueError) as e:  # the clip keeps its pictures
        log.debug("alert clip without sound: %s", e)
    return pics, audio


# ---- webhooks -----------------------------------------------------------------------------------------

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


# ---- the Engine's side --------------------------------------------------------------------------------

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
