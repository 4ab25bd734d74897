"""Minutes from memories: sections, bullets you can trace, decisions, action items, figures.

summarize(memories, llm, progress_cb) -> Minutes
- Sections (`models.minutes.segment`) start at a slide change (a new title: the first OCR line of a memory), at a
  heading of a document shown under a window title, at a shift of topic in speech (embedding change points), and
  when a section would pass max_len_s.
- Bullets: the section's slide lines, then its most informative sentences (rare words, figures and names score;
  "that sounds good" does not), each stamped with the time of the evidence it quotes. LLM bullets (optional) are
  kept only when one or two adjacent source sentences support every content word, number and name of theirs
  (`trace`); they are stamped with those sentences' time. A sentence the evidence does not support is dropped.
- Decisions, action items and figures come from `models.minutes.extract`.
- The overview is sentences: which topics the meeting went through, in order, and what it decided; an LLM overview
  is added only when each of its sentences is supported by the section digests.
Map-reduce: each section is summarized on its own (split into chunks of max_section_tokens), then
`reduce_overview` condenses the section digests in as many levels as needed for every prompt to fit.
"""
from __future__ import annotations

import logging
import math
import re
from collections import Counter
from typing import Callable, Optional, Sequence


from models.answer.check import invented, support, unsupported_terms
from models.base import MemoryView
from models.text.timephrase import fmt_span
from models.text.words import content, digits, sentences, stem, stop_words, words

from . import acts, owners
from .data import Line, Minutes, Section
from .extract import claimed_tasks, extract_actions, extract_decisions, extract_numbers, is_name, labelled_runs
from .segment import _same_title, segment_sections

log = logging.getLogger(__name__)


BULLET_PROMPT = ("Summarize this part of a meeting in at most 3 short bullet points. Keep names, numbers and "
                 "dates exactly as written. Use only facts from the text. Start each bullet with '- '.")
OVERVIEW_PROMPT = "Write a two-sentence overview of this meeting. Use only the facts given."
GROUP_PROMPT = ("Summarize these notes from one part of a meeting in at most two sentences. Keep names, numbers and "
                "dates exactly as written. Use only the facts given.")


def trace(text: str, units: Sequence[tuple[str, float, float]], min_support: float = 0.8, whole: bool = False):
    """The span of the evidence that supports text: one unit, or two adjacent ones, holding ≥ min_support of its
    content words and every number and name it states (`whole`: every content word but words that only report,
    "discussed", "noted": `check.invented`). None when no evidence supports it."""
    best = None
    for i in range(len(units)):
        for j in (i, i + 1):
            if j >= len(units):
                continue
            src = units[i][0] if i == j else f"{units[i][0]} {units[j][0]}"
            s = support(text, src)
            if s >= min_support and not unsupported_terms(text, src) and not (whole and invented(text, src)) and \
                    (best is None or s > best[0] + 1e-9):
                best = (s, units[i][1], max(units[i][2], units[j][2]))
    return None if best is None else (best[1], best[2])


def _timed_sentences(items) -> list[tuple[str, float, float]]:
    """Transcript sentences of the clips in time order, each once: a sentence that spans several clips (the ASR
    attaches it to every clip it overlaps) keeps the interval from its first to its last clip."""
    out: list[list] = []
    last: dict[str, int] = {}
    for it in items:
        for s in sentences(it.asr):
            k = " ".join(words(s))
            j = last.get(k)
            if j is not None and it.t0 - out[j][2] < 10:
                out[j][2] = max(out[j][2], it.t1)
                continue
            last[k] = len(out)
            out.append([s, it.t0, it.t1])
    return [(s, a, b) for s, a, b in out]


def _slide_lines(items) -> list[tuple[str, float, float]]:
    """Slide lines of the clips, each once (up to OCR typos), stamped from the clip where they first appeared."""
    out: list[tuple[str, float, float]] = []
    for it in items:
        for ln in it.ocr:
            ln = ln.strip()
            if ln and not any(_same_title(ln, x[0]) for x in out):
                out.append((ln, it.t0, it.t1))
    return out


def _names(secs) -> list[str]:
    """Names in the meeting, the surest spelling first: those read on screen, then those said, most often first."""
    shown, said = Counter(), Counter()
    for _, items in secs:
        for it in items:
            for counter, text in ((shown, " ".join(it.ocr)), (said, it.asr)):
                counter.update(w for w in re.findall(r"[A-Za-z][a-z]+", text) if is_name(w))
    return list(dict.fromkeys([w for w, _ in shown.most_common()] + [w for w, _ in said.most_common()]))


def _skeleton(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(words(line)))


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


