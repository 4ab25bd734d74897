"""Is an LLM's sentence backed by the evidence it was given?

Every number, date and name the sentence states must be in the notes (or the question); most of its content words
must be too (stems); the first sentence of an answer must state the best evidence's fact, and the kind of thing
the question asks for (a number, a date, a name) must come from that best evidence, not from a neighbour.
"""
from __future__ import annotations

import re

from models.text.relevance import DAYS, MONTHS, Snippet, qtype
from models.text.words import content, digits, stem, stop_words, words


def support(sentence: str, source: str) -> float:
    """Share of the sentence's content words (Snowball stems, number words as digits) found in source."""
    bw = set(stem(content(digits(sentence))))
    if not bw:
        return 0.0
    return len(bw & set(stem(content(digits(source))))) / len(bw)


# words an answer may use to report evidence without stating anything new
_REPORTING = set(stem(["according", "note", "notes", "mention", "mentioned", "state", "stated", "discuss", "discussed",
                       "said", "say", "says", "meeting", "speaker", "moment", "recording", "video", "screen", "slide",
                       "shown", "answer", "asked", "question", "correct", "person", "people", "responsible"]))


def invented(sentence: str, source: str) -> list[str]:
    """The sentence's content words (stems) that the source does not hold, reporting words aside: a small model
    padding a faithful answer with "during a recent hackathon event" invents three."""
    have = set(stem(content(digits(source))))
    return [w for w in dict.fromkeys(stem(content(digits(sentence)))) if w not in have and w not in _REPORTING]


def key_terms(question: str, sentence: str) -> list[str]:
    """Tokens of a sentence that would answer the question: numbers, months/days and capitalized words that are
    not already in the question."""
    qw = set(words(digits(question)))
    sw = stop_words()
    terms = []
    for tok in re.findall(r"\$?\d[\d,.]*%?|[A-Za-z]+", digits(sentence)):
        low = tok.lower().strip("$%").replace(",", "").rstrip(".")
        if not low or low in qw or low in sw:
            continue
        if re.match(r"\d", low) or low in MONTHS or low in DAYS or tok[:1].isupper():
            terms.append(low)
    return terms


def _vocab(text: str) -> set[str]:
    return set(w.replace(",", "") for w in words(digits(text).replace("$", " ")))


def answer_has_fact(answer: str, question: str, sentence: str) -> bool:
    """True if the answer contains at least one key term of the evidence sentence (or the sentence has none)."""
    terms = key_terms(question, sentence)
    if not terms:
        return True
    aw = _vocab(answer)
    return any(t in aw for t in terms)


REFUSAL_RE = re.compile(r"\b(?:not (?:in|mentioned|stated|provided|given|found|available|specified)|no (?:information|"
                        r"mention|evidence|notes?)|does(?:n't| not) (?:say|mention|contain|state)|(?:i )?(?:do not|"
                        r"don't|cannot|can't|could not|couldn't) (?:know|find|tell|answer)|unknown|unclear)\b", re.I)


def _is_typed(term: str, qt: str) -> bool:
    """Is this key term the kind of thing the question asks for?"""
    digit = bool(re.match(r"\d", term))
    if qt == "number":
        return digit
    if qt == "date":
        return digit or term in MONTHS or term in DAYS
    if qt in ("person", "place", "name"):
        return not digit and term not in MONTHS and term not in DAYS
    return True


def unsupported_terms(sentence: str, source: str, question: str = "") -> list[str]:
    """Numbers, dates and names the sentence states that neither the source nor the question holds."""
    allowed = _vocab(source + " " + question)
    return [t for t in key_terms(question, sentence) if t not in allowed]


def check_llm_sentence(sentence: str, question: str, best: Snippet, notes_text: str, first: bool) -> str:
    """'' when an LLM sentence is backed by the evidence, else why not."""
    if first and REFUSAL_RE.search(sentence):
        return "the LLM said it does not know although the evidence answers it"
    if support(sentence, notes_text + " " + question) < 0.6:
        return "the LLM's sentence is mostly words that no evidence says"
    extra = invented(sentence, notes_text + " " + question)
    if len(extra) > 1:
        return f"the LLM added {', '.join(extra[:3])!r}, which no evidence says"
    loose = unsupported_terms(sentence, notes_text, question)
    if loose:
        return f"the LLM stated {', '.join(loose[:3])!r}, which no evidence says"
    ws = words(sentence)
    grams = [" ".join(ws[i:i + 4]) for i in range(len(ws) - 3)]
    if len(grams) != len(set(grams)):
        return "the LLM repeats itself"
    if first:
        # the fact is in the line's value ("Titan Infrastructure — Team lead: James" -> "James"), not its title
        core = best.value
        core = core.split(":", 1)[1] if best.kind == "slide" and ":" in core else core
        if not answer_has_fact(sentence, question, core if key_terms(question, core) else best.text):
            return "the LLM's answer misses the fact in the best evidence"
        qt = qtype(question)
        bw = _vocab(best.text)
        off = [t for t in key_terms(question, sentence) if _is_typed(t, qt) and t not in bw]
        if off:
            return f"the LLM's answer names {', '.join(off[:3])!r}, which the best evidence does not"
    return ""
