"""Which evidence sentences answer a question.

Evidence comes as `Snippet`s: transcript sentences ("said"), slide lines ("slide", each carrying its slide's
title: "Falcon Budget Review — Budget: 35 million") and visual tags ("seen"). `Relevance.score` ranks them with

    names factor × (BM25 of the question + BM25 of what it asks besides its names, each scaled to the best
                    snippet, + sem_weight × MiniLM cosine + a bonus when the snippet holds the asked-for type)

- BM25 is bm25s (Snowball stems from PyStemmer), fitted on the candidate snippets themselves, so IDF is local to
  what retrieval found; number words are digits on both sides (text2num).
- Names: capitalized words of the question past its first ("the Nova project"). A snippet that names them scores
  in full, one whose context does (the clip's other evidence, the slide on screen: the ASR heard "normal" for
  "Nova" while "Nova Launch Update" was up) `context_factor`, one that does not `absent_factor`.
- Type: "how many / how much" wants a number, "when" a date, "who" / "where" a name.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np

from models.base import MemoryView

from .timephrase import fmt_span
from .words import (align_names, common_word, content, digits, heard_forms, is_heading, ocr_lines, sentences, stem,
                    stop_words, unjoin, words, write_in)

log = logging.getLogger(__name__)

MONTHS = "january february march april may june july august september october november december".split()
DAYS = "monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday".split()


@dataclass
class Snippet:
    text: str
    t0: float
    t1: float
    kind: str            # "said" | "slide" | "seen"
    memory_id: int = -1
    score: float = 0.0
    attribute: float = 0.0   # BM25 (scaled) of what the question asks besides its names
    semantic: float = 0.0    # MiniLM cosine with the question (0 without an embedder)
    asked: float = 0.0       # MiniLM cosine of what the question asks (its names left out) with the snippet's value
    predicate: float = 0.0   # MiniLM cosine of what the question asks with what the line says of its subject
                             # (`predicate_text` of both; set by the lite answerer for its candidate lines)
    heard: str = ""          # the text with the question's names written in where the recognizer misspelt them
                             # (`models.text.words.align_names`; "" until a ranker sets it: then the text itself)

    def stamped(self) -> str:
        return f"{fmt_span(self.t0, self.t1)} {self.text}"

    @property
    def value(self) -> str:
        """The part of a slide line after its title ("Budget: 35 million"), else the text."""
        return self.text.split(" — ", 1)[1] if self.kind == "slide" and " — " in self.text else self.text


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
                parts = []
                for sent in sentences(v):  # a fragment ("operating system.") belongs to the sentence before it
                    if parts and len(words(sent)) < 4:
                        parts[-1] = f"{parts[-1]} {sent}"
                    else:
                        parts.append(sent)
            else:  # slide lines carry their heading so "Team lead: Maria" keeps its topic
                lines = [x.strip() for x in str(v).splitlines() if x.strip()]
                # the heading of a line: the nearest heading above it (a document's section), else the first line
                # (the slide's title); a heading alone says only what follows is about, its lines carry it
                parts, head = [], lines[0]
                for x in lines[1:]:
                    if is_heading(x):
                        head = x
                        continue
                    parts.append(f"{head} — {x}")
                parts = parts or lines[:1]
            for s in parts:
                s = s.strip()
                if not s:
                    continue
                key = f"{k}:{' '.join(words(s))}"
                if key in seen:  # same sentence again: widen its interval if adjacent, else keep the first
                    prev = out[seen[key]]
                    if m.t0 - prev.t1 < 10:
                        prev.t1 = max(prev.t1, m.t1)
                    continue
                seen[key] = len(out)
                out.append(Snippet(s, m.t0, m.t1, name[k], m.memory_id, float(m.score)))
    return out


def contexts(snips: Sequence[Snippet], memories: Sequence[MemoryView]) -> list[str]:
    """Per snippet: its clip's whole evidence and the title of the slide on screen then (evidence["screen"],
    which `models.ask` looks up in the bank for answerers with `wants_screen`)."""
    text = {}
    for m in memories:
        ev = m.evidence or {}
        asr = ev.get("asr") or ""
        if isinstance(asr, (list, tuple)):
            asr = " ".join(map(str, asr))
        text[m.memory_id] = f"{asr} {' '.join(ocr_lines(ev.get('ocr') or ''))} {ev.get('screen') or ''}"
    return [text.get(s.memory_id, "") for s in snips]


def names_in(question: str) -> set[str]:
    """Lower-cased capitalized words past the first that are not stop words, months or days: what the question
    is about ("Falcon" in "What is the budget for the Falcon project?")."""
    sw = stop_words()
    toks = re.findall(r"[A-Za-z][A-Za-z'-]*", question or "")
    out = set()
    for i, t in enumerate(toks):
        low = t.lower()
        if i and t[0].isupper() and low not in sw and low not in MONTHS and low not in DAYS and len(low) > 1:
            out.add(low)
    return out


# auxiliaries a question is built with ("How many clients does Orion have?"): no part of what it asks
_AUX = frozenset({"do", "does", "did"})


def asked_terms(question: str) -> list[str]:
    """The content words of a question besides its names and auxiliaries: what it asks about ("football", "match",
    "night" in "Who won the football match last night?" after "won")."""
    names = names_in(question)
    return [w for w in dict.fromkeys(content(digits(question))) if w not in names and w not in _AUX]


def word_coverage(question: str, text: str) -> float:
    """Share of the question's asked terms (`asked_terms`) whose Snowball stem is in text (1.0 when it asks none)."""
    ts = asked_terms(question)
    if not ts:
        return 1.0
    have = set(stem(content(digits(text))))
    return sum(s in have for s in stem(ts)) / len(ts)


