"""Watches: standing questions checked on every new memory ("tell me when someone mentions the budget").

A watch is stored in the bank (table `watches`), so it survives restarts and applies to every stream started
later (or to one stream). Its fields: text, an optional example image (copied into <bank>/watches/), stream
(None: all), threshold (0..1), cooldown (media seconds between two alerts of the watch on one stream), the
kind of check, and an optional webhook.

Kinds (`auto` picks one from the words of the text when the watch is created):
    speech  what was said: semantic (MiniLM) + lexical (stemmed words) match on the memory's transcript
    screen  what is on screen: the same on the memory's slide text (OCR lines)
    text    either of the two
    image   similarity of the clip's visual key to the example image's (and, when the example shows text, how
            much of that text the memory's slide text holds)
    motion  background subtraction (MOG2): the share of the picture that moved
    people  faces (CenterFace, shipped inside a package): the best face score in the clip's frames
            (people and motion watches that say "lingers", "stays", "for 30 seconds" alert only once what they
            look for has lasted that long, 10 s without a number: a person passing is not one lingering)
    vlm     with a VLM profile: P(yes) of the question asked as yes/no over the clip's carrier tokens, in one
            forward pass; a VLM also scores people/motion watches (the higher score counts)

Each check returns (score in 0..1, evidence line); an alert fires at score >= threshold. The checking itself,
the alerts and their delivery are engine/alerts.py's.
"""
from __future__ import annotations

import math
import os
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from .errors import EngineError

KINDS = ("auto", "speech", "screen", "text", "image", "motion", "people", "vlm")
DEFAULT_THRESHOLD = {"speech": 0.55, "screen": 0.55, "text": 0.55, "image": 0.6, "motion": 0.5, "people": 0.5,
                     "vlm": 0.5}
DEFAULT_COOLDOWN = 60.0
MAX_TEXT = 300          # characters of a watch's text
MAX_WATCHES = 200

_LEAD = re.compile(r"^\s*(?:please\s+)?(?:(?:tell|alert|notify|warn|ping|show|let)\s+(?:me|us)(?:\s+know)?\s*)?"
                   r"(?:(?:when(?:ever)?|if|once|as soon as|each time|every time)\b\s*)?", re.I)
_SPEECH = re.compile(r"\b(mention(?:s|ed|ing)?|says?|said|saying|talk(?:s|ed|ing)?(?: about)?|"
                     r"speak(?:s|ing)?(?: about)?|"
                     r"discuss(?:es|ed|ing)?|ask(?:s|ed)? about|brings? up|announce[sd]?|spoken|heard?)\b", re.I)
_SCREEN = re.compile(r"\b(slides?|screens?|on[- ]screen|presentation|displays?|displayed|shows?|shown|showing|"
                     r"written|appears? on)\b", re.I)
_PEOPLE = re.compile(r"\b(person|people|someone|somebody|anyone|anybody|visitor|intruder|man|woman|child|kid|faces?|"
                     r"humans?|stranger|enters|walks in|arrives|shows up)\b", re.I)
_MOTION = re.compile(r"\b(motion|moves?|moving|movement|activity|opens?|opened|closes?|closed|changes?|"
                     r"something happens)\b",
                     re.I)
# words about how something is said or shown, not what: never part of the topic
_FRAME_WORDS = set("""someone somebody anyone anybody everyone they we he she speaker presenter person people
mention mentions mentioned mentioning say says said saying talk talks talked talking speak speaks speaking about
discuss discusses discussed discussing ask asks asked bring brings brought up announce announces announced spoken
hear heard slide slides screen screens presentation display displays displayed show shows shown showing written
appear appears on me us let know tell alert notify warn ping please when whenever if once time every each""".split())


def parse_text(text: str) -> tuple[str, str]:
    """A watch's text -> (topic, where): what to look for without the framing ("tell me when someone mentions
    the budget" -> "the budget"), and where to look ("speech", "screen" or "any")."""
    t = " ".join((text or "").split())
    body = _LEAD.sub("", t, count=1)
    speech, screen = bool(_SPEECH.search(body)), bool(_SCREEN.search(body))
    where = "speech" if speech and not screen else "screen" if screen and not speech else "any"
    words = re.findall(r"[\w'’-]+", body)
    kept = [w for w in words if w.lower() not in _FRAME_WORDS]
    kept = [w for i, w in enumerate(kept) if i == 0 or w.lower() != kept[i - 1].lower()]  # "the the" of a cut
    topic = " ".join(kept).strip(" -'")
    return topic, where


