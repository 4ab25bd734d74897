"""The lite answering and summarizing logic on top of retrieved memories (text evidence: "asr", "ocr", "tags").

- `parse_time_filter(question, duration)` / `split_time_filter`: "in the last 5 minutes", "at the start",
  "after 10 minutes", "between 2:00 and 3:00", ... -> (t_lo, t_hi) media seconds.
- `LiteAnswerer.answer(question, memories, history)`: ranks the evidence sentences (`Relevance`: the question's
  subject must be named by the sentence or its context, and the sentence must hold what is asked), says so when
  the evidence is weak, else gives the small LLM the best notes in time order with [hh:mm:ss–hh:mm:ss] stamps and
  streams its answer sentence by sentence, each checked against the evidence (`check_llm_sentence`); when the LLM
  misses the fact or states anything the notes do not, it is stopped and the best evidence sentence is quoted
  with its stamp instead. Small LLMs are unreliable, so the extractive answer is always at hand
  (mode="extractive", or llm=None).
- `summarize(memories, llm, progress_cb)` -> `Minutes`: sections at slide-title changes and transcript topic
  shifts, per-section bullets (LLM, checked against the source; extractive fallback), decisions, action items
  with owners, numbers and dates (rule-based), every line with timestamps. Map-reduce: each section is
  summarized on its own (split into chunks of max_section_tokens), then `reduce_overview` condenses the section
  digests in as many levels as needed for every prompt to fit, so a 2-hour meeting never overflows the context.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from models.base import Consumes, MemoryView, Usage

log = logging.getLogger(__name__)


# ============================================================================ time helpers
def fmt_ts(t: float) -> str:
    t = max(0, int(round(t)))
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


def fmt_span(t0: float, t1: float) -> str:
    return f"[{fmt_ts(t0)}–{fmt_ts(t1)}]"


_WORDNUM = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                        "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDNUM.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "a": 1, "an": 1, "half an": 0.5,
                 "a couple of": 2, "a few": 3, "couple of": 2, "few": 3})
_NUM = r"(\d+(?:\.\d+)?|half an|a couple of|couple of|a few|few|an|a|" + "|".join(
    sorted((w for w in _WORDNUM if " " not in w and w not in ("a", "an", "few")), key=len, reverse=True)) + r")"
_UNIT = r"(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b"
_CLOCK = r"(\d{1,2}:\d{2}(?::\d{2})?)"


def _num(s: str) -> float:
    s = s.strip().lower()
    try:
        return float(s)
    except ValueError:
        return float(_WORDNUM.get(s, 1))


def _dur(n: str, unit: str) -> float:
    u = unit.lower()
    k = 3600 if u.startswith("h") else 1 if u.startswith("s") else 60
    return _num(n) * k


def _clock(s: str) -> float:
    parts = [int(p) for p in s.split(":")]
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return parts[0] * 60 + parts[1]


def _point(s: str) -> Optional[float]:
    """'2:30', '10 minutes', 'minute 5', '90 s' -> seconds."""
    s = s.strip().lower()
    m = re.fullmatch(_CLOCK, s)
    if m:
        return float(_clock(m.group(1)))
    m = re.fullmatch(r"(?:the\s+)?(?:minute|min)\s+(\d+(?:\.\d+)?)", s)
    if m:
        return float(m.group(1)) * 60
    m = re.fullmatch(_NUM + r"\s*-?\s*" + _UNIT, s)
    if m:
        return _dur(m.group(1), m.group(2))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)", s)
    if m:  # bare number: minutes
        return float(m.group(1)) * 60
    return None


_PT = r"(\d{1,2}:\d{2}(?::\d{2})?|(?:the\s+)?(?:minute|min)\s+\d+(?:\.\d+)?|" + _NUM + r"\s*-?\s*" + \
      r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b|\d+(?:\.\d+)?)"

# (pattern, builder(match, duration) -> (lo, hi))
_RULES: list[tuple[str, Callable]] = [
    (r"\bbetween\s+" + _PT + r"\s+(?:and|to|-|–)\s+" + _PT,
     lambda m, d: _between(m.group(1), m.group(m.lastindex), d)),
    (r"\bfrom\s+" + _PT + r"\s+(?:to|until|till|-|–)\s+" + _PT,
     lambda m, d: _between(m.group(1), m.group(m.lastindex), d)),
    (r"\b(?:in|during|over|within)\s+the\s+(?:last|past|final)\s+" + _NUM + r"\s*" + _UNIT,
     lambda m, d: (max(0.0, d - _dur(m.group(1), m.group(2))), d)),
    (r"\b(?:the\s+)?(?:last|past|final)\s+" + _NUM + r"\s*" + _UNIT,
     lambda m, d: (max(0.0, d - _dur(m.group(1), m.group(2))), d)),
    (r"\b(?:in|during|over|within)?\s*the\s+(?:last|past|final)\s+(hour|minute|half hour|half an hour)\b",
     lambda m, d: (max(0.0, d - {"hour": 3600.0, "minute": 60.0}.get(m.group(1), 1800.0)), d)),
    (r"\b(?:the\s+)?(?:last|past|final)\s+(hour|minute|second)\b",  # "the last hour": one unit
     lambda m, d: (max(0.0, d - _dur("1", m.group(1))), d)),
    (r"\b(?:in|during|within)?\s*the\s+first\s+" + _NUM + r"\s*" + _UNIT,
     lambda m, d: (0.0, min(d, _dur(m.group(1), m.group(2))))),
    (r"\b(?:after|since|past)\s+(?:the\s+first\s+)?" + _PT + r"(?:\s+mark)?",
     lambda m, d: (min(d, _point(m.group(1)) or 0.0), d)),
    (r"\b(?:before|until|up to|by)\s+" + _PT + r"(?:\s+mark)?",
     lambda m, d: (0.0, min(d, _point(m.group(1)) or d))),
    (r"\b(?:at|around|near|about)\s+(?:the\s+)?" + r"(\d{1,2}:\d{2}(?::\d{2})?|(?:minute|min)\s+\d+(?:\.\d+)?|"
     + _NUM + r"\s*(?:minutes?|mins?|hours?)\s+(?:in|mark))",
     lambda m, d: _around(m.group(1), d)),
    (r"\b(?:in\s+)?the\s+first\s+half\b", lambda m, d: (0.0, d / 2)),
    (r"\b(?:in\s+)?the\s+second\s+half\b", lambda m, d: (d / 2, d)),
    (r"\b(?:at|in|near|toward|towards|by)\s+the\s+(?:very\s+)?(?:start|beginning|outset|opening)\b|\bearly on\b|"
     r"\bat first\b|\bfirst thing\b", lambda m, d: (0.0, min(d, max(60.0, 0.15 * d)))),
    (r"\b(?:at|in|near|toward|towards|by)\s+the\s+(?:very\s+)?(?:end|close|finish)\b|\bat the last moment\b|"
     r"\blate in the\b|\bin the closing\b", lambda m, d: (max(0.0, d - max(60.0, 0.15 * d)), d)),
    (r"\b(?:in|around)\s+the\s+middle\b|\bhalfway\b", lambda m, d: (0.35 * d, 0.65 * d)),
    (r"\b(?:just now|a moment ago|recently|right now|just happened)\b",
     lambda m, d: (max(0.0, d - 60.0), d)),
]


def _between(a: str, b: str, d: float):
    pa, pb = _point(a), _point(b)
    if pa is None or pb is None:
        return None
    # "between 2 and 3 minutes": the unit sits on the second point only
    if re.fullmatch(r"\d+(?:\.\d+)?", a.strip()) and re.search(r"s(ec)?", b.strip().split()[-1] or ""):
        unit = b.strip().split()[-1]
        pa = _point(f"{a} {unit}")
    lo, hi = sorted((pa, pb))
    return (max(0.0, lo), min(d, hi) if d else hi)


def _around(s: str, d: float):
    s2 = re.sub(r"\s+(in|mark)$", "", s.strip())
    p = _point(s2)
    if p is None:
        return None
    return (max(0.0, p - 30.0), min(d, p + 30.0) if d else p + 30.0)


def split_time_filter(question: str, duration: float) -> tuple[str, Optional[tuple[float, float]]]:
    """(question without the time phrase, (t_lo, t_hi) or None). duration: media seconds covered so far."""
    q = question or ""
    ql = q.lower()
    d = float(duration or 0.0)
    for pat, build in _RULES:
        m = re.search(pat, ql)
        if not m:
            continue
        try:
            win = build(m, d)
        except (ValueError, TypeError):
            win = None
        if win is None:
            continue
        lo, hi = win
        if d:
            lo, hi = max(0.0, min(lo, d)), max(0.0, min(hi, d))
        if hi < lo:
            lo, hi = hi, lo
        if hi - lo < 1e-6 and d:
            continue
        clean = (q[:m.start()] + q[m.end():]).strip()
        clean = re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s{2,}", " ", clean))
        return clean or q, (float(lo), float(hi))
    return q, None


def parse_time_filter(question: str, duration: float) -> Optional[tuple[float, float]]:
    """(t_lo, t_hi) in media seconds for a time phrase in the question, else None."""
    return split_time_filter(question, duration)[1]


# ============================================================================ evidence
_STOP = set("""a an the and or but of to in on at for with from by about as is are was were be been being it its this that
these those there here what which who whom whose when where why how do does did done have has had will would shall should
can could may might must i we you he she they me us him her them my our your his their mine ours yours is am not no yes
so if then than too very just also any some all each every more most other such only own same into over under again
further once up down out off above below tell me please say said says talk talked mention mentioned meeting video clip
slide slides anything something thing things let lets s t""".split())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower())


def _content(text: str) -> list[str]:
    return [w for w in _words(text) if w not in _STOP and len(w) > 1 or w.isdigit()]


def _sentences(text: str) -> list[str]:
    out = []
    for part in re.split(r"\n+", text or ""):
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", part.strip()):
            s = s.strip(" -•*\t")
            if len(s) >= 2:
                out.append(s)
    return out


def ocr_lines(v) -> list[str]:
    """Slide text as lines: a list, newline-separated text, or (older banks) " / "-joined text."""
    if isinstance(v, (list, tuple)):
        lines = [str(x).strip() for x in v]
    else:
        lines = [x.strip() for x in str(v or "").splitlines()]
        if len(lines) == 1 and " / " in lines[0]:
            lines = [x.strip() for x in lines[0].split(" / ")]
    return [x for x in lines if x]


@dataclass
class Snippet:
    text: str
    t0: float
    t1: float
    kind: str            # "said" | "slide" | "seen"
    memory_id: int = -1
    score: float = 0.0
    attribute: float = 0.0   # how much of what the question asks about (besides its subject) the snippet holds
    semantic: float = 0.0    # MiniLM cosine with the question (0 without an embedder)

    def stamped(self) -> str:
        return f"{fmt_span(self.t0, self.t1)} {self.text}"


def snippets(memories: Sequence[MemoryView], kinds: Sequence[str] = ("asr", "ocr")) -> list[Snippet]:
    """Sentences of the memories' evidence, in time order, deduplicated (repeated slide text kept once)."""
    out: list[Snippet] = []
    seen: dict[str, int] = {}
    name = {"asr": "said", "ocr": "slide", "tags": "seen"}
    for m in sorted(memories, key=lambda m: (m.t0, m.t1)):
        ev = m.evidence or {}
        for k in kinds:
            v = ev.get(k)
            if k == "ocr":
                v = "\n".join(ocr_lines(v))
            elif isinstance(v, (list, tuple)):
                v = "\n".join(map(str, v))
            if not v:
                continue
            if k == "tags":
                parts = [v]
            elif k == "asr":
                parts = _sentences(v)
            else:  # slide lines carry their slide's title (the first line) so "Team lead: Maria" keeps its topic
                lines = [x.strip() for x in str(v).splitlines() if x.strip()]
                parts = lines[:1] + [f"{lines[0]} — {x}" for x in lines[1:]]
            for s in parts:
                s = s.strip()
                if not s:
                    continue
                key = f"{k}:{' '.join(_words(s))}"
                if key in seen:  # same sentence again: widen its interval if adjacent, else keep the first
                    prev = out[seen[key]]
                    if m.t0 - prev.t1 < 10:
                        prev.t1 = max(prev.t1, m.t1)
                    continue
                seen[key] = len(out)
                out.append(Snippet(s, m.t0, m.t1, name[k], m.memory_id, float(m.score)))
    return out


