"""The Engine: the one object the CLI (app.py), the UI (ui/) and the HTTP API (api/) drive.

    engine = Engine("~/.vigil/bank", media_dir="media")     # opens the bank (the one writer of it)
    info = engine.start("talk.mp4", stream="talk")            # a StreamInfo; ingestion runs in the background
    engine.streams()                                          # [StreamInfo]: starting|running|finished|stopped|error
    answer = engine.ask("what was on the slide?", k=5)        # an Answer: iterate for text; .citations at once
    engine.summarize("talk").markdown                         # minutes (models/meeting.py)
    engine.memories(stream="talk", start=0, end=60)           # [{"id", "stream", "start", "end", "evidence", ...}]
    engine.close()

Models are loaded once per process, lazily, and shared by every stream (engine/profiles.py); asking goes
through models/ask.py's `ask()`, summaries through models/meeting.py. Every method is thread-safe and returns
plain data or the typed objects of engine/streams.py and engine/answers.py; every user-facing failure is an
EngineError with one line. Ingest rules are the same for every face: the same file with the same settings gives
the same memories (speech, on-screen text and tags are always extracted; `meeting` only marks a stream as a
meeting for the minutes), and a live stream started again under its id continues its clock.
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import Callable, Optional, Sequence

from . import media as media_rules
from . import profiles
from .watch_api import WatchesMixin
from .answers import Answer, Summary, has_text_evidence, visual_answer


def _asks_a_stretch(question: str, t_range) -> bool:
    """An open question about a named window ("what happened in the last minute?"): retrieval listed that
    window's moments in time order (models/answer/overview.py) rather than searching."""
    from models.answer.overview import kind_of
    from models.text.timephrase import parse_time_filter

    windowed = t_range is not None or parse_time_filter(question, 1e9) is not None
    return bool(windowed and (kind_of(question, True) or ("", ""))[0] == "recap")
from .errors import EngineError, as_engine_errors
from .ingest import StreamsMixin
from .profiles import ModelSpec
from .views import BankViewsMixin

DEFAULT_SETTINGS = {"model": "lite", "reducer": "pool2d", "budget": 32, "clip_seconds": 2.0, "fps": 1.0}
SETTINGS_KEY = "ui.settings"    # per-bank settings (the name predates the engine; banks keep theirs)
PARTS = ("ingest", "ask")       # what a profile is loaded for: evidence extractors / the answerer


def paced(work: Callable, progress: Callable[[float, str], None], tick: float = 0.5):
    """Run work(cb) in a worker thread, where cb(done, total, what) reports its steps, and call progress(fraction,
    what) from this thread every `tick` seconds. Inside a step the fraction eases towards the next step's (at
    most 90% of the way, by how long steps have taken so far), so it moves while a slow step runs; it never goes
    back. A step that began and ended between two ticks is still reported (in order, once). Returns work's result
    or raises its exception."""
    import math

    lock = threading.Lock()
    st = {"f": 0.0, "next": 0.0, "what": "starting", "t": time.monotonic(), "step": 3.0, "shown": -1.0,
          "said": [], "reported": 0.0}
    out: dict = {}

    def cb(done, total, what=""):
        now = time.monotonic()
        with lock:
            f = min(1.0, done / max(1, total))
            if f > st["f"]:
                st["step"] = 0.5 * st["step"] + 0.5 * max(0.2, now - st["t"])  # how long a step takes, smoothed
                st["t"] = now
            st["f"] = max(st["f"], f)
            st["next"] = min(1.0, max(st["f"], (done + 1) / max(1, total)))
            if what and what != st["what"]:
                st["said"].append((st["f"], what))   # every step's label reaches the caller, even a quick one
            st["what"] = what or st["what"]

    def run():
        try:
            out["result"] = work(cb)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = e

    def flush(upto: float) -> Optional[str]:
        """Report the labels set since the last tick (at their own fractions, never past `upto`); the last one."""
        with lock:
            said, st["said"] = st["said"], []
        for f, what in said:
            st["reported"] = max(st["reported"], min(upto, f))
            progress(round(st["reported"], 4), what)
        return said[-1][1] if said else None

    worker = threading.Thread(target=run, daemon=True, name="vigil-paced")
    worker.start()
    while True:
        worker.join(tick)
        with lock:
            ease = 1.0 - math.exp(-(time.monotonic() - st["t"]) / max(0.2, st["step"]))
            shown = min(0.999, max(st["shown"], st["f"] + 0.9 * ease * (st["next"] - st["f"])))
            changed, st["shown"], what = shown > st["shown"] + 1e-4, shown, st["what"]
        last = flush(shown)
        if not worker.is_alive():
            break
        if changed and (last != what or shown > st["reported"]):
            st["reported"] = shown
            progress(round(shown, 4), what)
    if "error" in out:
        raise out["error"]
    return out.get("result")