def infer_kind(text: str, image: bool) -> str:
    """The check `auto` stands for, from the words of a watch (and whether it has an example image)."""
    topic, where = parse_text(text)
    if image:
        return "image"
    if where == "speech":
        return "speech"
    if where == "screen":
        return "screen"
    if _PEOPLE.search(text or ""):
        return "people"
    if _MOTION.search(text or ""):
        return "motion"
    return "text"


def check_webhook(url: Optional[str]) -> Optional[str]:
    """A webhook URL as given, or EngineError with one line when it cannot be one."""
    if url is None or not str(url).strip():
        return None
    url = str(url).strip()
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname
    except ValueError:
        host = None
    if not host or p.scheme not in ("http", "https") or any(c.isspace() or ord(c) < 32 for c in url):
        raise EngineError(f"bad webhook URL {url[:200]!r}: give an http:// or https:// URL with a host")
    try:
        p.port
    except ValueError:
        raise EngineError(f"bad webhook URL {url[:200]!r}: the port is not a number from 0 to 65535") from None
    return url


@dataclass
class Watch:
    id: int
    text: str
    stream: Optional[str] = None
    kind: str = "text"
    threshold: float = 0.55
    cooldown: float = DEFAULT_COOLDOWN
    image: Optional[str] = None        # example image, relative to the bank directory
    webhook: Optional[str] = None
    created: float = 0.0

    @classmethod
    def from_row(cls, row: dict) -> "Watch":
        return cls(**{k: row.get(k) for k in ("id", "text", "stream", "kind", "threshold", "cooldown", "image",
                                               "webhook", "created")})

    def applies_to(self, stream: str) -> bool:
        return self.stream in (None, "", stream)

    def label(self) -> str:
        return self.text or (f"looks like {os.path.basename(self.image)}" if self.image else f"watch {self.id}")

    def to_dict(self, bank_path: Optional[str] = None) -> dict:
        d = asdict(self)
        if bank_path and self.image:
            d["image"] = os.path.join(bank_path, self.image)
        return d


def validate(text: str, *, image=None, stream: Optional[str] = None, threshold=None, cooldown=None,
             kind: str = "auto", webhook: Optional[str] = None) -> dict:
    """The fields of a new watch, checked: EngineError (one line, kind "invalid") for anything wrong.
    image: an RGB array, or a path to an image file."""
    text = " ".join(str(text or "").split())
    if len(text) > MAX_TEXT:
        raise EngineError(f"the watch text is too long ({len(text)} characters; at most {MAX_TEXT})")
    kind = (kind or "auto").strip().lower()
    if kind not in KINDS:
        raise EngineError(f"unknown kind of watch {kind!r}; one of: {', '.join(KINDS)}")
    if image is None and not text:
        raise EngineError("a watch needs a text (what to look for) or an example image")
    if kind == "image" and image is None:
        raise EngineError("an image watch needs an example image")
    if kind == "auto":
        kind = infer_kind(text, image is not None)
    if kind in ("speech", "screen", "text") and not parse_text(text)[0]:
        raise EngineError(f"the watch {text!r} names nothing to look for; say what, e.g. 'when someone mentions "
                          "the budget'")
    if kind == "vlm" and not text:
        raise EngineError("a vlm watch needs a question")
    try:
        threshold = DEFAULT_THRESHOLD[kind] if threshold is None else float(threshold)
        cooldown = DEFAULT_COOLDOWN if cooldown is None else float(cooldown)
    except (TypeError, ValueError):
        raise EngineError("threshold and cooldown must be numbers") from None
    if not 0.0 < threshold <= 1.0 or math.isnan(threshold):
        raise EngineError(f"threshold must be in (0, 1], got {threshold}")
    if not 0.0 <= cooldown <= 7 * 86400 or math.isnan(cooldown):
        raise EngineError(f"cooldown must be between 0 and {7 * 86400} seconds, got {cooldown}")
    stream = str(stream).strip() if stream is not None and str(stream).strip() else None
    return dict(text=text, stream=stream, kind=kind, threshold=threshold, cooldown=cooldown,
                webhook=check_webhook(webhook))