_MONTHS = "january february march april may june july august september october november december".split()
_DAYS = "monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday".split()


def _qtype(question: str) -> str:
    q = question.lower()
    if re.search(r"\bhow (many|much)\b|\bwhat (is|was) the (budget|price|cost|number|count|total|amount)\b|"
                 r"\bbudget\b|\bprice\b|\bcost\b|\bpercent", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (date|day|time)\b|\bdeadline\b|\bdate\b", q):
        return "date"
    if re.search(r"\bwho\b|\bwhose\b|\bowner\b|\bwhich person\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhich (city|place|country|office)\b|\blocation\b", q):
        return "place"
    return "other"


def _type_bonus(qtype: str, text: str) -> float:
    tl = text.lower()
    if qtype == "number":
        return 1.0 if re.search(r"\d", text) else 0.0
    if qtype == "date":
        return 1.0 if (any(m in tl for m in _MONTHS) or any(d in tl for d in _DAYS) or
                       re.search(r"\b\d{1,2}[/.-]\d{1,2}\b|\b(19|20)\d\d\b", tl)) else 0.0
    if qtype in ("person", "place"):
        caps = re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+", text)
        return 1.0 if caps else 0.0
    return 0.0


def _contexts(snips: Sequence[Snippet], memories: Sequence[MemoryView]) -> list[set]:
    """Per snippet: the content words of its clip's whole evidence and of the title of the slide on screen then
    (evidence["screen"], which `models.ask` looks up in the bank for answerers with `wants_screen`)."""
    words = {}
    for m in memories:
        ev = m.evidence or {}
        words[m.memory_id] = set(_content(f"{ev.get('asr') or ''} {' '.join(ocr_lines(ev.get('ocr') or ''))} "
                                          f"{ev.get('screen') or ''}"))
    return [set(words.get(s.memory_id, ())) for s in snips]


class Relevance:
    """Scores snippets against a question.

    The named things of the question (capitalized words after the first: "the Nova project") pin the subject;
    the other content words ask about an attribute ("new office"). A snippet's score is
        subject factor × (attribute overlap, IDF-weighted, with stems + sem_weight × MiniLM cosine + type bonus)
    where the subject factor is 1 when the snippet names the subject, `context_factor` when only its context does
    (the clip's other evidence, the slide on screen: "The new office for the normal project will be in Lisbon",
    said while "Nova Launch Update" was up — the ASR misheard the name) and `absent_factor` when neither does. The
    type bonus rewards a snippet that holds what the question asks for (a number, a date, a name).
    `lexical` (plain overlap, subject included) is kept for the weak-evidence test.
    """

    def __init__(self, embedder=None, sem_weight: float = 0.6, context_factor: float = 0.7,
                 absent_factor: float = 0.4):
        self.embedder = embedder
        self.sem_weight = sem_weight
        self.context_factor = context_factor
        self.absent_factor = absent_factor
        self.lexical = self.semantic = self.attribute = np.zeros(0, np.float32)
        self.asks_attribute = False

    def score(self, question: str, snips: Sequence[Snippet], context: Optional[Sequence[set]] = None) -> np.ndarray:
        if not snips:
            self.lexical = self.semantic = self.attribute = np.zeros(0, np.float32)
            self.asks_attribute = False
            return np.zeros(0, np.float32)
        qw = set(_content(question))
        docs = [set(_content(s.text)) for s in snips]
        n = len(docs)
        df = {w: sum(w in d for d in docs) for w in qw}
        idf = {w: np.log(1 + n / (1 + df[w])) + 0.5 for w in qw}
        ents = {w.lower() for w in re.findall(r"(?<!^)\b[A-Z][a-zA-Z]+", question.strip()) if w not in _NOT_NAMES}
        ents &= qw
        # the noun right after a name belongs to the subject ("the Nova project"), not to what is asked
        qtoks = _words(question)
        subj = {qtoks[i + 1] for i, w in enumerate(qtoks[:-1]) if w in ents}
        attr = qw - ents - subj
        # a slide line's title prefix ("Dragon Customer Growth — Budget: 34") names its subject, not its attribute
        adocs = [set(_content(s.text.split(" — ", 1)[1])) if s.kind == "slide" and " — " in s.text else d
                 for s, d in zip(snips, docs)]
        tot = sum(idf[w] * (3.0 if w in ents else 1.0) for w in qw) or 1.0
        lexical = np.array([sum(idf[w] * (3.0 if w in ents else 1.0) for w in qw if w in d) / tot for d in docs],
                           np.float32)
        # attribute overlap, exact words or stems ("engineers" ~ "engineer", "launch" ~ "launching")
        stem = lambda w: w[:5] if len(w) > 5 else w  # noqa: E731
        atot = sum(idf[w] for w in attr) or 1.0
        astems = {w: stem(w) for w in attr}
        att = np.array([sum(idf[w] for w in attr if w in d or astems[w] in {stem(x) for x in d}) / atot
                        for d in adocs], np.float32) if attr else np.zeros(n, np.float32)
        factor = np.ones(n, np.float32)
        if ents:
            ctx = context if context is not None else [set()] * n
            for i, (d, c) in enumerate(zip(docs, ctx)):
                named = sum(w in d for w in ents) + self.context_factor * sum(w not in d and w in c for w in ents)
                factor[i] = self.absent_factor + (1 - self.absent_factor) * named / len(ents)
        qt = _qtype(question)
        bonus = np.array([_type_bonus(qt, s.text) for s in snips], np.float32)
        sem = np.zeros(n, np.float32)
        if self.embedder is not None:
            try:
                v = self.embedder.encode([question] + [s.text for s in snips])
                sem = (v[1:] @ v[0]).astype(np.float32)
            except Exception as e:  # noqa: BLE001
                log.warning("embedder failed: %s", e)
        self.lexical, self.semantic, self.attribute = lexical, sem, att
        self.asks_attribute = bool(attr)
        hit = (lexical > 0) | (att > 0)
        return factor * (att + 0.5 * (lexical > 0) + self.sem_weight * sem + 0.25 * bonus * hit)


# ============================================================================ answering
SYSTEM_PROMPT = (
    "You answer questions about a recorded meeting or video using only the notes below. Each note has a "
    "[start–end] time stamp; 'said' is speech, 'slide' is text on screen, 'seen' is what the picture shows. "
    "Answer in one short sentence that states the fact, and name the time stamp. If the notes do not contain "
    "the answer, say that it is not in the recording.")

NOT_FOUND = "I could not find this in the recording."


def _key_terms(question: str, sentence: str) -> list[str]:
    """Tokens of the best sentence that answer the question: numbers, months/days and capitalized words that
    are not already in the question."""
    qw = set(_words(question))
    terms = []
    for tok in re.findall(r"\$?\d[\d,.]*|[A-Za-z]+", sentence):
        low = tok.lower().strip("$").replace(",", "")
        if low in qw or low in _STOP:
            continue
        if re.match(r"\d", low) or low in _MONTHS or low in _DAYS or tok[:1].isupper():
            terms.append(low.rstrip("."))
    return terms


def answer_has_fact(answer: str, question: str, sentence: str) -> bool:
    """True if the answer contains at least one key term of the evidence sentence (or the sentence has none)."""
    terms = _key_terms(question, sentence)
    if not terms:
        return True
    aw = set(w.replace(",", "") for w in _words(answer.replace("$", " ")))
    return any(t in aw for t in terms)


@dataclass
class AnswerTrace:
    """What the last answer was built from (for --json latency/citation output and the benchmark)."""

    weak: bool = False
    best: Optional[Snippet] = None
    llm_text: str = ""          # everything the LLM generated (accepted or not)
    fallback_used: bool = False
    rejected: str = ""          # why the LLM's text was not used ("" when it was, or when no LLM ran)
    prompt_chars: int = 0
    ranked: list[Snippet] = field(default_factory=list)


_REFUSAL_RE = re.compile(r"\b(?:not (?:in|mentioned|stated|provided|given|found|available|specified)|no (?:information|"
                         r"mention|evidence|notes?)|does(?:n't| not) (?:say|mention|contain|state)|(?:i )?(?:do not|don't|"
                         r"cannot|can't|could not|couldn't) (?:know|find|tell|answer)|unknown|unclear)\b", re.I)
_SENT_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def _is_typed(term: str, qtype: str) -> bool:
    """Is this key term the kind of thing the question asks for?"""
    digit = bool(re.match(r"\d", term))
    if qtype == "number":
        return digit
    if qtype == "date":
        return digit or term in _MONTHS or term in _DAYS
    if qtype in ("person", "place"):
        return not digit and term not in _MONTHS and term not in _DAYS
    return True


def check_llm_sentence(sentence: str, question: str, best: Snippet, notes_text: str, first: bool) -> str:
    """'' when an LLM sentence is backed by the evidence, else why not. Every number, date and name it states must
    be in the notes (or the question); the first sentence must also state the best evidence's fact, and the thing
    the question asks for (a number, a date, a name) must come from that best evidence, not from a neighbour."""
    if first and _REFUSAL_RE.search(sentence):
        return "the LLM said it does not know although the evidence answers it"
    if _support(sentence, notes_text + " " + question) < 0.6:
        return "the LLM's sentence is mostly words that no evidence says"
    terms = _key_terms(question, sentence)
    allowed = set(w.replace(",", "") for w in _words((notes_text + " " + question).replace("$", " ")))
    loose = [t for t in terms if t not in allowed]
    if loose:
        return f"the LLM stated {', '.join(loose[:3])!r}, which no evidence says"
    ws = _words(sentence)
    grams = [" ".join(ws[i:i + 4]) for i in range(len(ws) - 3)]
    if len(grams) != len(set(grams)):
        return "the LLM repeats itself"
    if first:
        # the fact is in the line's value ("Titan Infrastructure — Team lead: James" -> "James"), not its title
        core = best.text.split(" — ", 1)[-1] if best.kind == "slide" else best.text
        core = core.split(":", 1)[1] if best.kind == "slide" and ":" in core else core
        if not answer_has_fact(sentence, question, core if _key_terms(question, core) else best.text):
            return "the LLM's answer misses the fact in the best evidence"
        qt = _qtype(question)
        bw = set(w.replace(",", "") for w in _words(best.text.replace("$", " ")))
        off = [t for t in terms if _is_typed(t, qt) and t not in bw]
        if off:
            return f"the LLM's answer names {', '.join(off[:3])!r}, which the best evidence does not"
    return ""


def _record_answer(best: Snippet) -> str:
    where = {"slide": "On screen", "said": "Said", "seen": "Seen"}.get(best.kind, "In the record")
    return f"{where} at {fmt_span(best.t0, best.t1)}: “{best.text}”"


class _Rejected(Exception):
    """An LLM sentence failed its check: stop generating."""


_LLM_CACHE: dict = {}


def default_llm():
    """The bundled small LLM for answering (VIGIL_LLM=name picks a candidate, VIGIL_LLM=none turns it off), loaded
    once per process; None when it is off or cannot load (answers are then extractive)."""
    from models.llm import DEFAULT_LLM, TextLLM, available

    name = (os.environ.get("VIGIL_LLM") or DEFAULT_LLM).strip()
    if name.lower() in ("none", "off", "0", "extractive"):
        return None
    if name not in _LLM_CACHE:
        llm = None
        if name in available():
            try:
                llm = TextLLM(name)
            except Exception as e:  # noqa: BLE001 - answering still works without it
                log.warning("LLM %s could not load (%s); answers are extractive", name, e)
        else:
            log.warning("LLM %s is not installed; answers are extractive", name)
        _LLM_CACHE[name] = llm
    return _LLM_CACHE[name]


def evidence_rerank(question: str, memories) -> list[float]:
    """Fused retrieval score per memory (bank Memory or MemoryView): its dense score (cosine) plus the lexical
    relevance of its best evidence sentence to the question. The ask path reranks every profile's candidates so."""
    views = [m if isinstance(m, MemoryView) else MemoryView(m.id, m.stream, m.t0, m.t1, float(m.score), None,
                                                              m.evidence) for m in memories]
    snips = snippets(views)
    best: dict[int, float] = {}
    if snips:
        lex = Relevance(None).score(question, snips, context=_contexts(snips, views))
        for s, v in zip(snips, lex):
            best[s.memory_id] = max(best.get(s.memory_id, 0.0), float(v))
    return [float(v.score) + best.get(v.memory_id, 0.0) for v in views]


class LiteAnswerer:
    """Answers from text evidence with a small LLM (or none).

    LiteAnswerer(llm="auto" | None | TextLLM, embedder=None | TextEmbedder, mode="hybrid"|"llm"|"extractive",
                 max_new_tokens=80, min_relevance=0.2, max_notes=8, note_ratio=0.5)
    The LLM sees at most max_notes evidence sentences, those scoring ≥ note_ratio × the best one's score.
    "auto" (the default) loads the bundled LLM (`default_llm()`) on the first answer; None answers extractively.
    answer(question, memories, history=()) -> Iterator[str]; `last` holds an AnswerTrace afterwards.

    hybrid: the LLM's answer is streamed sentence by sentence, each sentence checked against the evidence
    (`check_llm_sentence`); the first one that fails stops the LLM, and when no accepted sentence carries the fact the
    answer is the best evidence sentence, quoted and stamped. llm: the LLM's text unchecked. extractive: the quote.
    """

    # the ask path gives it the text evidence and evidence["screen"] (the slide title on screen at each clip); no carriers
    consumes = Consumes(carriers=False, evidence=True, screen=True)

    def __init__(self, llm="auto", embedder=None, mode: str = "hybrid", max_new_tokens: int = 80,
                 min_relevance: float = 0.2, max_notes: int = 8, note_ratio: float = 0.5,
                 min_semantic: float = 0.75):
        self._llm = llm
        self.rel = Relevance(embedder)
        self.mode = mode if llm is not None else "extractive"
        self.max_new_tokens = max_new_tokens
        self.min_relevance = min_relevance
        self.max_notes = max_notes
        self.note_ratio = note_ratio
        self.min_semantic = min_semantic
        self.last = AnswerTrace()

    @property
    def llm(self):
        if isinstance(self._llm, str) and self._llm == "auto":
            self._llm = default_llm()
        return self._llm

    @property
    def embedder(self):
        return self.rel.embedder

    def rank(self, question: str, memories: Sequence[MemoryView]) -> list[Snippet]:
        snips = snippets(memories)
        if not snips:
            return []
        sc = self.rel.score(question, snips, context=_contexts(snips, memories))
        for s, v, a, e in zip(snips, sc, self.rel.attribute, self.rel.semantic):
            s.score, s.attribute, s.semantic = float(v), float(a), float(e)
        return sorted(snips, key=lambda s: -s.score)

    def build_messages(self, question: str, notes: Sequence[Snippet], history: Sequence[dict] = ()) -> list[dict]:
        lines = [f"{fmt_span(s.t0, s.t1)} {s.kind}: {s.text}" for s in sorted(notes, key=lambda s: (s.t0, s.t1))]
        msgs = [{"role": "system", "content": SYSTEM_PROMPT}]
        for h in list(history)[-4:]:
            if h.get("role") in ("user", "assistant") and h.get("content"):
                msgs.append({"role": h["role"], "content": str(h["content"])[:600]})
        msgs.append({"role": "user", "content": "Notes:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"})
        return msgs

    def answer(self, question: str, memories: Sequence[MemoryView], history: Sequence[dict] = (),
               usage: Optional[Usage] = None) -> Iterator[str]:
        tr = self.last = AnswerTrace()
        usage = usage if usage is not None else Usage()
        ranked = self.rank(question, memories)
        tr.ranked = ranked
        best = ranked[0] if ranked else None
        tr.best = best
        strong = best is not None and best.score >= self.min_relevance and (
            self.rel.lexical.max() > 0 if len(ranked) else False)
        # a named thing the question asks about ("the Zebra project") must appear in the evidence
        ents = {w.lower() for w in re.findall(r"(?<!^)\b[A-Z][a-zA-Z]+", question.strip()) if w not in _NOT_NAMES}
        if strong and ents:
            have = set(_words(" ".join(s.text for s in ranked)))
            if not ents & have:
                strong = False
        # and the best evidence must speak to what is asked ("customers"), in words or in meaning
        if strong and self.rel.asks_attribute and best.attribute <= 0 and best.semantic < self.min_semantic:
            strong = False
        if not strong:
            tr.weak = True
            msg = NOT_FOUND
            if best is not None:
                msg += f" The closest moment is {fmt_span(best.t0, best.t1)}: “{best.text}”"
            else:
                msg += " There is no speech or on-screen text in the retrieved moments."
            yield msg
            return
        llm = self.llm if self.mode != "extractive" else None
        if llm is None:
            yield _record_answer(best)
            return
        # a small model answers best from few notes: the best one and those nearly as relevant
        notes = [s for s in ranked if s.score >= self.note_ratio * best.score][: self.max_notes] or ranked[:1]
        msgs = self.build_messages(question, notes, history)
        tr.prompt_chars = sum(len(m["content"]) for m in msgs)
        if self.mode == "llm":
            try:
                for piece in llm.stream(msgs, max_new_tokens=self.max_new_tokens, usage=usage):
                    tr.llm_text += piece
                    yield piece
            except Exception as e:  # noqa: BLE001
                log.warning("LLM failed: %s", e)
            return
        yield from self._hybrid(llm, msgs, question, best, notes, usage)

    def _hybrid(self, llm, msgs, question: str, best: Snippet, notes: Sequence[Snippet],
                usage: Usage) -> Iterator[str]:
        tr = self.last
        notes_text = "\n".join(s.text for s in notes)
        spans = {fmt_span(s.t0, s.t1) for s in notes}
        said: list[str] = []
        buf = ""
        gen = llm.stream(msgs, max_new_tokens=self.max_new_tokens, usage=usage)

        def accept(sentence: str) -> bool:
            sentence = sentence.strip()
            if not sentence:
                return True
            bare = sentence
            for sp in spans:  # a note's own time stamp, quoted back, is fine; its digits are not facts
                bare = bare.replace(sp, " ")
            why = check_llm_sentence(bare, question, best, notes_text, first=not said)
            if why:
                tr.rejected = why
                return False
            said.append(sentence)
            return True

        try:
            for piece in gen:
                tr.llm_text += piece
                buf += piece
                parts = _SENT_END_RE.split(buf)
                for sentence in parts[:-1]:  # complete sentences
                    if not accept(sentence):
                        raise _Rejected
                    if sentence.strip():
                        yield ("" if len(said) == 1 else " ") + sentence.strip()
                buf = parts[-1]
            if buf.strip() and accept(buf) and said and said[-1] == buf.strip():
                yield ("" if len(said) == 1 else " ") + buf.strip()
        except _Rejected:
            pass
        except Exception as e:  # noqa: BLE001 - fall back to the evidence
            log.warning("LLM failed: %s", e)
            tr.rejected = tr.rejected or f"the LLM failed: {e}"
        finally:
            gen.close()  # stops the generation early when a sentence was rejected
        if not said:
            tr.fallback_used = True
            yield _record_answer(best)
        elif not re.search(r"\[\d\d:\d\d:\d\d", " ".join(said)):
            yield f" {fmt_span(best.t0, best.t1)}"


# ============================================================================ summarizing
@dataclass
class Line:
    text: str
    t0: float
    t1: float

    def md(self) -> str:
        return f"{fmt_span(self.t0, self.t1)} {self.text}"


@dataclass
class ActionItem:
    owner: Optional[str]
    task: str
    t0: float
    t1: float
    text: str = ""

    def md(self) -> str:
        return f"{fmt_span(self.t0, self.t1)} **{self.owner or 'Unassigned'}**: {self.task}"


@dataclass
class Section:
    title: str
    t0: float
    t1: float
    bullets: list[Line] = field(default_factory=list)
    slide_text: list[str] = field(default_factory=list)


@dataclass
class Minutes:
    title: str
    t0: float
    t1: float
    overview: list[Line] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    decisions: list[Line] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    numbers: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was made (e.g. "LLM bullets rejected: 2")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        out = [f"# {self.title}", "", f"{fmt_span(self.t0, self.t1)} {len(self.sections)} sections", ""]
        if self.overview:
            out += ["## Overview", ""] + [f"- {ln.md()}" for ln in self.overview] + [""]
        out += ["## Sections", ""]
        for s in self.sections:
            out += [f"### {fmt_span(s.t0, s.t1)} {s.title}", ""]
            out += [f"- {b.md()}" for b in s.bullets] or [f"- {fmt_span(s.t0, s.t1)} (nothing said)"]
            out.append("")
        out += ["## Decisions", ""] + ([f"- {d.md()}" for d in self.decisions] or
                                       [f"- {fmt_span(self.t0, self.t1)} None recorded."]) + [""]
        out += ["## Action items", ""] + ([f"- {a.md()}" for a in self.action_items] or
                                          [f"- {fmt_span(self.t0, self.t1)} None recorded."]) + [""]
        out += ["## Numbers and dates", ""] + ([f"- {n.md()}" for n in self.numbers] or
                                               [f"- {fmt_span(self.t0, self.t1)} None recorded."]) + [""]
        return "\n".join(out)


_NOT_NAMES = set("""I We You He She They It This That There Here The A An And But So Then Now Next Also Okay Ok Well
Yes No Let Please Thanks Thank Action Item Decision Everyone Somebody Someone Team Our My Your His Her Their Who What
When Where Why How If Maybe Today Tomorrow Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February
March April May June July August September October November December Project Ah Oh Um Uh Hi Hello""".split())

_ACTION_RES = [
    re.compile(r"\baction items?\b[\s:.,;-]*(?:for\s+)?(?P<owner>[A-Z][a-z]+)\b[\s:,]*(?:will|to|is going to|needs to|should|shall|must|has to)?\s*(?P<task>[^.!?]+)", re.I),
    re.compile(r"\b(?P<owner>[A-Z][a-z]+)\s+(?i:will|is going to|needs to|has to|should|shall|agreed to|is to|must|'ll)"
               r"\s+(?P<task>[^.!?]+)"),  # the ASR sometimes capitalizes "Will"
    re.compile(r"(?:^|[.!?]\s+|,\s*)(?P<owner>[A-Z][a-z]+)\s+to\s+(?P<task>[a-z][^.!?]+)"),
    re.compile(r"\b(?:todo|to-do|follow[- ]up)\b[\s:.,;-]+(?P<task>[^.!?]+)", re.I),
]
_DECISION_RE = re.compile(
    r"\b(?:we|the team|they|everyone)\s+(?:have\s+)?(?:decided|agreed|chose|will go with|settled on|approved)\b"
    r"|\bdecision\b\s*[:.,-]|\b(?:it was|it's|it is)\s+(?:decided|agreed)\b|\bwe(?:'ll| will) go with\b", re.I)
_NUMBER_RE = re.compile(
    r"\$\s?\d[\d,.]*(?:\s*(?:million|thousand|billion|k|m|bn))?|\b\d[\d,.]*\s*(?:%|percent|million|thousand|billion|"
    r"dollars|euros|customers|engineers|people|users|seats|units|days|weeks|months|years)\b|"
    r"\b(?:" + "|".join(m.title() for m in _MONTHS) + r")\s+\d{1,2}(?:st|nd|rd|th)?\b(?:,?\s+\d{4})?|"
    r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:" + "|".join(m.title() for m in _MONTHS) + r")\b|"
    r"\b(?:19|20)\d\d\b|\bQ[1-4]\b|\b\d+(?:\.\d+)?\b", re.I)