def qtype(question: str) -> str:
    """What kind of value a question asks for: "number", "date", "person", "place", "name" (of a company, a
    product: any proper name) or "other"."""
    q = digits(question).lower()
    if re.search(r"\bhow (many|much|big|large|high|low|long)\b|\bwhat (is|was|were|are) the (number|count|total|"
                 r"amount|percentage|share|rate|price|cost|size)\b|\bpercent|\bhow many\b|"
                 r"\bwhat (fraction|proportion|percentage|share|ratio|portion)\b", q):
        return "number"
    if re.search(r"\bwhat (date|day|time|month|year)\b|\bdeadline\b|\bby which (date|day)\b", q) or _asks_when(q):
        return "date"
    if re.search(r"\bwho\b|\bwhom\b|\bwhose\b|\bwhich (person|colleague|manager|engineer|employee|member)\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhich (city|place|country|office|site|location|region|town)\b|\bin which city\b", q):
        return "place"
    if re.search(r"\b(which|what) (company|firm|vendor|supplier|partner|brand|business|organi[sz]ation|bank|"
                 r"customer|client|provider|agency)\b", q):
        return "name"
    return "other"


_WH = re.compile(r"\b(?:what|which|who|whom|whose|where|why|how)\b")


def _asks_when(q: str) -> bool:
    """Is "when" the question's own word ("When do we meet?", "By when is it due?"), not a clause of another
    question ("What should the caller type in first when giving their number?" asks for a what)?"""
    m = re.search(r"\bwhen\b", q)
    return bool(m) and not _WH.search(q[:m.start()])


# a number that is part of a date ("June 8", "8 June") is no count or amount
_DATE_NUM = re.compile(rf"\b(?:{'|'.join(MONTHS)})\s+\d{{1,2}}\b|\b\d{{1,2}}\s+(?:{'|'.join(MONTHS)})\b")


def answer_part(value: str) -> str:
    """Where a line's value is: after a label's colon ("Servers in use: 83", " 83"; "Note 2: Does anyone agree?",
    " Does anyone agree?"), else the whole line."""
    head, sep, rest = value.partition(":")
    label = sep and rest.strip() and len(head.split()) <= 5 and not re.match(r"\d", rest)  # not "10:30"
    return rest if label else value