class _Informative:
    """How much a sentence says, relative to the whole meeting: the IDF of its content stems (words said all the
    time weigh little), plus figures and names. Filler ("I agree with that plan") scores low in any meeting."""

    def __init__(self, texts: Sequence[str]):
        self.df = Counter()
        for t in texts:
            self.df.update(set(stem(content(t))))
        self.n = max(1, len(texts))

    def __call__(self, s: str) -> float:
        st = stem(content(s))
        if len(st) < 3:
            return 0.0
        idf = sum(math.log(1 + self.n / (1 + self.df[w])) for w in set(st))
        figures = len(re.findall(r"\d+", digits(s)))
        names = sum(is_name(w) for w in re.findall(r"(?<!^)\b[A-Z][a-z]+", s))
        return idf / math.sqrt(len(st)) + 0.5 * figures + 0.5 * names


def _runs(sentence: str, max_words: int = 4) -> list[list[str]]:
    """Runs of consecutive content words as spoken (their spelling kept), cut at stop words, figures and
    punctuation, each at most max_words long (a longer run gives its windows): the candidate key phrases of RAKE."""
    sw = stop_words()
    out: list[list[str]] = []
    run: list[str] = []
    for tok in re.findall(r"[A-Za-z][A-Za-z'-]*|\d[\w.,]*|\S", sentence):
        w = re.sub(r"'s$", "", tok).lower().strip("'-")
        if tok[0].isalpha() and len(w) > 1 and w not in sw:
            run.append(re.sub(r"'s?$", "", tok))
            continue
        if run:
            out.append(run)
        run = []
    if run:
        out.append(run)
    return [r[i:i + max_words] for r in out for i in range(max(1, len(r) - max_words + 1))]


def _heading(timed, info: _Informative, df: Counter, n_secs: int) -> str:
    """A title for a section without slides: the key phrase of its speech (RAKE-like: the run of content words
    whose words are most distinctive here, frequent in this section and rare in the others), as it was said."""
    tf: Counter = Counter(stem([w])[0] for s, _, _ in timed for w in content(s) if not w[:1].isdigit())
    if not tf:
        return "Discussion"
    score = {k: c * math.log(1 + n_secs / (1 + df.get(k, 0))) for k, c in tf.items()}
    best, best_score = None, 0.0
    for s, _, _ in timed:
        for run in _runs(s):
            sc = sum(score.get(stem([w.lower()])[0], 0.0) for w in run)
            if sc > best_score:
                best, best_score = run, sc
    if not best:
        return "Discussion"
    title = " ".join(best)
    return title[:1].upper() + title[1:]