def read_image(image) -> np.ndarray:
    """An example image as RGB uint8: an array, raw bytes, or a path. EngineError (one line) when it is none."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, np.ndarray):
        a = image
    else:
        import io

        try:
            if isinstance(image, (bytes, bytearray)):
                im = Image.open(io.BytesIO(bytes(image)))
            else:
                path = os.fspath(image)
                if not os.path.isfile(path):
                    raise EngineError(f"no such image: {path!r}")
                im = Image.open(path)
            im.load()
            a = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            what = "the example image" if isinstance(image, (bytes, bytearray)) else repr(os.fspath(image))
            raise EngineError(f"cannot read {what} as an image: {str(e).splitlines()[0] if str(e) else e}") from None
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] < 3 or min(a.shape[:2]) < 8:
        raise EngineError("the example image must be an RGB picture at least 8 pixels on each side")
    return np.ascontiguousarray(a[..., :3]).astype(np.uint8, copy=False)


# ---- checks ----------------------------------------------------------------------------------------

_STEMMER = None
_STOP = None


def _stem_words(text: str) -> list[str]:
    global _STEMMER, _STOP
    if _STEMMER is None:
        import Stemmer

        from memory.bank import _FTS_STOP

        _STOP = set(_FTS_STOP) | {"when", "whenever"}
        _STEMMER = Stemmer.Stemmer("english")
    words = [w for w in re.findall(r"[a-z0-9]+", (text or "").lower().replace("’", "'")) if w not in _STOP]
    return _STEMMER.stemWords(words)


def units_of(evidence: dict, where: str) -> list[tuple[str, str]]:
    """The pieces of a memory's text a watch compares with: ("speech", sentence) and ("screen", line)."""
    out = []
    if where in ("speech", "any"):
        for s in re.split(r"(?<=[.!?])\s+", (evidence or {}).get("asr") or ""):
            if s.strip():
                out.append(("speech", s.strip()))
    if where in ("screen", "any"):
        for line in ((evidence or {}).get("ocr") or "").splitlines():
            if line.strip():
                out.append(("screen", line.strip()))
    return out


class TextMatcher:
    """How well a memory's sentences and slide lines say the topic, best unit:
        lexical  coverage: the share of the topic's word stems in the unit
        semantic cos: MiniLM cosine of the topic and the unit
        score = max(coverage · (0.5 + 0.5 · clip((cos − 0.3) / 0.4, 0, 1)),  clip((cos − 0.6) / 0.3, 0, 1))
    halved when the unit lacks a word of the topic that holds a digit ("Q3", "2024": a code or number names one
    thing; MiniLM finds "Q2 Results" as close to "the Q3 results" as "Q3 Results" is). So the topic's words in a
    sentence that means it score 0.75–1, its words in an unrelated sense about 0.5, a close paraphrase without
    them up to 1, and a loosely related line 0. Unit embeddings are cached (a memory is checked again when its
    transcript arrives)."""

    SEM_LO, SEM_SPAN = 0.3, 0.4          # semantic support of a lexical match
    PARA_LO, PARA_SPAN = 0.6, 0.3        # a paraphrase on its own

    def __init__(self, embedder=None, cache: int = 4096):
        self.embedder = embedder
        self._cache: OrderedDict = OrderedDict()
        self._cap = cache
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.embedder is None:
            return np.zeros((len(texts), 1), np.float32)
        with self._lock:
            have = {t: self._cache[t] for t in texts if t in self._cache}
        todo = [t for t in dict.fromkeys(texts) if t not in have]
        if todo:
            fresh = dict(zip(todo, np.asarray(self.embedder.encode(todo), np.float32)))
            have.update(fresh)
            with self._lock:
                self._cache.update(fresh)
                while len(self._cache) > self._cap:
                    self._cache.popitem(last=False)
        return np.stack([have[t] for t in texts])

    def score(self, topic: str, units: list[tuple[str, str]]) -> tuple[float, str]:
        if not units or not topic:
            return 0.0, ""
        want = set(_stem_words(topic))
        keys = {w for w in want if any(c.isdigit() for c in w)}
        vecs = self._embed([topic] + [u for _, u in units])
        cos = vecs[1:] @ vecs[0] if self.embedder is not None else np.zeros(len(units))
        best, line = 0.0, ""
        for (where, u), c in zip(units, cos):
            have = set(_stem_words(u))
            cov = len(want & have) / len(want) if want else 0.0
            support = min(1.0, max(0.0, (float(c) - self.SEM_LO) / self.SEM_SPAN))
            para = min(1.0, max(0.0, (float(c) - self.PARA_LO) / self.PARA_SPAN))
            s = max(cov * (0.5 + 0.5 * support), para)
            if keys - have:
                s *= 0.5
            if s > best:
                best, line = s, f"{'Said' if where == 'speech' else 'On screen'}: {u}"
        return best, line


