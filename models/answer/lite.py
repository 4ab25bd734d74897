"""The lite answerer: ranks evidence sentences of the retrieved memories and answers with a small LLM whose every
sentence is checked against the evidence, or by quoting the best sentence with its time stamp.

LiteAnswerer.answer(question, memories, history) ranks the snippets (`models.answer.ranker.LineRanker`: relevance,
the meaning model, the line model; a name the recognizer misspelt counts), says so when the evidence is weak or the
best line does not answer the question (`LineRanker.weak_reason`), else gives the small LLM the best notes in time
order with [hh:mm:ss–hh:mm:ss] stamps and streams its answer sentence by sentence, each checked
(`models.answer.check.check_llm_sentence`); when the LLM misses the fact or states anything the notes do not, it
is stopped and the best evidence sentence is quoted with its stamp instead. Small LLMs are unreliable, so the
extractive answer is always at hand (mode="extractive", or llm=None). An answer the gate finds unlikely to answer
(`LineRanker.unsure`) starts by saying so (`UNSURE`).
"""
from __future__ import annotations

import logging
import re
from typing import Iterator, Optional, Sequence

from models.base import Consumes, MemoryView, Usage
from models.text.gazetteer import heard_places
from models.text.relevance import Snippet, qtype
from models.text.timephrase import fmt_span

from .check import check_llm_sentence
from .llm import default_llm
from .overview import answer_text
from .ranker import AnswerTrace, LineRanker

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You answer questions about a recorded meeting or video using only the notes below. Each note has a "
    "[start–end] time stamp; 'said' is speech, 'slide' is text on screen, 'seen' is what the picture shows. "
    "Answer in one short sentence that states the fact, and name the time stamp. If the notes do not contain "
    "the answer, say that it is not in the recording.")

NOT_FOUND = "I could not find this in the recording."
# said before an answer the gate is unsure of (`LineRanker.unsure`)
UNSURE = "I am not sure this answers the question."

_SENT_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def record_answer(best: Snippet, question: str = "") -> str:
    where = {"slide": "On screen", "said": "Said", "seen": "Seen"}.get(best.kind, "In the record")
    return f"{where} at {fmt_span(best.t0, best.t1)}: “{best.text}”" + place_note(question, best)


def place_note(question: str, best: Snippet) -> str:
    """For a question asking where, of a transcript line that names no place: which place the words in its
    place's slot sound like (`gazetteer.heard_places`: a recognizer writes a city it does not know as the words it
    knows, "stock home" for Stockholm), as a note the user can weigh; "" otherwise."""
    if best.kind != "said" or qtype(question) != "place":
        return ""
    found = heard_places(best.text)
    return "".join(f" (“{heard}” sounds like {place.title()})" for heard, place in found[:1])


class _Rejected(Exception):
    """An LLM sentence failed its check: stop generating."""


class LiteAnswerer(LineRanker):
    """Answers from text evidence with a small LLM (or none).

    LiteAnswerer(llm="auto" | None | TextLLM, embedder=None | TextEmbedder, mode="hybrid"|"llm"|"extractive",
                 max_new_tokens=80, min_relevance=None, max_notes=8, note_ratio=0.5, min_semantic=0.75)
    The LLM sees at most max_notes evidence sentences, those scoring ≥ note_ratio × the best one's score.
    "auto" (the default) loads the bundled LLM (`default_llm()`) on the first answer; None answers extractively.
    answer(question, memories, history=()) -> Iterator[str]; `last` holds an AnswerTrace afterwards.

    hybrid: the LLM's answer is streamed sentence by sentence, each sentence checked against the evidence; the
    first one that fails stops the LLM, and when no accepted sentence carries the fact the answer is the best
    evidence sentence, quoted and stamped. llm: the LLM's text unchecked. extractive: the quote.
    """

    # the ask path gives it the text evidence and evidence["screen"] (the slide title on screen at each clip); no carriers
    consumes = Consumes(carriers=False, evidence=True, screen=True)

    def __init__(self, llm="auto", embedder=None, mode: str = "hybrid", max_new_tokens: int = 80,
                 max_notes: int = 8, note_ratio: float = 0.5, **ranking):
        """`ranking`: LineRanker's thresholds and models (min_relevance, min_meaning, min_sure, meaning, ...)."""
        super().__init__(embedder, **ranking)
        self._llm = llm
        self.mode = mode if llm is not None else "extractive"
        self.max_new_tokens = max_new_tokens
        self.max_notes = max_notes
        self.note_ratio = note_ratio

    @property
    def llm(self):
        if isinstance(self._llm, str) and self._llm == "auto":
            self._llm = default_llm()
        return self._llm

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
        whole = answer_text(question, memories, self.embedder)  # the last slide, the decisions, a recap
        if whole:
            yield whole
            return
        ranked = self.rank(question, memories)
        tr.ranked = ranked
        best = ranked[0] if ranked else None
        tr.best = best
        if self.weak(question, ranked):
            tr.weak = True
            msg = NOT_FOUND
            if best is not None:
                msg += f" The closest moment is {fmt_span(best.t0, best.t1)}: “{best.text}”"
            else:
                msg += " There is no speech or on-screen text in the retrieved moments."
            yield msg
            return
        if self.unsure():
            tr.hedged = True
            yield UNSURE + " "
        llm = self.llm if self.mode != "extractive" else None
        if llm is None:
            yield record_answer(best, question)
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
            yield record_answer(best, question)
        elif not re.search(r"\[\d\d:\d\d:\d\d", " ".join(said)):
            yield f" {fmt_span(best.t0, best.t1)}"
        if said:
            yield place_note(question, best)