def _proper(text: str, names=()) -> list[str]:
    """Capitalized words of text that may be a value's proper name: no stop word, month or day, and not in a
    capitalized run holding one of `names` (the question's own subject: "the Jasper Trial", "Iris Sprint Review").
    A sentence's first word counts only as a person's first name that is no common word (`_named_start`:
    "Tabitha runs the reading room", not "Leave it with Bianca" or "Will you send it?")."""
    skip = stop_words() | set(MONTHS) | set(DAYS)
    out = []
    for m in re.finditer(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*", text):
        run = m.group(0).split()
        if {w.lower() for w in run} & set(names):
            continue
        start = m.start()
        before = text[:start].rstrip()
        first = start == 0 or (before != "" and before[-1] in ".!?")  # " Bruno" after a label's colon is no start
        out += [w for i, w in enumerate(run)
                if not (i == 0 and first and not _named_start(w)) and w.lower() not in skip]
    return out


def _named_start(word: str) -> bool:
    """Is a capitalized word that starts a sentence a person's first name (`gazetteer.first_names`) and none of the
    ~1,000 commonest English words (`words.common_word`: "Will", "Mark", "June" start sentences for themselves)?"""
    from .gazetteer import first_names

    w = word.lower()
    return w in first_names() and not common_word(w) and w not in stop_words()


# the unit a number is given in: a share ("62%", "62 percent"), money ("$35", "94 euros"), else a plain amount
_CURRENCY = r"(?:dollars?|euros?|pounds?|yen|yuan|francs?|rupees?|cents?|usd|eur|gbp|chf|jpy)"
_NUMBER = re.compile(rf"(?P<pre>[$€£¥]\s*)?\d[\d,]*(?:\.\d+)?(?:\s+10{{3,}}\b)?"  # "35 1000000": 35 million
                     rf"(?P<post>\s*(?:%|percent\b|per\s*cent\b|(?:(?:million|billion|thousand|[mkb]n?)\s*)?"
                     rf"{_CURRENCY}\b))?")
# what a question's number is: a share of a whole, or an amount of money
_ASKS_SHARE = re.compile(r"\b(?:fraction|proportion|percentage|percent|share|ratio|rate|margin)\b")
_ASKS_MONEY = re.compile(r"\b(?:cost|costs|price|priced|pay|pays|paid|spend|spent|charge|charged|money|budget|"
                         r"fund|funding|funds|salary|fee|fees|revenue|worth|income|earn|earns|earned|earnings|"
                         r"profit|profits|turnover|proceeds)\b")


def number_units(text: str) -> list[str]:
    """The unit of each number in text (days of dates left out): "share", "money" or "plain"."""
    out = []
    for m in _NUMBER.finditer(_DATE_NUM.sub(" ", digits(text).lower())):
        post = (m.group("post") or "").strip()
        out.append("share" if post and post[0] in "%p" else "money" if m.group("pre") or post else "plain")
    return out


def asked_unit(question: str) -> str:
    """The unit a number question wants: "share" (what fraction, what percentage), "money" (how much does it
    cost, what is the price), else "" (a count or any amount)."""
    q = (question or "").lower()
    return "share" if _ASKS_SHARE.search(q) else "money" if _ASKS_MONEY.search(q) else ""


def _unit_fit(want: str, units: Sequence[str]) -> float:
    """How well a line's numbers fit the unit asked: 1.0 one in that unit (or any, when none is asked), 0.5 a
    plain number (a unit may go unsaid), 0.0 only numbers in another unit ("94 euros" for a fraction)."""
    if not units:
        return 0.0
    if not want or want in units:
        return 1.0
    return 0.5 if "plain" in units else 0.0


def type_bonus(qt: str, text: str, names=(), unit: str = "") -> float:
    """1.0 when text holds a value of the asked type (`qtype`) where a value is (`answer_part`), else 0.0. A number
    must not be a day of a date and is weighed by how its unit fits `unit` (`asked_unit`: a fraction is no price,
    `_unit_fit`); a person, place or name is a capitalized word that is no stop word, month, day, sentence start
    or part of the question's own subject (`_proper`; `names` lower-cased), and for a person or a place not all
    such words are known only as the other kind (`_other_kind`: a city answers no "who")."""
    text = answer_part(text.split(" — ", 1)[-1])
    tl = digits(text).lower()
    if qt == "number":
        return _unit_fit(unit, number_units(text))
    if qt == "date":
        return 1.0 if (any(re.search(rf"\b{m}\b", tl) for m in MONTHS + DAYS) or
                       re.search(r"\b\d{1,2}[/.-]\d{1,2}\b|\b(19|20)\d\d\b|\bq[1-4]\b", tl) or
                       _RELATIVE_TIME.search(tl)) else 0.0
    if qt in ("person", "place", "name"):
        found = _proper(text, names)
        if qt != "name" and found and all(_other_kind(w, qt) for w in found):
            return 0.0  # "Test lab: Uppsala" names no one; "Coach: Cordelia" no place
        return 1.0 if found else 0.0
    return 0.0


# "when" is also answered by a time relative to an event ("after the tone", "as soon as it is signed", "at the end
# of the call") or a clock time
_RELATIVE_TIME = re.compile(r"\b(?:after|before|until|till|once|as soon as|at the (?:end|start|beginning) of)\s+"
                            r"(?:the|a|an|it|this|that|your|we|they|you)\b|\b\d{1,2}(?::\d\d)?\s*(?:am|pm|o'clock)\b|"
                            r"\b(?:tomorrow|tonight|today|yesterday|next week|next month|next year)\b")


def _other_kind(word: str, qt: str) -> bool:
    """Is the word known as a place and not a person's name when a person is asked for (`qt` "person"), or the
    other way round (`models.text.gazetteer`)?"""
    from .gazetteer import kind_of

    k = kind_of(word)
    return bool(k) and qt not in k


# a slide's "label: value" line (a label of at most five words, a value of at most three)
_LABELLED = re.compile(r"[\W_]*((?:[^\W\d_][\w'&/-]*\s+){0,4}[^\W\d_][\w'&/-]*):\s*((?:\S+\s+){0,2}\S+)")


@lru_cache(maxsize=4096)
def label_gloss(label: str, person: bool = False) -> str:
    """The dictionary's definition of a slide label (WordNet's commonest noun sense of the label, a compound such as
    "lamp_post", or its last word; "" when unknown): a question paraphrases what the label means ("Which person
    shapes the clay?" for "Potter: Ivor", whose word alone scored 0.16 with it), not its word. person: the label
    names a person (its value is a first name), so its commonest sense that is a person, where it has one
    ("Chair: Gwendolyn": "the officer who presides at the meetings of an organization", not the seat)."""
    from models.minutes import wordnet

    if not wordnet.available():
        return ""
    ws = label.lower().split()
    if not ws or not all(w.isalpha() for w in ws):  # "Ro0ms" is no word the dictionary should guess at
        return ""
    heads = wordnet.base_forms(ws[-1], "n") or [ws[-1]]
    compounds = [j.join(ws[:-1] + [h]) for h in heads for j in ("_", "")]  # "lamp_post", "lamppost"
    for lemma in compounds + (heads if len(ws) > 1 else []):
        found = wordnet.senses(lemma, "n")
        if found:
            people = [o for o in found if wordnet.lexfile(o, "n") == wordnet.NOUN_PERSON] if person else []
            return wordnet.gloss((people or found)[0], "n")
    return ""


def predicate_text(text: str, names=(), gloss: bool = False) -> str:
    """What a question asks, or a line says, about its subject: its words without the subject's names (`names`,
    lower-case) and the lower-case noun after "the" and one ("the Nova project"), and without numbers ("How much
    income did Dune generate?" -> "How much income did generate?";
    "Dune Compliance Update — Retail stores: 58" -> "Retail stores:"). A line that shares only its subject with the
    question then no longer looks like its answer; a slide line is taken without the title it carries, and a
    "label: value" line as its label ("· Legal counsel: Copperfield" -> "Legal counsel:": the value's words carry
    no meaning, the label is what the question paraphrases); gloss: the label followed by its dictionary definition
    (`label_gloss`: "Potter: a craftsman who shapes pottery ...")."""
    from .gazetteer import kind_of

    value = text.split(" — ", 1)[-1]
    label = _LABELLED.fullmatch(value.strip())
    if label:  # "Legal counsel: Copperfield" says "Legal counsel" of its subject; the value carries no meaning
        who = gloss and "person" in kind_of(label.group(2).split()[0].strip(".,;"))
        value = " ".join(x for x in (label.group(1) + ":", gloss and label_gloss(label.group(1), who)) if x)
    value = _NUMBER.sub(" ", digits(value))
    kept, after_name = [], False
    for w in re.findall(r"\S+", value):
        bare = re.sub(r"\W", "", w)
        # after "the" + a name, a lower-case noun belongs to the subject ("the Nova project", "the Nova team")
        if bare.lower() in names or (after_name and bare.islower() and bare not in stop_words()):
            after_name = bare.lower() in names and bool(kept) and kept[-1].lower() in ("the", "a", "an")
            continue
        after_name = False
        kept.append(w)
    return re.sub(r"\s+", " ", " ".join(kept)).strip()


def _bm25(query: str, docs: Sequence[str]) -> np.ndarray:
    """BM25 of one query against docs (bm25s, Snowball stems); zeros when nothing matches."""
    n = len(docs)
    if not n:
        return np.zeros(0, np.float32)
    try:
        import bm25s
    except ImportError:  # pragma: no cover - requirements.txt installs it
        qs = set(stem(content(query)))
        return np.array([len(qs & set(stem(content(d)))) for d in docs], np.float32)
    from .words import _stemmer

    norm = [digits(unjoin(d)) or "." for d in docs]
    tok = bm25s.tokenize(norm, stopwords="en", stemmer=_stemmer(), show_progress=False)
    if not tok.vocab:
        return np.zeros(n, np.float32)
    r = bm25s.BM25()
    r.index(tok, show_progress=False)
    q = bm25s.tokenize([digits(unjoin(query)) or "."], stopwords="en", stemmer=_stemmer(), show_progress=False,
                       return_ids=False)[0]
    q = [t for t in q if t in tok.vocab]
    if not q:
        return np.zeros(n, np.float32)
    return np.asarray(r.get_scores(q), np.float32)


def _scaled(x: np.ndarray) -> np.ndarray:
    m = float(x.max()) if x.size else 0.0
    return x / m if m > 0 else np.zeros_like(x)


class Relevance:
    """Scores snippets against a question (see the module doc). After `score`, `lexical`, `attribute` and
    `semantic` hold the parts per snippet and `asks_attribute` whether the question asks more than its names."""

    def __init__(self, embedder=None, sem_weight: float = 0.6, context_factor: float = 0.7,
                 absent_factor: float = 0.4, asked_weight: float = 0.6):
        self.embedder = embedder
        self.sem_weight = sem_weight
        self.asked_weight = asked_weight
        self.context_factor = context_factor
        self.absent_factor = absent_factor
        self.lexical = self.semantic = self.attribute = self.asked = np.zeros(0, np.float32)
        self.asks_attribute = False

    def score(self, question: str, snips: Sequence[Snippet], context: Optional[Sequence[str]] = None) -> np.ndarray:
        n = len(snips)
        if not n:
            self.lexical = self.semantic = self.attribute = self.asked = np.zeros(0, np.float32)
            self.asks_attribute = False
            return np.zeros(0, np.float32)
        texts = [s.text for s in snips]
        names = names_in(question)
        qwords = words(question)
        # the noun right after a name belongs to the subject ("the Nova project"), not to what is asked
        subj = {qwords[i + 1] for i, w in enumerate(qwords[:-1]) if w in names}
        attr_q = " ".join(w for w in content(question) if w not in names and w not in subj and w not in _AUX)
        lexical = _scaled(_bm25(re.sub(r"(?i)\b(?:do|does|did)\b", " ", question), texts))
        # what is asked is matched against the value of a slide line, not the title it carries
        att = _scaled(_bm25(attr_q, [s.value for s in snips])) if attr_q else np.zeros(n, np.float32)
        factor = np.ones(n, np.float32)
        if names:
            ctx = context if context is not None else [""] * n
            for i, (t, c) in enumerate(zip(texts, ctx)):
                have, around = set(words(t)), set(words(c))
                named = sum(w in have for w in names) + self.context_factor * sum(
                    w not in have and w in around for w in names)
                factor[i] = self.absent_factor + (1 - self.absent_factor) * named / len(names)
        qt = qtype(question)
        unit = asked_unit(question) if qt == "number" else ""
        bonus = np.array([type_bonus(qt, t, names, unit) for t in texts], np.float32)
        sem = np.zeros(n, np.float32)
        asked = np.zeros(n, np.float32)
        if self.embedder is not None:
            try:
                sem, asked = meanings(self.embedder, question, snips)
            except Exception as e:  # noqa: BLE001
                log.warning("embedder failed: %s", e)
        self.lexical, self.semantic, self.attribute, self.asked = lexical, sem, att, asked
        self.asks_attribute = bool(attr_q)
        hit = (lexical > 0) | (sem > 0.3)
        return factor * (0.5 * att + 0.5 * lexical + self.sem_weight * sem + self.asked_weight * asked
                         + 0.25 * bonus * hit)


def meanings(embedder, question: str, snips: Sequence[Snippet]) -> tuple[np.ndarray, np.ndarray]:
    """([n] semantic, [n] asked): each line's cosine with the whole question, and what is asked in meaning: the
    question without its names against the line's value (a paraphrase such as "money set aside" shares no word
    with "Budget: 35 million dollars")."""
    names = names_in(question)
    bare = re.sub(r"\s+", " ", " ".join(w for w in re.findall(r"\S+", question)
                                        if re.sub(r"\W", "", w).lower() not in names)).strip()
    n = len(snips)
    v = embedder.encode([question, bare or question] + [s.text for s in snips] + [s.value for s in snips])
    return cosines(embedder, v[2:2 + n], v[0]), cosines(embedder, v[2 + n:], v[1])


def cosines(embedder, vs: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[n] cosines of `vs` [n, d] with `v` [d] on the scale the thresholds were set on (`TextEmbedder.similarity`)."""
    sim = getattr(embedder, "similarity", None)
    return sim(vs, v) if sim is not None else (vs @ v).astype(np.float32)


def evidence_rerank(question: str, memories) -> list[float]:
    """Fused retrieval score per memory (bank Memory or MemoryView): its dense score (cosine) plus the relevance of
    its best evidence sentence to the question. The ask path reranks every profile's candidates so. (Adding the
    MiniLM cosine of each memory's line closest in meaning was tried in session 24 on the seen splits: recall@5
    on scrolled documents fell from 184 to 178-181 of 240 facts, on speech rose from 99 to 101-102 of 136.)"""
    views = [m if isinstance(m, MemoryView) else MemoryView(m.id, m.stream, m.t0, m.t1, float(m.score), None,
                                                              m.evidence) for m in memories]
    snips = snippets(views)
    best: dict[int, float] = {}
    if snips:
        # a name the recognizer misspelt ("here in" for "Heron") counts as the question's name, as in answering
        names = names_in(question)
        ctx = [align_names(c, names) for c in contexts(snips, views)]
        snips = [replace(s, text=align_names(s.text, names)) for s in snips]
        # a name heard as another word ("murder cup" for "Buttercup") too, when no said line holds it
        shown = [s.text for s in snips if s.kind == "slide"]
        forms = heard_forms(names, [s.text for s in snips if s.kind == "said"], shown, capitalized=False)
        if forms:
            ctx = [write_in(c, forms) for c in ctx]
            snips = [replace(s, text=write_in(s.text, forms)) for s in snips]
        lex = Relevance(None).score(question, snips, context=ctx)
        for s, v in zip(snips, lex):
            best[s.memory_id] = max(best.get(s.memory_id, 0.0), float(v))
    return [float(v.score) + best.get(v.memory_id, 0.0) for v in views]