def image_score(example_key: np.ndarray, memory_key: Optional[np.ndarray], example_words: set,
                memory_ocr: str) -> tuple[float, str]:
    """How much a memory looks like the example: clip((cos − 0.5) / 0.4, 0, 1) of their visual keys; when the
    example shows text (example_words: its word stems), times how well the text read on the memory's screen
    matches it (F1 of the two word sets: the share of the example's words on screen and of the screen's words in
    the example), since pictures of slides all look alike to an image key."""
    if memory_key is None or example_key is None or memory_key.size != example_key.size:
        return 0.0, ""
    a = example_key / (np.linalg.norm(example_key) + 1e-12)
    b = memory_key / (np.linalg.norm(memory_key) + 1e-12)
    cos = float(a @ b)
    vis = min(1.0, max(0.0, (cos - 0.5) / 0.4))
    if example_words:
        seen = set(_stem_words(memory_ocr))
        both = len(example_words & seen)
        f1 = 2 * both / (len(example_words) + len(seen)) if seen else 0.0
        return vis * f1, f"looks like the example (similarity {cos:.2f}; its text on screen: {f1:.0%} match)"
    return vis, f"looks like the example (similarity {cos:.2f})"


_DWELL_WORDS = re.compile(r"\b(linger\w*|loiter\w*|stays?|staying|remains?|waits?|waiting|keeps? moving)\b", re.I)
_DWELL_TIME = re.compile(r"\bfor\s+(?:more than\s+|over\s+|at least\s+|longer than\s+)?(\d+(?:\.\d+)?)\s*"
                         r"(s|secs?|seconds?|m|mins?|minutes?)\b", re.I)
DEFAULT_DWELL = 10.0


def dwell_seconds(text: str) -> float:
    """How long what a people or motion watch looks for must last before it alerts: "for 30 seconds",
    "for 2 minutes"; "lingers", "stays", "waits" without a time: 10 s; otherwise 0 (at once)."""
    m = _DWELL_TIME.search(text or "")
    if m:
        v = float(m.group(1))
        return v * 60.0 if m.group(2).lower().startswith("m") else v
    return DEFAULT_DWELL if _DWELL_WORDS.search(text or "") else 0.0


def motion_score(fraction: float) -> tuple[float, str]:
    """The share of the picture that moved -> a score (3% of the picture moving scores 1)."""
    return min(1.0, fraction / 0.03), f"motion: {fraction:.1%} of the picture moved"


def people_score(best_face: float) -> tuple[float, str]:
    return float(best_face), (f"a face in the picture (detector score {best_face:.2f})" if best_face > 0 else "")


# ---- the VLM yes/no ---------------------------------------------------------------------------------

YES = ("Yes", " yes", "yes", " Yes", "YES")
NO = ("No", " no", "no", " No", "NO")
_YES_NO: dict = {}


def yes_no_ids(tokenizer) -> tuple[list[int], list[int]]:
    """First-token ids of the ways a model starts "yes" and "no" (an id both share is dropped)."""
    key = id(tokenizer)
    if key not in _YES_NO:
        def first(words):
            out = []
            for w in words:
                ids = tokenizer.encode(w, add_special_tokens=False)
                if ids:
                    out.append(int(ids[0]))
            return set(out)

        y, n = first(YES), first(NO)
        both = y & n
        y, n = sorted(y - both), sorted(n - both)
        if not y or not n:
            raise EngineError("this model's tokenizer cannot tell 'yes' from 'no' in one token")
        _YES_NO[key] = (y, n)
    return _YES_NO[key]


def yes_no_prompt(question: str) -> str:
    q = " ".join((question or "").split()).rstrip(" ?.")
    return f"Look at this video clip. {q}? Answer yes or no."


def vlm_yes_probability(adapter, question: str, view) -> tuple[float, dict]:
    """P(yes) of `question` about one memory (a MemoryView with its carrier), from one forward pass of the
    VLM over the prompt the adapter builds (build_inputs: its own placeholders and positions). P = softmax over
    the two answers of the first-token logits: logsumexp over the "yes" ids against the "no" ids.
    Returns (p, debug) with the prompt's debug (placeholders, n_visual, input_ids) and the prepared inputs."""
    import torch

    prep = adapter.build_inputs(yes_no_prompt(question), [view])
    with torch.inference_mode():
        logits, _ = adapter._lm_forward(prep.inputs_embeds, prep.position_ids, None, last_only=True)
    lp = torch.log_softmax(logits[0, -1].float(), -1)
    y, n = yes_no_ids(adapter.tokenizer)
    ly, ln = torch.logsumexp(lp[y], 0), torch.logsumexp(lp[n], 0)
    p = float(torch.sigmoid(ly - ln))
    return p, {**prep.debug, "prepared": prep}


def can_answer_yes_no(model) -> bool:
    return all(hasattr(model, a) for a in ("build_inputs", "_lm_forward", "tokenizer"))


def now() -> float:
    return time.time()
