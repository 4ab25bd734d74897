"""An action item by the structure every wording of one shares: a person (the owner), a task (what is to be done)
and, usually, a time it is due, whatever words link them.

    "Friday, Nora sends the deck."            -> ("Nora", ...)   a person, a task, a time
    "Nora: deck by Friday."                   -> ("Nora", ...)   a label, a thing to deliver, a time
    "Bring the quotes by Thursday, Lena."     -> ("Lena", ...)   an order, the person addressed
    "Nora was in Lisbon on Friday."           -> None            a time, a person, but a fact past
    "Rosa will be out until next Tuesday."    -> None            a state, no task

A person is a first name (`models.text.gazetteer`: gender-guesser's first names), in a place a person fills: not
after an article ("the Florence office"), not part of a longer proper name, not the owner of a thing ("Simon's
flight"), not a name the meeting uses for a thing (`owners.things_in`), not the speaker introducing themselves. After a
preposition ("over to Nora", "that's with Ivan", "action for Lucy") the name must end its phrase: the task is
handed to that person, unlike "the meeting with Olivia got moved". The time is `due.due`'s. What makes it no
task: a verb in the past with no promise after it ("Hassan joined", "Grace presented"; but "Leo said he'd ...",
"Zara offered to ..." promise), a state of being somewhere or free ("will be out", "is on holiday"), a habit
("usually", "always"), a report of what someone said ("Karen says the audit is ..."), a question that asks
about the person rather than asks them ("Is Gabriel joining ...?", "Did Omar send ...?").
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from models.text.gazetteer import kind_of
from models.text.relevance import DAYS, MONTHS
from models.text.words import stop_words

from .due import due
from .owners import _CAUSATIVE, _CONTROL, _LABEL_WORD, _TOK, _NOT_A_REQUEST, QUESTION, asks

_ARTICLE = re.compile(r"\b(?i:the|a|an|this|that|these|those|our|their|its|his|her|my|your)\s+$")
_PREP = re.compile(r"\b(?i:to|for|with|on|at|from|by|about|of|in|into|onto|over|under|than|like)\s+$")
# a name that ends its phrase: a clause boundary, or the task's own start ("over to Nora for the deck", "action
# for Lucy - call ...", "leave it with Ivan to ...")
_PHRASE_END = re.compile(r"\s*(?:$|[,.;:!?\-–—]|\s(?i:for|to)\s+(?:the|a|an|[a-z]+)\b|\s(?i:he|she|they)\b)")
# 's after a name: "is" or "has" before a verb, a place or a task ("Nora's on the deck", "Ben's going to"), or a
# task noun ("Mateo's job"); before any other noun it owns a thing, which is the subject ("Simon's flight lands")
_IS_AFTER = re.compile(r"['’]s\s+(?i:on|in charge|going|gonna|got|been|taking|doing|handling|looking|running|"
                       r"writing|sending|covering|leading|owning|responsible|due|up|to|the one|[a-z]+ing)\b")
_TASK_NOUN = re.compile(r"['’]s\s+(?i:action|task|job|homework|to-?do|assignment|responsibility|item|turn|"
                        r"deliverable|follow-?up)s?\b")
_SELF = re.compile(r"\b(?i:i'm|i am|name is|name's|this is|it's|call me)\s+$")
# verbs in the past (regular -ed, or the common irregular ones), said of someone: a report, not a task
_IRREGULAR = (r"was|were|did|had|went|came|sent|took|made|gave|met|told|wrote|saw|found|left|brought|bought|"
              r"thought|spoke|began|ran|paid|kept|lost|won|held|sold|built|spent|caught|taught|fell|flew|drove|"
              r"broke|chose|forgot|knew|grew|got|led|heard|said|hit|shut|quit|felt|meant|stood|understood|wore|"
              r"became|ate|drank|sang|swam|threw|woke")
_PAST_VERB = re.compile(r"\b(?:(?:" + _IRREGULAR + r")|(?!(?:need|feed|speed|proceed|succeed|exceed|seed|bed|red|"
                        r"shed|wed|led|fled)\b)[a-z]{2,}ed)\b|\b(?:has|have|'ve|’ve)\s+(?:already\s+|just\s+)?"
                        r"(?:been|[a-z]+ed|done|gone|sent|made|taken|given|written|seen|told|found|met|paid|"
                        r"had|got|bought|brought|left|won|lost|held|sold|built|spent|run)\b", re.I)
# what follows a past verb that makes it a promise of something still to do: "to" and a verb, or a subject
# and a modal ("said he'd", "told us she will")
_PROMISE_AFTER = re.compile(r"\s+(?:(?:us|me|them|everyone|the team)\s+)?(?:that\s+)?(?:(?:to|for)\s+(?!the\b|a\b|an\b)"
                            r"[a-z]+|(?:he|she|they|i|we)\s*(?:'d|’d|'ll|’ll|would|will|could|can|is going to|"
                            r"was going to|might)\b)|"
                            # a few words on, "to" and a verb: "has taken it upon herself to ...", "agreed with
                            # the landlord to ..."
                            r"(?:\s+[\w'’-]+){1,4}?\s+to\s+(?!the\b|a\b|an\b|his\b|her\b|their\b|our\b|my\b|"
                            r"your\b|its?\b|them\b|us\b|me\b)(?-i:[a-z])", re.I)
_PROMISE_VERB = re.compile(r"(?i:agreed|offered|promised|volunteered|said|told|asked|tasked|expected|supposed|decided|"
                           r"committed|undertook|signed up|meant|was|were|has|have|had|got)$")
# being somewhere, away or free is no task ("Rosa will be out until Tuesday", "Chloe is on holiday")
_STATE = re.compile(r"\b(?i:is|are|am|was|were|'s|’s|be|being|been)\s+(?i:out|off|away|back|here|there|around|free|busy|"
                    r"available|unavailable|sick|ill|late|in\s+(?!charge)\w+|at\s+\w+|on\s+(?:holiday|leave|"
                    r"vacation|annual leave|sick leave|a course|a break|a trip|the road|site|call)|with us|joining)\b")
_HABIT = re.compile(r"\b(?i:usually|always|normally|often|generally|typically|sometimes|never|tends? to|used to)\b")
# someone reporting what is so ("Karen says the audit is scheduled ...") gives nobody a task
_REPORT = re.compile(r"\b(?i:says|said|mentioned|mentions|thinks|thought|reckons|reported|reports|noted|notes|"
                     r"explained|explains|feels|felt|believes|believed|heard|hears|told us|tells us|confirmed|"
                     r"confirms)\b")
# said of the person right after the name, with or without an auxiliary: a negation ("Nora can't ..."), or a verb
# of being somewhere, coming, going, knowing or having that is no task ("Nora will join us", "Nora leaves for
# Lisbon", "Nora has a dentist appointment"; but "Nora has to ...", "Nora starts the audit")
_AUX = r"(?:\s+(?i:will|'ll|’ll|is|'s|’s|are|can|could|may|might|should|would|'d|’d|is going to|'s going to|going to|"\
       r"gets to|also|then|just))*"


def _forms(verbs: str) -> str:
    """A regex for the verbs' base, third-person and -ing forms ("come|comes|coming")."""
    out = []
    for v in verbs.split():
        ing = (v[:-1] if v.endswith("e") and not v.endswith("ee") else v) + "ing"
        out += [v, v + ("es" if v.endswith(("o", "s", "sh", "ch")) else "s"), ing]
    return "|".join(sorted(set(out), key=len, reverse=True))


