"""Speech -> timestamped transcript segments with faster-whisper and the bundled Whisper base (or tiny.en).

Streaming, whisper_streaming-style but cut at silences: audio arrives with `insert(audio, t0)`; `process()`
runs Silero VAD (bundled with faster-whisper) over the uncommitted buffer, transcribes everything up to the
last pause once, commits those segments with absolute media timestamps and drops that audio, so no segment
is emitted twice and each sample is decoded about once. A buffer that grows past `max_window_s` without a
pause is cut there. `finish()` flushes the rest. Each window is recognized by `models.asr_window.recognize`
(temperature 0 first, Whisper's fallback where it fails, hotwords it copied dropped, the speech after an early stop
decoded again, the unsure and the foreign dropped). Whisper is prompted with the screen's words and names read
earlier (models.asr_prompt).

Nothing here raises on bad audio: silent, empty, corrupt (NaN/inf, wrong shape) or non-English audio gives
an empty list, and `reason` says why (one line, for the user). Only a model that cannot load raises ModelError.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.asr_prompt import hotword_text, prompt_text  # noqa: E402
from models.asr_segments import Segment  # noqa: E402
from models.asr_window import WindowOptions, recognize  # noqa: E402
from models.asr_weights import default_model_path, load_whisper, yield_cpu  # noqa: E402
from models.base import ModelError, stage_threads  # noqa: E402

log = logging.getLogger(__name__)
SR = 16000


def sanitize_audio(audio) -> tuple[np.ndarray, str]:
    """Any array-like -> (mono float32 in [-1, 1], reason). reason is "" when the audio is usable."""
    try:
        a = np.asarray(audio)
    except Exception as e:  # noqa: BLE001
        return np.zeros(0, np.float32), f"corrupt audio ({type(e).__name__})"
    if a.size == 0:
        return np.zeros(0, np.float32), "empty audio"
    if a.dtype.kind not in "fiu":
        return np.zeros(0, np.float32), f"corrupt audio (dtype {a.dtype})"
    if a.ndim == 2:  # [C, S] or [S, C] -> mono
        a = a.mean(axis=0 if a.shape[0] <= 8 and a.shape[0] < a.shape[1] else 1)
    elif a.ndim != 1:
        return np.zeros(0, np.float32), f"corrupt audio (shape {a.shape})"
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        a = (a.astype(np.float32) - (info.max + info.min + 1) / 2) / (info.max - info.min + 1) * 2
    a = a.astype(np.float32, copy=False)
    bad = ~np.isfinite(a)
    if bad.any():
        if bad.mean() > 0.01:
            return np.zeros(0, np.float32), f"corrupt audio ({bad.mean():.0%} NaN/inf samples)"
        a = np.where(bad, 0.0, a).astype(np.float32)
    peak = float(np.abs(a).max())
    if peak > 1.0:
        a = a / peak
    return a, ""


class Transcriber:
    """faster-whisper (CTranslate2, int8 on CPU) over a streaming buffer; see the module docstring.

    insert(audio, t0)        add 16 kHz mono float32 samples whose first sample is at media time t0
    process() -> segments    commit what lies before the last pause (or past max_window_s)
    finish()  -> segments    commit everything left
    transcribe_clip(audio, t0) -> segments   one-shot, independent of the buffer
    reason                   why the last call produced nothing ("" when it produced something)
    """

    def __init__(self, model_path: Optional[str] = None, device: str = "cpu", compute_type: str = "int8",
                 cpu_threads: int = 0, language: str = "en", beam_size: int = 5, min_chunk_s: float = 2.0,
                 max_window_s: float = 20.0, min_silence_s: float = 0.5, min_logprob: float = -1.1,
                 max_compression: float = 2.4, model=None,
                 context: Optional[Callable[[float, float], str]] = None, prompt_words: int = 60,
                 word_times: bool = True, window_s: float = 0.0, lang_check_logprob: float = -0.5,
                 vocabulary: Optional[Callable[[], list[str]]] = None, hotword_count: int = 20,
                 workers: int = 2):
        """model: an already loaded WhisperModel to share (one per process; each Transcriber keeps only its own
        stream's buffer). context(t0, t1): text known to be on screen while [t0, t1] was said (the slide's words),
        given to Whisper as its initial prompt (at most prompt_words words), so names and numbers shown are spelt
        as shown. vocabulary(): names read on screen earlier in the stream (the latest last); the hotword_count latest
        that are not in the prompt are given to Whisper as hotwords (a name on the agenda slide said later).
        Beam 5 (Whisper's own default): on the dev meetings it costs 2-20% more ASR time than greedy
        decoding and, with the slide words as prompt, took the word error rate of a slide deck from 0.068 to 0.045.
        word_times: each segment is cut into its sentences, each stamped with its share of the segment's time
        (`sentence_segments`): a long segment no longer spans clips where its sentence was not said. (Whisper's own
        word timestamps were tried: with the slide-text prompt they made it re-decode each window's silent tail
        and hallucinate "Thank you." / "see you next time": dev WER 0.06 -> 0.16.)
        window_s: audio to gather before a commit (0: commit at the first pause after min_chunk_s, the latency a live
        stream needs). Whisper pads every call to a 30-s window, so a file cut at every pause (~4-s pieces) paid
        2.6x the Whisper CPU per second of speech (dev talk: 16.3 -> 6.2 s): `for_files()` sets 22 s, which also
        gives Whisper more context (dev word error rate 0.08-0.14 -> 0.03-0.06).
        lang_check_logprob: a window whose mean log-probability is below this is checked to be English
        (`asr_window.is_english`); one below min_logprob + 0.1 is dropped outright.
        cpu_threads: CTranslate2's threads (0: `stage_threads()`, this model's share of the cores: a file's windows
        are recognized beside the frame encoder and OCR, and two stages each on every core spin at barriers).
        workers: CTranslate2 workers, each on cpu_threads threads. A file's windows are independent (each prompted
        by its own screen): while its clips come in they are recognized one at a time (`MAX_QUEUED`), and the ones
        left once the last clip is in (`finish`) on every worker, which used to leave a core idle. The workers run
        at a lower priority (`asr_weights.YIELD_NICE`), so they do not take the cores the video side needs (a live
        stream's too: its clips come at their own pace, which the encoder keeps well ahead of)."""
        try:
            from faster_whisper.vad import VadOptions, get_speech_timestamps
        except ImportError as e:  # pragma: no cover
            raise ModelError("faster-whisper is not installed: pip install faster-whisper") from e
        self._vad_opts = VadOptions(min_silence_duration_ms=int(min_silence_s * 1000), speech_pad_ms=200)
        self._get_speech = get_speech_timestamps
        if model is not None:
            self.model = model
        else:
            path = model_path or default_model_path()
            threads = cpu_threads or min(4, stage_threads())
            try:
                self.model = load_whisper(path, device, compute_type, threads, max(1, workers))
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"could not load the speech model at {path}: {e}".splitlines()[0]) from e
        self.language = language
        self.beam_size = beam_size
        self.min_chunk_s = min_chunk_s
        self.max_window_s = self._max_window0 = max_window_s
        self.min_silence_s = min_silence_s
        self.min_logprob = min_logprob
        self.max_compression = max_compression
        self.lang_check_logprob = lang_check_logprob
        self.context = context
        self.prompt_words = prompt_words
        self.vocabulary = vocabulary
        self.hotword_count = hotword_count
        self.word_times = word_times
        self.window_s = window_s
        self.workers = max(1, workers)
        self.reason = ""
        self.audio_seconds = 0.0      # audio decoded so far (for realtime-factor stats)
        self.compute_seconds = 0.0
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._buf = np.zeros(0, np.float32)
        self._buf_t0: Optional[float] = None
        self._since_process = 0.0
        self._pending: list[Segment] = []
        self.background = False     # recognize committed windows on a thread of their own (`for_files`)
        self._queued: deque[Future] = deque()
        self._pool: Optional[ThreadPoolExecutor] = None
        self._gate: Optional[threading.Semaphore] = None

    def fresh(self) -> "Transcriber":
        """A Transcriber for another stream: the same loaded model and settings, an empty buffer, latency first
        (`for_files` is a per-stream choice: the pipeline makes it for a file)."""
        return Transcriber(language=self.language, beam_size=self.beam_size, min_chunk_s=self.min_chunk_s,
                           max_window_s=self._max_window0, min_silence_s=self.min_silence_s,
                           min_logprob=self.min_logprob, max_compression=self.max_compression, model=self.model,
                           word_times=self.word_times, lang_check_logprob=self.lang_check_logprob,
                           hotword_count=self.hotword_count, workers=self.workers)

    FILE_WINDOW_S = 22.0
    # windows waiting for the background recognizer before process() waits (bounds memory: 32 windows of 22 s are
    # 45 MB). Deep enough that the video side is not held back by speech: while it runs, one window is recognized at
    # a time (two busy threads on two cores); once the last clip is in (finish), the rest on every worker.
    MAX_QUEUED = 32

    def for_files(self, window_s: float = FILE_WINDOW_S) -> None:
        """Throughput over latency (a recorded file: nobody waits on each sentence): gather window_s of audio, cut
        at its last pause, so each Whisper call fills most of its 30-s window; and recognize each window on a
        thread of its own (`background`) while the caller goes on with the next clips (the pipeline decodes,
        encodes and reads the screen meanwhile: on 2 cores this overlap is most of what lets Whisper base keep up).
        Its segments come out of a later process() or finish(), in order."""
        self.window_s = window_s
        self.max_window_s = max(self.max_window_s, window_s + 6.0)
        self.background = True

    # ------------------------------------------------------------------ streaming
    def insert(self, audio, t0: float) -> None:
        """Append audio starting at media time t0. A gap (t0 later than the buffer end by > 0.5 s) flushes the
        buffer first; an overlap trims the already-buffered part."""
        a, why = sanitize_audio(audio)
        with self._lock:
            if why:
                self.reason = why
                return
            if self._buf_t0 is None or self._buf.size == 0:
                self._buf, self._buf_t0 = a.copy(), float(t0)
            else:
                end = self._buf_t0 + self._buf.size / SR
                if t0 > end + 0.5:  # gap in the source: decode what we have, start afresh
                    self._pending += self._commit(len(self._buf))
                    self._buf, self._buf_t0 = a.copy(), float(t0)
                else:
                    skip = int(round((end - t0) * SR))
                    if skip > 0:
                        a = a[skip:]
                    self._buf = np.concatenate([self._buf, a])
            self._since_process += a.size / SR

    def process(self) -> list[Segment]:
        """Transcribe and return the segments that are final now (before the last pause in the buffer; in the
        background: those of earlier windows that have finished)."""
        with self._lock:
            out, self._pending = self._pending, []
            return out + self._cut() + self._done()

    def _cut(self) -> list[Segment]:
        """Commit the buffer up to its last pause (or past max_window_s), once enough audio has come."""
        if self._buf.size == 0 or self._since_process < self.min_chunk_s or self._buf.size / SR < self.window_s:
            return []
        self._since_process = 0.0
        n = self._buf.size
        try:
            speech = self._get_speech(self._buf, self._vad_opts)
        except Exception as e:  # noqa: BLE001
            self.reason = f"voice activity detection failed: {e}".splitlines()[0]
            self._drop(n)
            return []
        if not speech:
            keep = int(0.5 * SR)  # speech may be starting at the very end
            self._drop(max(0, n - keep))
            self.reason = "no speech detected"
            return []
        tail_silence = (n - speech[-1]["end"]) / SR
        if tail_silence >= self.min_silence_s:
            cut = n  # everything heard so far is complete
        elif len(speech) > 1:
            cut = (speech[-2]["end"] + speech[-1]["start"]) // 2  # the middle of the last pause
        elif n / SR >= self.max_window_s:
            cut = n
        else:
            return []  # one utterance still going on
        return self._commit(cut)

    def finish(self) -> list[Segment]:
        """Transcribe whatever is left (waiting for the background recognizer: the windows still queued are
        recognized on every worker now that nothing else runs beside them) and reset the stream."""
        with self._lock:
            out, self._pending = self._pending, []
            if self._buf.size:
                out += self._commit(self._buf.size)
            if self._gate is not None:
                for _ in range(self.workers - 1):
                    self._gate.release()
            out += self._done(keep=0)
            self._stop_pool()
            self._buf, self._buf_t0, self._since_process = np.zeros(0, np.float32), None, 0.0
            return out

    def reset(self) -> None:
        with self._lock:
            self._done(keep=0)
            self._buf, self._buf_t0, self._since_process, self._pending = np.zeros(0, np.float32), None, 0.0, []

    # ------------------------------------------------------------------ one-shot
    def transcribe_clip(self, audio, t0: float = 0.0) -> list[Segment]:
        """Transcribe one piece of audio (e.g. a clip's) on its own; segments in absolute media seconds."""
        a, why = sanitize_audio(audio)
        if why:
            self.reason = why
            return []
        prompt = self._prompt(float(t0), float(t0) + a.size / SR)
        return self._transcribe(a, float(t0), prompt, self._hotwords(prompt))

    def transcribe_file_audio(self, audio, t0: float = 0.0, window_s: float = 30.0) -> list[Segment]:
        """Long audio through the streaming path in window_s pieces (what a live stream would see)."""
        a, why = sanitize_audio(audio)
        if why:
            self.reason = why
            return []
        self.reset()
        out: list[Segment] = []
        step = int(window_s * SR)
        for i in range(0, a.size, step):
            self.insert(a[i:i + step], t0 + i / SR)
            out += self.process()
        return out + self.finish()

    # ------------------------------------------------------------------ internals
    def _drop(self, n: int) -> None:
        self._buf = self._buf[n:]
        self._buf_t0 = (self._buf_t0 or 0.0) + n / SR

    def _commit(self, cut: int) -> list[Segment]:
        """Recognize the first `cut` samples of the buffer (now, or queued for the background recognizer; its
        prompt is taken now, from what was on screen then) and drop them from the buffer."""
        piece, t0 = self._buf[:cut], self._buf_t0 or 0.0
        self._drop(cut)
        prompt = self._prompt(t0, t0 + piece.size / SR)
        hot = self._hotwords(prompt)
        if not self.background:
            return self._transcribe(piece, t0, prompt, hot)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vigil-asr",
                                            initializer=yield_cpu)
            self._gate = threading.Semaphore(1)  # one window at a time until finish()
        self._queued.append(self._pool.submit(self._gated, self._gate, piece, t0, prompt, hot))
        return self._done(keep=self.MAX_QUEUED)

    def _gated(self, gate: threading.Semaphore, *args) -> list[Segment]:
        with gate:
            return self._transcribe(*args)

    def _done(self, keep: Optional[int] = None) -> list[Segment]:
        """Segments of the queued windows in order: those finished, and (waiting) the oldest beyond `keep` still
        queued; None: only what has finished."""
        out: list[Segment] = []
        while self._queued and (self._queued[0].done() or (keep is not None and len(self._queued) > keep)):
            out += self._queued.popleft().result()
        return out

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = self._gate = None

    def _transcribe(self, a: np.ndarray, t0: float, prompt: Optional[str] = None,
                    hotwords: Optional[str] = None) -> list[Segment]:
        """One window (`asr_window.recognize`), timed for `realtime_factor`; `reason` says why it gave nothing."""
        start = time.perf_counter()
        try:
            out, self.reason = recognize(self.model, a, t0, prompt, hotwords, self.window_options())
        finally:
            with self._stats_lock:  # windows of a file are recognized on several threads
                self.compute_seconds += time.perf_counter() - start
                self.audio_seconds += a.size / SR
        return out

    def window_options(self) -> WindowOptions:
        """How this Transcriber's windows are decoded and kept (its settings now)."""
        return WindowOptions(language=self.language, beam_size=self.beam_size, min_silence_s=self.min_silence_s,
                             min_logprob=self.min_logprob, max_compression=self.max_compression,
                             lang_check_logprob=self.lang_check_logprob, word_times=self.word_times)

    def _prompt(self, t0: float, t1: float) -> Optional[str]:
        """The last prompt_words words of what was on screen during [t0, t1], as sentences (`prompt_text`; None
        without a context)."""
        if self.context is None:
            return None
        try:
            return prompt_text(str(self.context(t0, t1) or "").splitlines(), self.prompt_words)
        except Exception as e:  # noqa: BLE001 - a prompt is a hint, never a reason to lose speech
            log.warning("asr prompt failed: %s", e)
            return None

    def _hotwords(self, prompt: Optional[str]) -> Optional[str]:
        """The latest hotword_count names read on screen earlier (vocabulary()) that the prompt does not hold
        (`hotword_text`; None without any)."""
        if self.vocabulary is None or self.hotword_count <= 0:
            return None
        try:
            return hotword_text(self.vocabulary() or [], prompt, self.hotword_count)
        except Exception as e:  # noqa: BLE001 - a hint, never a reason to lose speech
            log.warning("asr vocabulary failed: %s", e)
            return None

    @property
    def realtime_factor(self) -> float:
        """Compute seconds per audio second so far (lower is faster)."""
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0