_TOPIC_CUE = re.compile(r"\b(?:next topic|moving on|let's move on|let us move on|next item on the agenda|"
                        r"now let's talk about|turning to|the next point is|let's switch to)\b", re.I)


def extract_actions(text: str, t0: float, t1: float) -> list[ActionItem]:
    out = []
    for s in _sentences(text):
        for i, rx in enumerate(_ACTION_RES):
            m = rx.search(s)
            if not m:
                continue
            owner = m.groupdict().get("owner")
            if owner:
                owner = owner.strip().title()
                if owner in _NOT_NAMES:
                    if i == 0:
                        owner = None  # "Action item: we need to ..." -> unassigned
                    else:
                        continue
            task = re.sub(r"\s+", " ", m.group("task")).strip(" ,:;-")
            task = re.sub(r"^(?:will|to|is going to|needs to)\s+", "", task, flags=re.I)
            if len(task.split()) < 2:
                continue
            out.append(ActionItem(owner, task, t0, t1, s))
            break
    return out


def extract_decisions(text: str, t0: float, t1: float) -> list[Line]:
    return [Line(s, t0, t1) for s in _sentences(text) if _DECISION_RE.search(s)]


def extract_numbers(text: str, t0: float, t1: float) -> list[Line]:
    out = []
    for s in _sentences(text):
        hits = [m.group(0).strip() for m in _NUMBER_RE.finditer(s)]
        hits = [h for h in hits if not re.fullmatch(r"[01]", h)]  # "1" alone is rarely a fact
        if hits:
            out.append(Line(s, t0, t1))
    return out