_NOT_DOING = re.compile(_AUX + r"\s+(?i:can't|can’t|cannot|won't|won’t|will not|isn't|isn’t|doesn't|doesn’t|don't|"
                        r"don’t|not|never|wouldn't|shouldn't|couldn't|"
                        r"(?:" + _forms("join come arrive return fly travel be know think hear see attend stay sit "
                                        "land love like enjoy prefer hope wish feel") + r"|make it|get back|come back|"
                        r"going|goes|go)\b(?!\s+to\s+(?!the\b|a\b|an\b|our\b)(?-i:[a-z]))|"
                        r"(?:" + _forms("start leave begin") + r")\b(?!\s+(?:the|a|an|our|their|his|her|this|that|"
                        r"those|these)\b)|"
                        r"(?:" + _forms("need have want get") + r"|has|got)\b(?!\s+(?:to|the|this|that|these|"
                        r"those|our|your|their|his|her|(?:already\s+|just\s+)?\w+(?:ed|en|wn|ne|t))\b)|"
                        r"(?:need|needs|want|wants)\s+to\s+(?:be|know|see|hear|leave|go|come)\b)")
# a name thanked, welcomed or congratulated is no one given a task ("Congratulations to Nora, who starts in May")
_COURTESY = re.compile(r"\b(?i:thanks|thank you|congratulations|congrats|welcome|well done|kudos|cheers|"
                       r"good morning|good afternoon|hi|hello|hey|bye|goodbye)\W+(?:(?i:to|back|again)\s+)?$")
_TIME_WORDS = set(MONTHS) | set(DAYS)


def _person(w: str, lower_ok: bool, things: set[str]) -> bool:
    low = w.lower()
    return ((w[:1].isupper() or lower_ok) and len(low) > 1 and low not in stop_words() and low not in _TIME_WORDS
            and low not in things and not _LABEL_WORD.fullmatch(w) and not _NOT_A_REQUEST.fullmatch(w)
            and "person" in kind_of(low))  # the name lists hold some interjections ("Okay")