def _overview(mn: Minutes) -> list[Line]:
    """Sentences, not a list of titles: the topics in order, then what was decided and assigned."""
    secs = mn.sections
    if not secs:
        return []
    names = [s.title for s in secs]
    if len(names) == 1:
        first = f"The meeting covered {names[0]}."
    elif len(names) == 2:
        first = f"The meeting covered {names[0]}, then {names[1]}."
    else:
        first = (f"The meeting opened with {names[0]}, went on to {', '.join(names[1:-1])}, and closed with "
                 f"{names[-1]}.")
    out = [Line(first, mn.t0, mn.t1)]
    nd, na = len(mn.decisions), len(mn.action_items)
    if nd or na:
        parts = []
        if nd:
            parts.append(f"{nd} decision{'s' if nd != 1 else ''}")
        if na:
            owners = sorted({a.owner for a in mn.action_items if a.owner})
            who = f" (owners: {', '.join(owners)})" if owners else ""
            parts.append(f"{na} action item{'s' if na != 1 else ''}{who}")
        out.append(Line(f"It recorded {' and '.join(parts)}.", mn.t0, mn.t1))
    return out


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
    all_timed = [_timed_sentences(items) for _, items in secs]
    said = [s for tl in all_timed for s, _, _ in tl]
    info = _Informative(said or ["."])
    sec_df = Counter()
    for tl in all_timed:
        sec_df.update({stem([w])[0] for s, _, _ in tl for w in content(s)})
    names = _names(secs)
    texts = said + [ln for _, items in secs for it in items for ln in it.ocr]  # every sentence and screen line
    things = owners.things_in(texts)
    if embedder is not None:
        acts.prepare(texts, embedder)
    rejected = 0
    seen_actions: set[tuple] = set()
    seen_dec: set[str] = set()
    seen_num: set[str] = set()
    for si, (stitle, items) in enumerate(secs):
        t0, t1 = items[0].t0, max(it.t1 for it in items)
        if progress_cb:
            progress_cb(si, total, f"section {si + 1}/{len(secs)} {fmt_span(t0, t1)}")
        slide_timed = [x for x in _slide_lines(items) if _skeleton(x[0]) not in boiler]
        slide = [x[0] for x in slide_timed]
        body_slide = [x for x in slide_timed if not _same_title(x[0], stitle)]
        timed = all_timed[si]
        found = [ai for s, a, b in timed + body_slide
                 for ai in extract_actions(s, a, b, embedder=embedder, names=names, things=things)]
        for ai in found + claimed_tasks(timed, names, things):
            k = (ai.owner, " ".join(words(ai.task))[:40])
            if k not in seen_actions:
                seen_actions.add(k)
                mn.action_items.append(ai)
        for s, a, b in labelled_runs(timed):
            for d in extract_decisions(s, a, b, embedder=embedder):
                k = " ".join(words(d.text))
                if k not in seen_dec:
                    seen_dec.add(k)
                    mn.decisions.append(d)
        for s, a, b in timed + body_slide:
            for n in extract_numbers(s, a, b):
                k = " ".join(words(n.text))
                if k not in seen_num:
                    seen_num.add(k)
                    mn.numbers.append(n)
        heading = stitle or (_heading(timed, info, sec_df, len(secs)) if timed else f"Part {si + 1}")
        sec = Section(heading, t0, t1, slide_text=slide)
        units = body_slide + timed  # what a bullet may quote, with its time
        source_text = "\n".join([f"Slide: {ln}" for ln in slide] + [s for s, _, _ in timed])
        bullets: list[Line] = []
        if llm is not None and use_llm_bullets and units:
            for chunk in _chunks(source_text, llm, max_section_tokens):
                try:
                    out = llm.generate([{"role": "system", "content": BULLET_PROMPT},
                                        {"role": "user", "content": chunk}], max_new_tokens=120)
                except Exception as e:  # noqa: BLE001
                    log.warning("LLM failed in summarize: %s", e)
                    out = ""
                for b in _parse_bullets(out):
                    # an LLM bullet is shown only when the sentences at its time stamp hold every word it states
                    span = trace(b, units, whole=True) if len(content(b)) >= 4 else None
                    if span is not None and not any(support(b, x.text) > 0.9 for x in bullets):
                        bullets.append(Line(b, *span))
                    else:
                        rejected += 1
        # extractive bullets (reliable): slide lines, then the most informative sentences, each with its own time
        base = [Line(ln, a, b) for ln, a, b in body_slide[:6]]
        ranked = sorted(timed, key=lambda x: -info(x[0]))
        base += [Line(s, a, b) for s, a, b in sorted([x for x in ranked[:3] if info(x[0]) > 0], key=lambda x: x[1])]
        # LLM bullets (fluency) only when they add a supported sentence the extractive ones lack
        extra = [b for b in bullets if not any(support(b.text, x.text) >= 0.8 for x in base)][:2]
        sec.bullets = base + extra
        mn.sections.append(sec)
    if rejected:
        mn.notes.append(f"{rejected} LLM bullet(s) dropped as unsupported by the transcript or slides")
    mn.overview = _overview(mn)
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
            mn.overview.append(Line(out, mn.t0, mn.t1))
        else:
            mn.notes.append("the LLM's overview was dropped: the section digests do not support it")
    if progress_cb:
        progress_cb(total, total, "done")
    return mn


def reduce_overview(llm, digests: Sequence[str], max_tokens: int = 1200,
                    step: Optional[Callable[..., None]] = None) -> str:
    """The reduce half of map-reduce: section digests -> a short overview, in as many levels as it takes for every
    prompt to fit `max_tokens` (so a 2-hour meeting never overflows a small model's context). Each level packs
    lines into chunks that fit, condenses each chunk (LLM, kept only when supported by the chunk; else its
    headings), and repeats until one prompt holds everything. Returns "" unless every sentence of the LLM's
    overview is supported by the digests (its words and every number and name it states)."""
    count = getattr(llm, "count_tokens", lambda t: len(t) // 4)
    line_cap = max(16, max_tokens // 4)

    def cap(line: str) -> str:  # one line never takes more than a quarter of a prompt
        if count(line) <= line_cap:
            return line
        return line[: max(40, int(len(line) * line_cap / max(1, count(line))))].rstrip() + "…"

    level = [cap(d) for d in digests]
    full = "\n".join(digests)
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
            if not text or support(text, g) < 0.5 or unsupported_terms(text, g):
                heads = [_head(ln) for ln in g.splitlines() if ln.strip()]
                text = "; ".join(heads)  # fall back to the chunk's headings (always shorter)
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
    src = full + "\n" + prompt
    sents = sentences(out)
    if not sents or any(support(s, src) < 0.8 or unsupported_terms(s, src) for s in sents):
        return ""
    return out


def _head(digest: str) -> str:
    """'[00:01:00–00:02:00] Falcon Budget: a; b' -> 'Falcon Budget' (a digest line's title, without its stamp)."""
    return re.sub(r"^\s*\[[^\]]*\]\s*", "", digest).split(":", 1)[0].strip()


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
