"""Questions that a stretch of the recording answers as a whole, not one line of it. One dispatch, used by both
sides of the ask path:

    kind_of(question, windowed)          -> ("deck", "last") / ("outcome", "decisions") / ("recap", "said") / None
    moments(kind, listed, k, embedder)   -> the memories of the stretch that answer it (retrieval, models/ask.py)
    answer_text(question, views, embedder) -> the offline answer, or "" when none of these applies (the lite
                                            answerer then extracts one line as for any question)

- the slide sequence: "What was the last slide?", "How many slides were shown?" (deck.py)
- the meeting's outcomes: "What decisions were made?", "What are the action items?" (outcomes.py)
- an open question about a named window: "What happened in the last minute?" (recap.py)
- what was said about one subject: "What did they say about X?", "When was X discussed?" (recap.py; retrieval is
  the normal one, with more memories)
"""
from __future__ import annotations

from typing import Optional, Sequence

from .deck import deck_moments, deck_question, deck_text
from .outcomes import outcome_lines, outcome_moments, outcome_question, outcome_text
from .recap import pick_moments, recap_kind, recap_text, recap_topic


def kind_of(question: str, windowed: bool) -> Optional[tuple[str, str]]:
    """What whole the question asks for; windowed: the question or the caller named a time window (an open
    question without one is answered from the most relevant memories, as usual)."""
    if not question:
        return None
    deck = deck_question(question)
    if deck:
        return "deck", deck
    outcome = outcome_question(question)
    if outcome:
        return "outcome", outcome
    kind = recap_kind(question) if windowed else None
    return ("recap", kind) if kind else None


def pool(question: str, k: int) -> int:
    """How many memories the usual retrieval should return: every moment that names the subject of "what did
    they say about X?" (up to max(k, 12)), not only the best k."""
    return max(k, 12) if question and recap_topic(question) else k


def moments(kind: tuple[str, str], listed: Sequence, k: int, embedder=None) -> list:
    """The memories (of `listed`, every memory of the asked stretch) that answer a kind_of question."""
    what, sub = kind
    if what == "deck":
        return deck_moments(listed)
    if what == "outcome":
        return outcome_moments(listed, outcome_lines(listed, embedder, sub)) or pick_moments(listed, k, "said")
    return pick_moments(listed, k, sub)


def answer_text(question: str, views: Sequence, embedder=None) -> str:
    """The offline answer to a question about a whole, from the memories retrieval chose; "" for other questions."""
    deck = deck_question(question)
    if deck:
        return deck_text(views, deck)
    outcome = outcome_question(question)
    if outcome:
        return outcome_text(outcome_lines(views, embedder, outcome), outcome)
    topic = recap_topic(question)
    text = recap_text(views, *topic) if topic else ""  # "" when nothing names the subject: a refusal follows
    kind = recap_kind(question)
    return text or (recap_text(views, kind) if kind else "")