def _owner_at(clause: str, toks: list[re.Match], i: int, end: int) -> bool:
    """Whether the name at token i (ending at `end`, before any 's) fills a person's place in the clause (see the
    module's doc)."""
    t = toks[i]
    before, after = clause[: t.start()], clause[end:]
    if _ARTICLE.search(before) or _SELF.search(before) or _COURTESY.search(before) or _NOT_DOING.match(after):
        return False
    cap = lambda j: (0 <= j < len(toks) and toks[j].group(0)[:1].isupper()  # noqa: E731
                     and toks[j].group(0).lower() not in stop_words() and toks[j].group(0).lower() not in _TIME_WORDS)
    if (cap(i - 1) and clause[toks[i - 1].end():t.start()] == " ") or \
            (cap(i + 1) and clause[t.end():toks[i + 1].start()] == " "):
        return False  # part of a longer proper name ("Grace Hopper Hall")
    if re.match(r"['’]s\b", after) and not (_IS_AFTER.match(after) or _TASK_NOUN.match(after)):
        return False  # "Simon's flight", "Leo's birthday": the thing is the subject
    if _PREP.search(before) and not _PHRASE_END.match(after):
        return False
    m = _GROUP_VERB.search(before)
    if m and not re.fullmatch(r"(?i:" + _CONTROL + "|" + _CAUSATIVE + r"|ask)", m.group(1)):
        return False  # the object of what the group does ("we'll put Nora's project on hold"), not who does it
    return True


# right before a name: the group as the subject and its verb ("we will put <name>", "let's move <name>")
_GROUP_VERB = re.compile(r"\b(?i:we|we'll|we’ll|we're|we’re|let's|let’s|let us)\s+(?:(?i:will|shall|are going to|are|"
                         r"have to|need to|must|should|can|could|would|just|then|also|now)\s+)*(?i:([a-z]+))\s+$")


def _no_task(clause: str) -> bool:
    """Whether the clause, past its owner, tells of something done, a state, a habit or a report: no task."""
    if _HABIT.search(clause) or _STATE.search(clause):
        return True
    for m in _PAST_VERB.finditer(clause):
        if m.group(0)[:1].isupper() and m.start() > 0:
            continue  # a name ("Ahmed", "Fred")
        if _ARTICLE.search(clause[: m.start()]) or re.search(r",\s*$", clause[: m.start()]) and \
                not re.search(r"\b(?i:i|we|he|she|they)\s*,?\s*$", clause[: m.start()]):
            continue  # "the signed form", "the register, updated, ...": a participle describing a thing
        word = m.group(0).split()[-1]
        if _PROMISE_VERB.fullmatch(m.group(0).split()[0]) and _PROMISE_AFTER.match(clause[m.end():]):
            continue  # "Leo said he'd ...", "Zara offered to ...", "Grace was asked to ..."
        if re.match(r"(?i:got)$", word) and re.match(r"\s+to\s+[a-z]", clause[m.end():]):
            continue  # "has got to": an obligation
        return True
    rep = _REPORT.search(clause)
    return bool(rep and not _PROMISE_AFTER.match(clause[rep.end():]))


def assignment(clause: str, things: Iterable[str] = (), cased: Optional[bool] = None) -> Optional[tuple[str, int]]:
    """(owner, where the task starts: after the owner when the owner is its subject, else 0) when the clause
    gives a named person a task with a time it is due; None when it has no such structure. `cased`: whether the
    line the clause comes from is written with capitals (else, as a recognizer may write it all in lower case, a
    first name in lower case is a name); by default, whether the clause has any."""
    when = due(clause)
    if not when or re.search(r"\b(?i:is|are|was|were|'s|’s)\s+(?:(?i:on|at|in|for|set for|due)\s+)?$",
                             clause[: clause.find(when)]):
        return None  # "the deadline is November 8": a date stated, no task
    things = {t.lower() for t in things}
    toks = list(_TOK.finditer(clause))
    lower_ok = not (re.search(r"[A-Z]", clause) if cased is None else cased)
    for i, t in enumerate(toks):
        w = re.sub(r"['’](?:s|ll|d)$", "", t.group(0))
        end = t.start() + len(w)
        if not _person(w, lower_ok, things) or not _owner_at(clause, toks, i, end):
            continue
        if w.lower() in when.lower().split():
            continue
        if QUESTION.search(clause.strip()) and not asks(clause, w) and not re.search(
                r"\b(?i:can|could|would|will)\s+" + re.escape(w) + r"\b", clause):
            return None  # a question about the person ("Is Gabriel joining us next week?")
        if _no_task(clause):
            return None
        rest = clause[end:]
        subject = re.match(r"(?:['’](?:s|ll|d)\b)?\s+(?:[a-z]+(?:s|ed)?\b|to\s+[a-z])", rest) and \
            not re.match(r"\s+(?i:you|your|and|or|for|to the|from)\b", rest)
        return w, (end if subject else 0)
    return None