def model_key(model: str) -> str:
    """A model name as compared against the allow-list: a local directory by its real path, else the id."""
    m = str(model or "").strip() or "lite"
    return os.path.realpath(m) if m != "lite" and os.path.isdir(m) else m


def allow_list(models: Sequence[str], launch_model: Optional[str] = None) -> list[str]:
    """The launch allow-list: "lite", the launch model, then the --models entries (each checked to be loadable
    without loading it: one line for a name that cannot be); order kept, duplicates dropped."""
    out: list[str] = []
    for m in ["lite", launch_model or "lite", *models]:
        m = str(m or "").strip()
        if m and model_key(m) not in {model_key(x) for x in out}:
            Engine.check_model(m)
            out.append(m)
    return out


class Engine(StreamsMixin, BankViewsMixin, WatchesMixin):
    """One bank, one model profile, the running streams, ask and summarize. See the module docstring.

    bank_dir: opened for writing (one writer per bank; a second gets EngineError kind "conflict") unless
      readonly (asking and summarizing only); or an open MemoryBank, which the engine uses and leaves open.
    media_dir: when given, file sources and uploads resolve inside it only (the UI's and the API's rule);
      without it any path is taken (the CLI: a user's own files).
    model/device/trust_remote_code/retrieval/text_evidence: the profile (model None: the bank's saved setting,
      default the offline lite profile). profile: an already loaded profile, used while the model setting
      stays what it was.
    parts: what the profile is loaded for ("ingest": evidence extractors; "ask": the answerer).
    models: the allow-list of models this engine may switch to (the UI's and `serve`'s `--models a,b`): "lite",
      the launch model and these, each checked now; any other is refused and nothing else loads (a bank's saved
      model outside it is not loaded either). None: no list (the CLI: a user's own --model).
    """

    def __init__(self, bank_dir: str, *, media_dir: Optional[str] = None, model: Optional[str] = None,
                 device: Optional[str] = None, trust_remote_code: bool = False, retrieval: Optional[str] = None,
                 text_evidence: bool = False, readonly: bool = False, profile=None,
                 max_upload_bytes: int = media_rules.DEFAULT_MAX_UPLOAD, parts: tuple = PARTS,
                 models: Optional[Sequence[str]] = None):
        from memory.bank import MemoryBank

        from . import heap

        heap.start()  # freed native memory goes back to the system in a long-running process (engine/heap.py)
        if isinstance(bank_dir, MemoryBank):  # an open bank: used, not closed, by this engine
            self.bank, self._owns_bank, readonly = bank_dir, False, bank_dir.readonly
        else:
            with as_engine_errors():
                self.bank = MemoryBank(bank_dir, readonly=readonly)
            self._owns_bank = True
        self.readonly = readonly
        self.media_dir = os.path.realpath(media_dir) if media_dir else None
        if self.media_dir and not readonly:
            os.makedirs(self.media_dir, exist_ok=True)
        self.device, self.trust_remote_code = device, trust_remote_code
        self.retrieval, self.text_evidence = retrieval, text_evidence
        self.max_upload_bytes = max_upload_bytes
        self.parts = tuple(parts)
        saved = self.bank.get_meta(SETTINGS_KEY, {}) or {}
        self.settings = {**DEFAULT_SETTINGS, **{k: v for k, v in saved.items() if k in DEFAULT_SETTINGS}}
        if model:  # an explicit model wins over the saved one for this run
            self.settings["model"] = model
        self.allowed_models = None if models is None else allow_list(models, model)
        if self.allowed_models is not None and not self.model_allowed(self.settings["model"]):
            import logging

            logging.getLogger("vigil.engine").warning(
                "the bank's saved model %r is not in --models; using %r", self.settings["model"], model or "lite")
            self.settings["model"] = model or "lite"
        self._given = (self.settings["model"], profile) if profile is not None else None
        self._lock = threading.RLock()
        self._profile_lock = threading.Lock()
        self._runs: dict = {}  # stream id -> StreamRun
        self._bytes_cache = (0.0, 0)

    # ---- models ----------------------------------------------------------------------------------

    def spec(self) -> ModelSpec:
        model = str(self.settings.get("model") or "lite").strip() or "lite"
        return ModelSpec(None if model == "lite" else model, self.device, self.trust_remote_code, self.retrieval,
                         self.text_evidence)

    def profile(self):
        """The loaded profile for the current model setting (loaded once per process, on first use)."""
        if self._given is not None and self._given[0] == self.settings["model"]:
            return self._given[1]
        with self._profile_lock:
            return profiles.load(self.spec(), evidence="ingest" in self.parts, answerer="ask" in self.parts)

    def warm_up(self) -> threading.Thread:
        """Load the profile in the background so the first action does not wait for it: the encoder (for ingest)
        and the answerer's LLM and meaning model (for questions) too, which are otherwise loaded on first use."""
        def run():
            try:
                prof = self.profile()
                if "ingest" in self.parts:
                    getattr(prof.encoder, "loaded", None)
                if "ask" in self.parts and isinstance(getattr(type(prof.answerer), "llm", None), property):
                    prof.answerer.llm
                if "ask" in self.parts:  # the answerer's meaning model (all-mpnet-base-v2), loaded on first use
                    getattr(getattr(prof.answerer, "meaning", None), "loaded", None)
            except EngineError as e:
                import logging

                logging.getLogger("vigil.engine").warning("%s", e)

        t = threading.Thread(target=run, daemon=True, name="vigil-warmup")
        t.start()
        return t

    # ---- ask / summarize -------------------------------------------------------------------------

    def ask(self, question: str = "", *, k: int = 5, streams: Optional[list] = None, image=None, history=(),
            start: Optional[float] = None, end: Optional[float] = None, **options) -> Answer:
        """Ask the bank (models/ask.py's one ask path): an Answer whose citations are ready and whose text
        streams as it is iterated. streams: only these; start/end: only memories overlapping that span of media
        time; image: an RGB array to search by example; options go to models.ask.ask."""
        t0 = time.perf_counter()
        question = (question or "").strip()
        if not question and image is None:
            raise EngineError("ask needs a question or an example image")
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise EngineError(f"k must be a whole number, got {k!r}") from None
        if not 1 <= k <= 100:
            raise EngineError("k must be between 1 and 100")
        streams = [str(s) for s in streams] if streams else None
        if streams:
            known = {s["stream"] for s in self.bank.streams()}
            unknown = [s for s in streams if s not in known]
            if unknown:
                raise EngineError(f"unknown stream {unknown[0]!r}", "not_found")
        t_range = None
        if start is not None or end is not None:
            t_range = (float(start or 0.0), float(end) if end is not None else 1e12)
            if t_range[1] < t_range[0]:
                raise EngineError("end must not be before start")
        profile = self.profile()
        t_loaded = time.perf_counter()
        from models.ask import ask

        with as_engine_errors():
            pieces, citations = ask(self.bank, profile, question, k=k, image=image, streams=streams,
                                    history=list(history or ()), t_range=t_range, **options)
        kind = None
        if pieces.answered and question and not self._reads_pictures(profile) \
                and not any(has_text_evidence(m) for m in pieces.memories):
            # a text answerer over moments with no speech or screen text would deny what the pictures show:
            # say what was found instead (the answerer never runs)
            from models.ask import AnswerStream

            pieces.close()
            best = sorted(pieces.memories, key=lambda m: getattr(m, "rank", 0))
            stretch = image is None and _asks_a_stretch(question, t_range)
            pieces = AnswerStream(iter([visual_answer(best, by_example=image is not None, stretch=stretch)]),
                                  pieces.memories,
                                  pieces.retrieve_ms, False,
                                  citations, pieces.usage)
            kind = "visual"
        return Answer(pieces, citations, load_ms=(t_loaded - t0) * 1000, t_asked=t0, question=question, kind=kind)

    @staticmethod
    def _reads_pictures(profile) -> bool:
        """Does the profile's answerer look at the stored clips (carrier tokens), not only their text?"""
        consumes = getattr(getattr(profile, "answerer", None), "consumes", None)
        return bool(getattr(consumes, "carriers", False))

    def answer(self, question: str = "", **kw) -> dict:
        """ask(), generated to the end: DESIGN.md's Answer {"answer", "citations", "usage", "latency"}."""
        return self.ask(question, **kw).collect().to_dict()

    def summarize(self, stream: Optional[str] = None, progress: Optional[Callable[[float, str], None]] = None,
                  save: bool = True, tick: float = 0.5) -> Summary:
        """Meeting minutes of one stream (the bank's only meeting, else its only stream, when None).
        progress(fraction, what) is called from the caller's thread every `tick` seconds while the minutes are
        written (in a worker thread): the fraction never goes back and keeps moving inside a slow step (an LLM
        writing a section) towards the next one, so a bar never sits still; the last call is 1.0.
        save: also write <bank>/minutes/<stream>.md (writable banks)."""
        if stream is not None and not str(stream).strip():
            raise EngineError("choose a stream to summarize")
        if stream is None:
            stream = self.default_meeting()
        from models.meeting import stream_minutes

        with as_engine_errors():
            profile = self.profile()
            if progress is None:
                minutes = stream_minutes(self.bank, profile, stream, None)
            else:
                minutes = paced(lambda cb: stream_minutes(self.bank, profile, stream, cb), progress, tick)
        if progress is not None:
            progress(1.0, "done")
        md = minutes.to_markdown()
        name = stream or next(s["stream"] for s in self.bank.streams() if s["memories"])
        path = None
        if save and not self.readonly:
            out_dir = os.path.join(self.bank.path, "minutes")
            os.makedirs(out_dir, exist_ok=True)
            path = os.path.join(out_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] + ".md")
            with open(path, "w", encoding="utf-8") as f:
                f.write(md)
        return Summary(stream=name, markdown=md, minutes=minutes.to_dict(), path=path)

    def default_meeting(self) -> Optional[str]:
        """The stream to summarize when none is named: the bank's only meeting, else its only stream, else None."""
        held = [s["stream"] for s in self.bank.streams() if s["memories"]]
        meetings = [m for m in self.meetings() if m in held]
        if len(meetings) == 1:
            return meetings[0]
        return held[0] if len(held) == 1 else None

    # ---- settings --------------------------------------------------------------------------------

    @staticmethod
    def reducers() -> list[str]:
        """The token reducers a stream can use (the `reducer` setting)."""
        from reducers import METHODS

        return list(METHODS)

    def save_settings(self, **kw) -> dict:
        """Change and save this bank's settings (model, reducer, budget, clip_seconds, fps): sources started from
        now on use them. Returns the settings."""
        from reducers import REDUCERS

        s = dict(self.settings)
        s.update({k: v for k, v in kw.items() if k in DEFAULT_SETTINGS and v is not None})
        s["model"] = str(s["model"]).strip() or "lite"
        if not self.model_allowed(s["model"]):
            raise EngineError(f"model {s['model']!r} is not allowed here; choose one of: "
                              f"{', '.join(self.allowed_models or [])} (Vigil was started with --models listing "
                              "the models it may switch to)")
        if s["model"] != self.settings.get("model"):
            self.check_model(s["model"])  # an unknown model is refused now, not at the next start
        if s["reducer"] not in REDUCERS:
            raise EngineError(f"unknown reducer {s['reducer']!r}")
        try:
            s["budget"], s["clip_seconds"], s["fps"] = int(s["budget"]), float(s["clip_seconds"]), float(s["fps"])
        except (TypeError, ValueError):
            raise EngineError("budget, clip length and fps must be numbers") from None
        if s["budget"] <= 0 or s["clip_seconds"] <= 0 or s["fps"] <= 0:
            raise EngineError("budget, clip length and fps must be > 0")
        with self._lock:
            self.settings = s
            if not self.readonly:
                self.bank.set_meta(SETTINGS_KEY, s)
        return dict(s)

    def model_allowed(self, model: str) -> bool:
        """May this engine switch to model? (Always, without an allow-list.)"""
        return self.allowed_models is None or model_key(model) in {model_key(m) for m in self.allowed_models}

    @staticmethod
    def check_model(model: str) -> str:
        """Refuse a model name that cannot be loaded (judged without loading or downloading it): "lite", a
        directory of a supported VLM, or a hub id of one (cached, or found on the hub when online). Returns the
        model's family name."""
        model = str(model or "").strip()
        if model in ("", "lite"):
            return "lite"
        from models.base import ModelError

        try:
            from models.vlm.loading import check_model
        except ImportError as e:
            raise EngineError(f"cannot use model {model!r}: {e}", "unavailable") from None
        try:
            return check_model(model)
        except ModelError as e:
            raise EngineError(str(e)) from None

    # ---- process ---------------------------------------------------------------------------------

    @staticmethod
    def system() -> dict:
        """This process and machine: {"rss_mb", "ram_used_pct", "cpu_pct"} and GPU memory when there is one."""
        import psutil
        import torch

        vm = psutil.virtual_memory()
        d = {"rss_mb": psutil.Process().memory_info().rss / 2**20, "ram_used_pct": vm.percent,
             "cpu_pct": psutil.cpu_percent(interval=None)}
        if torch.cuda.is_available():
            d["gpu_alloc_mb"] = torch.cuda.memory_allocated() / 2**20
            d["gpu_reserved_mb"] = torch.cuda.memory_reserved() / 2**20
            d["gpu_total_mb"] = torch.cuda.get_device_properties(0).total_memory / 2**20
        return d

    def close(self) -> None:
        self.stop_all()
        self._close_alerts()
        if self._owns_bank:
            self.bank.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
