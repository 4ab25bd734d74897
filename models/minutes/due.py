"""When a task is due: the time part of a clause, by English's vocabulary of times (weekdays, months, dates,
relative times), whatever connective links it to the task ("by", "before", "no later than", "come", a dash, a
colon, or none: "Friday, Nora sends the deck").

    due("Nora: deck by Friday.") -> "Friday";  due("over to Nora, end of week") -> "end of week"
    due("Nora was in Lisbon last Friday") -> None (a time past);  due("every Monday") -> None (a habit)

A time past ("yesterday", "last week", "two days ago") or a recurrence ("every Monday", "each month", "on
Tuesdays") is no time a task is due; `past` tells the first from no time at all.
"""
from __future__ import annotations

import re
from typing import Optional

_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTH = (r"(?:january|february|march|april|june|july|august|september|october|november|december|"
          r"(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?(?=\s+\d))")
# "May" is a modal verb as often as a month: a month only with a day or after a preposition of time
_MAY = r"(?:(?:in|by|of|mid|early|late|until|before|from|since)\s+may\b|may(?=\s+\d))"
_ORDINAL_WORD = (r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
                 r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
                 r"twenty[- ](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth|thirty[- ]first)")
_ORDINAL = r"(?:\d{1,2}(?:st|nd|rd|th)|" + _ORDINAL_WORD + r")"
_PART = r"(?:morning|afternoon|evening|night|noon|midday|lunch(?:time)?|end of (?:the )?day|close of business)"
_UNIT = r"(?:day|week|weekend|fortnight|month|quarter|year|sprint|term|semester|cycle)"
_COUNT = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|a few|a couple of|couple of|few)"
_NEXT = r"(?:next|this|the coming|coming|the following|following)"

_TIMES = [
    r"\b(?:" + _NEXT + r"\s+)?" + _WEEKDAY + r"(?:\s+" + _PART + r")?(?:\s+the\s+" + _ORDINAL + r")?\b(?!s)",
    r"\b(?:" + _MONTH + r"|" + _MAY + r")(?:\s+(?:the\s+)?(?:\d{1,2}(?:st|nd|rd|th)?|" + _ORDINAL_WORD + r"))?\b",
    r"\b" + _ORDINAL + r"\s+of\s+(?:" + _MONTH + r"|may\b)",
    # a day of the month alone, as a clause ends or before a connective ("by the 20th", "target date the 30th")
    r"\bthe\s+" + _ORDINAL + r"(?=\s*(?:$|[,.;:!?)\-–—]|\s(?:if|and|or|at|so|then|latest|at the latest)\b))",
    r"\b(?:tomorrow|tonight|today)(?:\s+" + _PART + r")?\b",
    r"\b(?:this|tomorrow)\s+(?:afternoon|evening|night|lunchtime)\b",
    r"\b(?:the\s+)?(?:end|close|start|beginning|middle)\s+of\s+(?:the\s+|this\s+|next\s+)?(?:" + _UNIT + r"|"
    + _MONTH + r"|may)\b",
    r"\b(?:" + _UNIT + r")[- ]end\b",
    r"\b(?:eod|eow|cob|asap|as soon as (?:possible|we can|you can))\b",
    r"\b" + _NEXT + r"\s+(?:" + _UNIT + r"|time|meeting|session|call|review)\b",
    r"\b(?:within|in|over)\s+(?:the\s+)?(?:next\s+)?" + _COUNT + r"\s+" + _UNIT + r"s?\b",
    r"\b(?:in|over)\s+the\s+(?:next|coming)\s+(?:" + _UNIT + r"|" + _COUNT + r"\s+" + _UNIT + r"s?)\b",
    r"\bfirst thing\b|\bsame day\b|\bright away\b|\bstraight away\b",
    r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)\b",
]
_EVENTS = [
    # an event still to come that a task must precede: "before the workshop", "ahead of the audit", "in time for
    # the review", "before we meet again"
    r"\b(?:before|ahead of|prior to|in time for|in advance of)\s+(?:the|our|their|your|next|this)\s+[a-z]+",
    r"\bbefore\s+(?:we|they|you|it|the\s+\w+)\s+[a-z]+",
]
_TIME = re.compile("|".join(f"(?:{t})" for t in _TIMES), re.I)
_EVENT = re.compile("|".join(f"(?:{t})" for t in _EVENTS), re.I)
# a time past: "yesterday", "last week", "last Friday", "two days ago", "earlier today", "this morning" (said in a
# meeting, a morning already spent)
_PAST = re.compile(r"\b(?:yesterday|last\s+(?:" + _WEEKDAY + r"|" + _UNIT + r"|" + _MONTH + r"|night|time)|"
                   r"\w+\s+(?:" + _UNIT + r"|hour|minute)s?\s+ago|earlier (?:today|this \w+)|this morning)\b", re.I)
# a recurrence: "every Monday", "each month", "on Tuesdays"
_HABIT = re.compile(r"\b(?:every|each)\s+(?:other\s+)?(?:" + _WEEKDAY + r"|" + _UNIT + r"|" + _PART + r")|\b"
                    + _WEEKDAY + r"s\b", re.I)


def due(clause: str) -> Optional[str]:
    """The time a task in the clause is due, or None (no time, or only one past or recurring)."""
    if _PAST.search(clause) or _HABIT.search(clause):
        return None
    m = _TIME.search(clause) or _EVENT.search(clause)
    return m.group(0) if m else None


def past(clause: str) -> bool:
    """Whether the clause says a time already past ("yesterday", "last March", "two weeks ago")."""
    return bool(_PAST.search(clause))