@dataclass
class _Item:
    t0: float
    t1: float
    asr: str
    ocr: list[str]
    title: str


def _title_of_ocr(ocr) -> str:
    lines = ocr_lines(ocr)
    return lines[0] if lines else ""


def _same_title(a: str, b: str) -> bool:
    """Equal up to OCR typos; titles whose numbers differ ("Q1 Review" / "Q2 Review") are different."""
    na, nb = " ".join(_words(a)), " ".join(_words(b))
    if na == nb:
        return True
    return re.findall(r"\d+", na) == re.findall(r"\d+", nb) and difflib.SequenceMatcher(None, na, nb).ratio() >= 0.8


def segment_sections(memories: Sequence[MemoryView], embedder=None, min_len_s: float = 45.0,
                     max_len_s: float = 600.0, shift_threshold: float = 0.15) -> list[tuple[str, list[_Item]]]:
    """Split memories (time order) into sections: at a slide-title change (OCR first line), at explicit topic
    cues in speech ("next topic", "moving on"), at a drop in transcript similarity (with an embedder), and when
    a section would exceed max_len_s."""
    items: list[_Item] = []
    for m in sorted(memories, key=lambda m: (m.t0, m.t1)):
        ev = m.evidence or {}
        lines = ocr_lines(ev.get("ocr") or "")
        asr = ev.get("asr") or ""
        if isinstance(asr, (list, tuple)):
            asr = " ".join(map(str, asr))
        items.append(_Item(m.t0, m.t1, str(asr).strip(), lines, _title_of_ocr(lines)))
    if not items:
        return []
    vecs = None
    if embedder is not None:
        try:
            vecs = embedder.encode([it.asr for it in items])
        except Exception:  # noqa: BLE001
            vecs = None
    sections: list[tuple[str, list[_Item]]] = []
    cur: list[_Item] = []
    cur_title = ""
    for i, it in enumerate(items):
        boundary = False
        new_title = cur_title
        if it.title and not (cur_title and _same_title(it.title, cur_title)):
            boundary, new_title = bool(cur), it.title
        elif cur and it.asr and _TOPIC_CUE.search(it.asr) and it.t0 - cur[0].t0 >= min_len_s:
            boundary, new_title = True, ""
        elif cur and it.t1 - cur[0].t0 > max_len_s:
            boundary = True
        elif vecs is not None and cur and it.asr and it.t0 - cur[0].t0 >= 2 * min_len_s:
            prev = np.mean([vecs[j] for j in range(i - len(cur), i) if items[j].asr] or [vecs[i]], axis=0)
            sim = float(prev @ vecs[i] / (np.linalg.norm(prev) + 1e-9))
            if sim < shift_threshold and not it.title:
                boundary, new_title = True, ""
        if boundary and cur:
            sections.append((cur_title, cur))
            cur = []
        if not cur:
            cur_title = new_title if new_title else ""
        if it.title and not cur_title:
            cur_title = it.title
        cur.append(it)
    if cur:
        sections.append((cur_title, cur))
    return sections


