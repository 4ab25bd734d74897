"""Decisions, action items and figures from one sentence or slide line, by the usual forms of English meeting
language (not by any one meeting's script):

- decision: "we decided / agreed / chose / opted / resolved / settled on / approved ...", "decision: ...",
  "it was decided / agreed ...";
- action item: "<Name> will / 'll / is going to / needs to / has to / should / must / agreed to / volunteered to /
  offered to / is to <task>", "<Name> to <task>" (minutes style), "<Name>, can / could / would you <task>",
  "action item(s): ...", "to-do / follow-up: ...", "<task> (owner: <Name>)", "assigned to <Name>";
- figure: any sentence with a number (number words count), an amount, a percentage or a date.
A name is a capitalized word that is not a stop word, a month or a day.
"""
from __future__ import annotations

import re
from typing import Optional

from models.text.relevance import DAYS, MONTHS
from models.text.words import digits, sentences, stop_words

from .data import ActionItem, Line

_MODAL = (r"will|'ll|is going to|are going to|needs to|need to|has to|have to|should|shall|must|agreed to|"
          r"volunteered to|offered to|is to|promised to|takes care of|will take care of|is responsible for|owns")
_NAME = r"(?P<owner>[A-Z][a-z]+)"
_ACTION_RES = [
    re.compile(r"\baction items?\b[\s:.,;-]*(?:for\s+)?" + _NAME + r"?\b[\s:,]*(?:(?i:" + _MODAL + r"|to)\s+)?"
               r"(?P<task>[^.!?]+)", re.I),
    re.compile(_NAME + r"\s+(?i:" + _MODAL + r")\s+(?P<task>[^.!?]+)"),
    re.compile(r"(?:^|[.!?;]\s+|,\s*|:\s*)" + _NAME + r"\s+to\s+(?P<task>[a-z][^.!?]+)"),
    re.compile(r"(?:^|[.!?]\s+)" + _NAME + r",\s+(?i:can|could|would|will)\s+you\s+(?i:please\s+)?(?P<task>[^.!?]+)"),
    re.compile(r"(?P<task>[^.!?:]+?)\s*[(\[,;—–-]+\s*(?i:owner|assigned to|assignee|responsible)\s*:?\s*" + _NAME),
    re.compile(r"\b(?:todo|to-do|follow[- ]up)\b[\s:.,;-]+(?P<task>[^.!?]+)", re.I),
]
_DECISION_RE = re.compile(
    r"\b(?:we|the team|they|everyone|the board|the committee|the group)\s+(?:have\s+|has\s+|all\s+)?"
    r"(?:decided|agreed|chose|opted|resolved|settled on|approved|signed off|will go with|are going with)\b"
    r"|\bdecision\b\s*[:.,-]|\b(?:it was|it's|it is|it has been)\s+(?:decided|agreed|approved)\b"
    r"|\bwe(?:'ll| will) go with\b|\bthe decision (?:is|was) to\b", re.I)
_FIGURE_RE = re.compile(
    r"\$\s?\d|\d\s*%|\b\d[\d,.]*\b|\b(?:" + "|".join(MONTHS) + r")\s+\d{1,2}\b|\bq[1-4]\b", re.I)


def is_name(word: Optional[str]) -> bool:
    if not word:
        return False
    low = word.lower()
    return word[:1].isupper() and low not in stop_words() and low not in MONTHS and low not in DAYS and len(low) > 1


# right before an owner: an article or possessive, or another capitalized word ("The Comet Project will hire ...")
# make the capitalized word part of a thing's name, not a person
_NOT_PERSON_BEFORE = re.compile(r"(?:\b(?i:the|a|an|this|that|these|our|their|its|his|her|my|your)|\b[A-Z][a-z]+)\s+$")


def _person_slot(sentence: str, m: re.Match) -> bool:
    return not _NOT_PERSON_BEFORE.search(sentence[: m.start("owner")])


def extract_actions(text: str, t0: float, t1: float) -> list[ActionItem]:
    out = []
    for s in sentences(text):
        for i, rx in enumerate(_ACTION_RES):
            m = rx.search(s)
            if not m:
                continue
            owner = m.groupdict().get("owner")
            if owner:
                owner = owner.strip().title()
                if not is_name(owner) or (i and not _person_slot(s, m)):  # i = 0: right after 'action item'
                    if i == 0:
                        owner = None  # "Action item: we need to ..." -> unassigned
                    else:
                        continue
            task = re.sub(r"\s+", " ", m.group("task")).strip(" ,:;-—–")
            task = re.sub(r"^(?:" + _MODAL + r"|to)\s+", "", task, flags=re.I)
            if len(task.split()) < 2:
                continue
            out.append(ActionItem(owner, task, t0, t1, s))
            break
    return out


def extract_decisions(text: str, t0: float, t1: float) -> list[Line]:
    return [Line(s, t0, t1) for s in sentences(text) if _DECISION_RE.search(s)]


def extract_numbers(text: str, t0: float, t1: float) -> list[Line]:
    out = []
    for s in sentences(text):
        hits = [m.group(0).strip() for m in _FIGURE_RE.finditer(digits(s))]
        hits = [h for h in hits if not re.fullmatch(r"[01]", h)]  # "1" alone is rarely a fact
        if hits:
            out.append(Line(s, t0, t1))
    return out