BULLET_PROMPT = ("Summarize this part of a meeting in at most 3 short bullet points. Keep names, numbers and "
                 "dates exactly as written. Use only facts from the text. Start each bullet with '- '.")


def _support(bullet: str, source: str) -> float:
    bw = set(_content(bullet))
    if not bw:
        return 0.0
    sw = set(_content(source))
    return len(bw & sw) / len(bw)


def _stamp_for(text: str, timed: Sequence[tuple[str, float, float]], default: tuple[float, float]):
    best, span = 0.0, default
    tw = set(_content(text))
    for s, a, b in timed:
        ov = len(tw & set(_content(s)))
        if ov > best:
            best, span = ov, (a, b)
    return span


_FILLER_RE = re.compile(r"^(let us|let's|are there any|that sounds|i think|thank you|thanks|please keep|we can come|"
                        r"i agree|this is an important|okay|ok|so|next topic)\b", re.I)


def summarize(memories: Sequence[MemoryView], llm=None, progress_cb: Optional[Callable[[float, int, str], None]] = None,
              embedder=None, title: str = "Meeting minutes", max_section_tokens: int = 1200,
              use_llm_overview: bool = True, use_llm_bullets: bool = True) -> Minutes:
    """Meeting minutes from memories in time order (any order is accepted; they are sorted)."""
    mems = sorted(memories, key=lambda m: (m.t0, m.t1))
    if not mems:
        return Minutes(title, 0.0, 0.0, notes=["no memories"])
    secs = segment_sections(mems, embedder=embedder)
    boiler = _boilerplate(secs)
    total = len(secs) + (1 if llm is not None and use_llm_overview else 0)  # the reduce (overview) is one unit
    mn = Minutes(title, mems[0].t0, max(m.t1 for m in mems))
    rejected = 0
    seen_actions: set[tuple] = set()
    seen_dec: set[str] = set()
    seen_num: set[str] = set()
    for si, (stitle, items) in enumerate(secs):
        t0, t1 = items[0].t0, max(it.t1 for it in items)
        if progress_cb:
            progress_cb(si, total, f"section {si + 1}/{len(secs)} {fmt_span(t0, t1)}")
        # slide text of the section (deduplicated, in order), without the title
        slide: list[str] = []
        for it in items:
            for ln in it.ocr:
                if ln.strip() and not any(_same_title(ln, x) for x in slide):
                    slide.append(ln.strip())
        slide = [ln for ln in slide if _skeleton(ln) not in boiler]
        body_slide = [ln for ln in slide if not _same_title(ln, stitle)]
        timed = _timed_sentences(items)
        # rule-based extraction over speech and slide text
        for s, a, b in timed:
            for ai in extract_actions(s, a, b):
                k = (ai.owner, " ".join(_words(ai.task))[:40])
                if k not in seen_actions:
                    seen_actions.add(k)
                    mn.action_items.append(ai)
            for d in extract_decisions(s, a, b):
                k = " ".join(_words(d.text))
                if k not in seen_dec:
                    seen_dec.add(k)
                    mn.decisions.append(d)
        for it in items:
            for ln in it.ocr:
                if _skeleton(ln) in boiler:
                    continue
                for ai in extract_actions(ln, it.t0, it.t1):
                    k = (ai.owner, " ".join(_words(ai.task))[:40])
                    if k not in seen_actions:
                        seen_actions.add(k)
                        mn.action_items.append(ai)
        for s, a, b in timed + [(ln, t0, t1) for ln in body_slide]:
            for n in extract_numbers(s, a, b):
                k = " ".join(_words(n.text))
                if k not in seen_num:
                    seen_num.add(k)
                    mn.numbers.append(n)
        heading = stitle or (_guess_title(timed) if timed else f"Part {si + 1}")
        sec = Section(heading, t0, t1, slide_text=slide)
        # bullets: LLM on the section text (split when long), each bullet checked against the source
        source_text = "\n".join([f"Slide: {ln}" for ln in slide] + [s for s, _, _ in timed])
        bullets: list[Line] = []
        if llm is not None and use_llm_bullets and (timed or body_slide):
            for chunk in _chunks(source_text, llm, max_section_tokens):
                try:
                    out = llm.generate([{"role": "system", "content": BULLET_PROMPT},
                                        {"role": "user", "content": chunk}], max_new_tokens=120)
                except Exception as e:  # noqa: BLE001
                    log.warning("LLM failed in summarize: %s", e)
                    out = ""
                for b in _parse_bullets(out):
                    if (_support(b, source_text) >= 0.8 and len(_content(b)) >= 4 and not re.match(r"^[A-Z ]+:", b)
                            and not any(_support(b, x.text) > 0.9 for x in bullets)):
                        a, c = _stamp_for(b, timed, (t0, t1))
                        bullets.append(Line(b, a, c))
                    else:
                        rejected += 1
        # extractive bullets (reliable): slide bullets, then the most informative sentences
        base = [Line(ln, t0, t1) for ln in body_slide[:5]]
        informative = [(s, a, b) for s, a, b in timed if not _FILLER_RE.match(s) and len(s.split()) >= 4]
        informative.sort(key=lambda x: -(len(_NUMBER_RE.findall(x[0])) + len(re.findall(r"\b[A-Z][a-z]+", x[0]))))
        base += [Line(s, a, b) for s, a, b in sorted(informative[:3], key=lambda x: x[1])]
        # LLM bullets (fluency) only when they add a supported sentence the extractive ones lack
        extra = [b for b in bullets if not any(_support(b.text, x.text) >= 0.8 for x in base)][:2]
        sec.bullets = base + extra
        mn.sections.append(sec)
    if rejected:
        mn.notes.append(f"{rejected} LLM bullet(s) dropped as unsupported by the transcript or slides")
    # reduce: overview from section headings (+ LLM sentences when available)
    mn.overview = [Line(f"{s.title}", s.t0, s.t1) for s in mn.sections]
    if llm is not None and use_llm_overview and mn.sections:
        digests = [f"{fmt_span(s.t0, s.t1)} {s.title}: " + "; ".join(b.text for b in s.bullets[:3])
                   for s in mn.sections]
        calls = [0]

        def step(what: str) -> None:  # the reduce is the last unit of the bar: its steps fill it halfway each
            calls[0] += 1
            if progress_cb:
                progress_cb(len(secs) + 1 - 0.5 ** calls[0], total, what)

        out = reduce_overview(llm, digests, max_section_tokens, step)
        if out:
            mn.overview.insert(0, Line(out, mn.t0, mn.t1))
    if progress_cb:
        progress_cb(total, total, "done")
    return mn


OVERVIEW_PROMPT = "Write a two-sentence overview of this meeting. Use only the facts given."
GROUP_PROMPT = ("Summarize these notes from one part of a meeting in at most two sentences. Keep names, numbers and "
                "dates exactly as written. Use only the facts given.")


def reduce_overview(llm, digests: Sequence[str], max_tokens: int = 1200,
                    step: Optional[Callable[..., None]] = None) -> str:
    """The reduce half of map-reduce: section digests -> a short overview, in as many levels as it takes for every
    prompt to fit `max_tokens` (so a 2-hour meeting never overflows a small model's context). Each level packs
    lines into chunks that fit, condenses each chunk (LLM, kept only when supported by the chunk; else its
    headings), and repeats until one prompt holds everything. Returns "" when the LLM's overview is unsupported."""
    count = getattr(llm, "count_tokens", lambda t: len(t) // 4)
    line_cap = max(16, max_tokens // 4)

    def cap(line: str) -> str:  # one line never takes more than a quarter of a prompt
        if count(line) <= line_cap:
            return line
        return line[: max(40, int(len(line) * line_cap / max(1, count(line))))].rstrip() + "…"

    level = [cap(d) for d in digests]
    full = "\n".join(level)
    rounds = 0
    while count("\n".join(level)) > max_tokens and len(level) > 1 and rounds < 8:
        rounds += 1
        groups = _chunks("\n".join(level), llm, max_tokens)
        if step:
            step(f"condensing {len(groups)} parts (level {rounds})")
        nxt = []
        for gi, g in enumerate(groups):
            if step and gi:
                step(f"condensing part {gi + 1}/{len(groups)} (level {rounds})")
            text = ""
            try:
                text = llm.generate([{"role": "system", "content": GROUP_PROMPT}, {"role": "user", "content": g}],
                                    max_new_tokens=80).replace("\n", " ").strip()
            except Exception as e:  # noqa: BLE001
                log.warning("LLM failed in summarize: %s", e)
            if not text or _support(text, g) < 0.5:  # fall back to the chunk's headings (always shorter)
                heads = [re.sub(r":.*$", "", ln).strip() for ln in g.splitlines() if ln.strip()]
                text = "; ".join(heads)
            nxt.append(cap(text))
        if len(nxt) >= len(level):  # no progress: stop rather than loop
            break
        level = nxt
    prompt = "\n".join(level)
    if count(prompt) > max_tokens:  # could not condense enough: keep what fits
        prompt = _chunks(prompt, llm, max_tokens)[0]
    if step:
        step("overview")
    try:
        out = llm.generate([{"role": "system", "content": OVERVIEW_PROMPT}, {"role": "user", "content": prompt}],
                           max_new_tokens=80)
    except Exception as e:  # noqa: BLE001
        log.warning("LLM overview failed: %s", e)
        return ""
    out = (out or "").strip().replace("\n", " ")
    return out if out and _support(out, full + "\n" + prompt) >= 0.5 else ""


def _timed_sentences(items) -> list[tuple[str, float, float]]:
    """Transcript sentences of the clips in time order, each once: a sentence that spans several clips (the ASR
    attaches it to every clip it overlaps) keeps the interval from its first to its last clip."""
    out: list[list] = []
    last: dict[str, int] = {}
    for it in items:
        for s in _sentences(it.asr):
            k = " ".join(_words(s))
            j = last.get(k)
            if j is not None and it.t0 - out[j][2] < 10:
                out[j][2] = max(out[j][2], it.t1)
                continue
            last[k] = len(out)
            out.append([s, it.t0, it.t1])
    return [(s, a, b) for s, a, b in out]


def _skeleton(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(_words(line)))


def _boilerplate(secs) -> set[str]:
    """Slide lines that recur (digits aside) in at least 80% of 3+ sections: footers, logos, page numbers. (A label
    such as "Engineers: 67" / "Engineers: 72" on some of the slides is content, not boilerplate.)"""
    if len(secs) < 3:
        return set()
    count: dict[str, int] = {}
    for _, items in secs:
        for k in {_skeleton(ln) for it in items for ln in it.ocr}:
            count[k] = count.get(k, 0) + 1
    return {k for k, c in count.items() if c >= 0.8 * len(secs)}


def _guess_title(timed) -> str:
    for s, _, _ in timed:
        m = re.search(r"(?:next topic|moving on to|let's talk about|turning to)[\s:,]*(.+)", s, re.I)
        if m:
            return m.group(1).strip(" .")
    words = [w for w in re.findall(r"\b[A-Z][a-z]+\b", " ".join(s for s, _, _ in timed)) if w not in _NOT_NAMES]
    if words:
        common = max(set(words), key=words.count)
        return f"{common} discussion"
    return "Discussion"


def _chunks(text: str, llm, max_tokens: int) -> list[str]:
    lines = text.splitlines()
    out, cur, n = [], [], 0
    count = getattr(llm, "count_tokens", lambda s: len(s) // 4)
    for ln in lines:
        k = count(ln) + 1
        if cur and n + k > max_tokens:
            out.append("\n".join(cur))
            cur, n = [], 0
        cur.append(ln)
        n += k
    if cur:
        out.append("\n".join(cur))
    return out


def _parse_bullets(text: str) -> list[str]:
    out = []
    for ln in (text or "").splitlines():
        m = re.match(r"\s*(?:[-*•]|\d+[.)])\s+(.*\S)", ln)
        if m:
            b = m.group(1).strip().strip("*").strip()
            if len(b.split()) >= 3:
                out.append(b)
    return out[:4]
