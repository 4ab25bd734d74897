"""Who owns an action item, by the grammar of the sentence that gives it (no part-of-speech tagger: the forms a
person is given a task in are few, and each is a pattern over words around a name).

- addressed: "Tom, can you ...", "Please, Tom, ...", "... by Friday, Tom?";
- labelled: "owner: Ivan", "action item for Ivan: ...", "assigned to Ivan", "assign the audit to Ivan";
- the agent of a task still to do, in the passive: "the slides will be prepared by Ivan";
- the one asked (object control and causatives): "I'd like Ivan to ...", "we need Ivan to ...", "let us ask Ivan
  to ...", "can we get Ivan to ...", "let's have Ivan call ...", "over to Ivan to ...";
- the one asked in a question: "could Ivan send ...?";
- a possessive: "Ivan's action is to ...";
- the subject right before a verb: "Ivan will ...", "Ivan has agreed to ...", "Ivan said he would ...", "Ivan
  volunteered to ...", minutes style "Ivan to check ...".
An owner is a person: a capitalized word (or a name of the meeting said in lower case) that is not a stop word, a
month or a day, not part of a multi-word proper name, not right after an article, possessive or preposition, and
not a word the meeting uses for a thing or a place (`things_in`: "the Comet contract", "welcome to Harbor"). The
subject of a passive ("Comet is advised by ...") receives the action and owns nothing.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Optional, Sequence

from models.text.gazetteer import kind_of
from models.text.relevance import DAYS, MONTHS
from models.text.words import sounds_like, stop_words


def is_name(word: Optional[str]) -> bool:
    if not word:
        return False
    low = word.lower()
    return word[:1].isupper() and low not in stop_words() and low not in MONTHS and low not in DAYS and len(low) > 1


_TOK = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_NAME = r"([A-Za-z][a-z]+)"
_AUX = (r"(?:will|'ll|shall|is|are|was|has|have|had|needs?|must|should|ought|could|can|would|going|gonna|got|to|be|"
        r"please|you|he|she|they|promised|agreed|offered|volunteered|said|told|us|me|also|then|just|kindly)")
_BEFORE_THING = re.compile(r"(?:\b(?i:the|a|an|this|that|these|our|their|its|his|her|my|your|of|in|at|on|from|"
                           r"by|with|about|into|to|for))\s+$")
# a word right after a subject that makes it one: an auxiliary or modal, "to" (minutes style: "Kevin to check
# the invoices"), a verb in the third person or the past ("manages", "promised"), or a common irregular past
_VERB_AFTER = re.compile(r"(?:will|shall|is|was|has|had|must|should|ought|can|could|would|may|might|to|said|told|took|"
                         r"got|made|put|set|sent|wrote|gave|kept|did|does|[a-z]+(?:s|ed))", re.I)
# capitalized words that are not people: a verb's -ing form starting a sentence ("Moving on to ..."), abstract
# nouns ("Management decided ...")
_NOT_A_NAME = re.compile(r"(?:ing|ment|tion|sion|ity|ness|ship|ance|ence)$", re.I)
# the subject of a passive receives the action: "Comet is advised by ...", "the van was booked by ...", "Comet will
# be moved to Oslo" (with or without its agent); but a person is the one "asked / expected / tasked to ..."
_PASSIVE_AFTER = re.compile(r"\s+(?:(?:is|are|was|were|will|'ll|shall|must|should|needs to|has to|is going to|is to|"
                            r"gets|got|has|have|had)\s+)?(?:be|been|being|is|are|was|were|gets|got)"
                            r"\s+(?:\w+ly\s+)?(?!(?:asked|expected|tasked|supposed|assigned|required|charged|meant|"
                            r"due|set|slated|scheduled|booked in|responsible|going|getting)\b)\w+(?:ed|en|wn|t)\b", re.I)
# what may follow "Name," when Name is addressed with a task: a request or an order, not a statement of the
# speaker's ("First, I will ...", "Tom, the numbers look fine")
_NOT_A_REQUEST = re.compile(r"(?i:i|i'm|i'll|i've|we|we're|we'll|they|he|she|it|it's|this|that|the|a|an|there|"
                            r"here|our|my|his|her|their|its|so|and|but|um|uh|well|yes|no|ok|okay|thanks|thank|"
                            r"sorry|hi|hello|welcome|good|great|right)\b")
# a question: it ends in a question mark or opens with an auxiliary or a question word
QUESTION = re.compile(r"\?\s*$|^\W*(?i:do|does|did|is|are|was|were|has|have|had|should|shall|can|could|will|would|"
                      r"who|whom|whose|what|when|where|why|how|which|may|might|must)\b")
_MODAL_Q = r"(?:can|could|would|will)"
# a date or deadline: a task said in the present ("Ana sends the figures by Friday") has one, a role ("Ana manages
# the Oslo office") does not
_WHEN = re.compile(r"\b(?:by|before|until|till|tomorrow|today|tonight|next|this week|end of|asap|soon|first thing)\b|"
                   r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b", re.I)
# words that cannot start the task of a minutes-style "Name to <verb> ..." ("Addy to your mentors" is misheard speech)
_NOT_A_VERB = re.compile(r"(?i:the|a|an|your|my|our|their|his|her|its|this|that|these|those|me|us|them|you|him|it)")
# verbs after "can Name ..." that ask about a person, not give a task ("Will Ana be there?", "Can Ana join?")
_NOT_A_TASK = r"(?:be|have|has|know|think|remember|recall|join|attend|come|hear|see|make it)\b"
_CONTROL = (r"(?:like|want|wants|need|needs|ask|asked|asking|get|getting|expect|expecting|trust|trusting|tell|told|"
            r"remind|reminded|invite|nominate|nominated|appoint|appointed|encourage|count(?:s|ed|ing)? on|"
            r"rel(?:y|ies|ied|ying) on|depend(?:s|ed|ing)? on|for)")
_CAUSATIVE = r"(?:have|has|had|having)"
# verbs that hand a task to someone ("assign the audit to Ivan", "the audit is allocated to Ivan"); their past
# forms tell what happened ("I gave the keys to Ivan"), not a task
_HANDED = (r"(?:assign|assigned|assigning|give|given|giving|hand|handing|pass|passing|delegate|leave|leaving|allocate|"
           r"allocated)")
# a task that falls to a person: "it falls to Ivan to ...", "it's up to Ivan to ...", "that's on Ivan to ..."
_FALLS = r"(?:(?:falls|fell|will fall|comes down|left|leave it|leaving it)\s+(?:to|on|with)|(?:is|'s)\s+(?:up to|down to|on|with))"
_LABEL = r"(?:action(?:\s+items?|\s+points?)?|tasks?|to-?dos?|jobs?|homework|follow-?ups?)"
_POSSESSED = r"(?:action|task|job|homework|to-?do|assignment|responsibility|item)s?"
# words that label a line of minutes ("Owner: Ivan", "Task: ...", "Next step: ..."), never the person addressed
_LABEL_WORD = re.compile(r"(?:owner|assignee|responsible|action|task|todo|to-do|job|follow-up|followup|next|step|"
                         r"decision|note|item|deadline|due|status|update)s?", re.I)
# a present-tense verb that, followed by "to", promises or takes on a task ("Zoe needs to renew ...", "Ana offers
# to ..."), unlike one that states a role ("Ana manages the Oslo office")
_TAKES_ON = re.compile(r"(?:needs|plans|intends|promises|offers|agrees|volunteers|wants|gets|has|is|was)\s+to\b|"
                       r"takes\s+(?:care\s+of|on|over|charge|the\s+(?:lead|action|task))\b", re.I)


def things_in(texts: Iterable[str]) -> set[str]:
    """Capitalized words that a meeting uses for things or places (lower case): after an article or possessive
    ("the Comet contract", "our Harbor office") or after "welcome to", "in" or "at" ("in Lisbon") more often than
    as the subject of a promise ("Comet will ..."; a misheard "the lead is in Alice" does not make Alice a place).
    A person's name is rarely said after an article; a word followed by 's ("at Ana's desk") does not count."""
    thing: Counter = Counter()
    person: Counter = Counter()
    for t in dict.fromkeys(texts):  # each line once (a slide's lines recur in every clip it is shown)
        for m in re.finditer(r"\b(?i:the|a|an|our|their|this|that|these|those|its|your|my|welcome to|in|at)\s+"
                             r"([A-Z][a-z]+)\b(?!['’]s)", t):
            thing[m.group(1).lower()] += 1
        for m in re.finditer(r"\b([A-Z][a-z]+)\s+(?i:will|'ll|should|must|has to|needs to|is going to|said|"
                             r"promised|agreed|volunteered|offered)\b", t):
            person[m.group(1).lower()] += 1
    return {w for w, n in thing.items() if n > person[w] and is_name(w.title())}


def owner_of(clause: str, names: Sequence[str] = (), things: Iterable[str] = ()) -> Optional[tuple[str, int]]:
    """(the person an action item is for, the character offset where its task starts; 0: the clause without the
    owner's phrase is the task), or None. The forms are listed in the module's doc, surest first."""
    low_names = {n.lower() for n in names}
    not_people = set(things)
    toks = list(_TOK.finditer(clause))

    def named(w: str) -> bool:
        w = re.sub(r"['’](?:s|ll|d)$", "", w)
        ok = is_name(w) or (w.lower() in low_names and w.lower() not in stop_words())
        return ok and not _NOT_A_NAME.search(w) and w.lower() not in not_people and not _LABEL_WORD.fullmatch(w)

    def person(i: int) -> bool:
        if not named(toks[i].group(0)):
            return False
        prev_cap = i > 0 and toks[i - 1].group(0)[:1].isupper() and clause[toks[i - 1].end():toks[i].start()] == " "
        next_cap = (i + 1 < len(toks) and toks[i + 1].group(0)[:1].isupper()
                    and clause[toks[i].end():toks[i + 1].start()] == " " and is_name(toks[i + 1].group(0)))
        return not prev_cap and not next_cap and not _BEFORE_THING.search(clause[: toks[i].start()])

    for form in (_addressed, _labelled, _passive_agent, _asked, _possessive):
        hit = form(clause, toks, person, named)
        if hit:
            return hit
    return _subject(clause, toks, person)


def _addressed(clause, toks, person, named):
    """ "Tom, can you ...", "Please, Tom, ...", "... the room, Tom?" """
    if not toks:
        return None
    i = 1 if len(toks) > 1 and toks[0].group(0).lower() in ("please", "so", "okay", "ok", "right", "and") else 0
    first = toks[i]
    if re.match(r"\s*[,:]", clause[first.end():]) and person(i) and i + 1 < len(toks) \
            and not _NOT_A_REQUEST.fullmatch(toks[i + 1].group(0)):
        return first.group(0), first.end() + 1
    last = toks[-1]
    if re.match(r"\s*[.?!]?\s*$", clause[last.end():]) and re.search(r",\s*$", clause[: last.start()]) \
            and person(len(toks) - 1) and re.search(r"\b(?i:you|your|please)\b", clause[: last.start()]):
        return last.group(0), 0
    return None


def _labelled(clause, toks, person, named):
    """ "owner: Ivan", "action item for Ivan: ...", "assigned to Ivan", "give the audit to Ivan", "over to Ivan to
    ..." (the task follows the label and the name, or is the clause without them)"""
    for rx, rest in ((r"\b(?i:owner|assignee|assigned to|responsible)\s*:?\s+" + _NAME + r"\b", False),
                     (r"\b(?i:" + _LABEL + r")\s*:?\s+(?i:for)\s+" + _NAME + r"\b\s*:?", True),
                     (r"\b(?i:for)\s+" + _NAME + r"\s*:", True),
                     (r"\b(?i:" + _HANDED + r")\b[^,.;:?!]*?\b(?i:to|with)\s+" + _NAME + r"\b(?!['’]s)", False),
                     (r"\b(?i:over to|" + _FALLS + r")\s+" + _NAME + r"\s+(?i:to)\s+(?=[a-z])", True)):
        m = re.search(rx, clause)
        if m and named(m.group(1)) and not re.match(r"\s+[A-Z][a-z]", clause[m.end(1):]):
            return m.group(1), m.end() if rest else 0
    return None


def _passive_agent(clause, toks, person, named):
    """ "the slides will be prepared by Ivan", "the contract needs to be signed by Ivan" (a task to do: a modal or
    "to" before "be"; "the account is handled by Ivan" states a fact)."""
    m = re.search(r"\b(?i:will|'ll|shall|should|must|needs? to|has to|have to|is going to|are going to|is to|are to|"
                  r"to|is being|are being)\s+(?i:be\s+)?\w+(?:ed|en|wn|t|de)\b[^,.;?!]*?\b(?i:by)\s+" + _NAME
                  + r"\b(?!['’]s)", clause)
    if m and named(m.group(1)) and not re.match(r"\s+[A-Z][a-z]", clause[m.end(1):]):
        return m.group(1), 0
    return None


def _asked(clause, toks, person, named):
    """ "I'd like Ivan to ...", "let's ask Ivan to ...", "let us have Ivan call ...", "could Ivan send ...?" """
    for rx in (r"\b(?i:" + _CONTROL + r")\s+" + _NAME + r"\s+(?i:to)\s+(?=[a-z])",
               r"\b(?i:" + _CAUSATIVE + r")\s+" + _NAME + r"\s+(?=[a-z])(?!" + _NOT_A_TASK + r"|to\b)",
               r"^\W*(?:(?i:so|and|okay|ok|then)\s+)?(?i:" + _MODAL_Q + r")\s+" + _NAME
               + r"\s+(?:(?i:please)\s+)?(?=[a-z])(?!" + _NOT_A_TASK + r")"):
        m = re.search(rx, clause)
        if m and named(m.group(1)) and m.group(1).lower() not in ("we", "you", "us"):
            return m.group(1), m.end(1)
    return None


def _possessive(clause, toks, person, named):
    """ "Ivan's action is to ...", "the next task is Ivan's: ..." """
    m = re.search(r"\b" + _NAME + r"['’]s\s+(?i:" + _POSSESSED + r")\b(?:\s+(?i:is|are|will be))?(?:\s+(?i:to))?",
                  clause)
    if m and named(m.group(1)) and not _BEFORE_THING.search(clause[: m.start(1)]):
        return m.group(1), m.end()
    return None


def _subject(clause, toks, person):
    """ "Chen will look into ...", "Ana has agreed to ...", "Ana said she would ...", "Kevin to check ..." """
    for i, t in enumerate(toks[:-1]):
        after = toks[i + 1].group(0)
        if clause[t.end():toks[i + 1].start()].strip():
            continue  # a verb right after its subject: "Press 1 to accept" has a number between (a menu, no owner)
        if after.lower() == "to":
            if re.search(r"[^\s:;,.-]\s*$", clause[: t.start()]):
                continue  # "Name to <task>" is a minutes-style item only at the start ("... move Iris to Oslo" is not)
            nxt = toks[i + 2].group(0) if i + 2 < len(toks) else ""
            if not nxt[:1].islower() or _NOT_A_VERB.fullmatch(nxt):
                continue  # a verb follows a minutes-style owner's "to" (not "Welcome to Harbor", "... to your desk")
        if _PASSIVE_AFTER.match(clause[t.end():]):
            continue
        if re.match(r"\s+(?i:is|was|are|were)\s+(?:(?i:the|a|an|our|my|his|her|their|its|this|that|one)\b|[A-Z]|"
                    r"(?i:going)\s+(?!(?i:to)\s+[a-z]))", clause[t.end():]):
            continue  # "Ana is the treasurer", "Ana is Head of Sales", "Ana is going through the list": it describes
        if re.fullmatch(r"[a-z]+s", after) and after not in ("is", "has", "was", "does") and not _WHEN.search(clause) \
                and not _TAKES_ON.match(clause[toks[i + 1].start():]):
            continue  # "Ana manages the Oslo office": the present states a role; a task is promised or has a date
        if person(i) and (_VERB_AFTER.fullmatch(after) or re.search(r"['’](?:ll|s|d)$", t.group(0))):
            return re.sub(r"['’](?:s|ll|d)$", "", t.group(0)), t.end()
    return None


def handed(clause: str) -> bool:
    """Whether the clause hands a task to someone, named or not: "it falls to ... to <verb>", "it's up to ... to
    <verb>", "over to ... to <verb>"; such a line is an action item (or, its owner misheard, nothing), never a
    decision."""
    return bool(re.search(r"\b(?i:over to|" + _FALLS + r")\s+(?:\w+\s+){1,2}?(?i:to)\s+[a-z]+", clause))


# a time a task is due ("by Friday", "before the end of the month", "until May 3")
_DEADLINE = re.compile(r"\b(?:by|before|until|no later than|ahead of)\s+(?:the\s+)?(?:end\s+of\s+)?(?:next\s+|this\s+)?"
                       r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|week|month|"
                       r"quarter|year|january|february|march|april|may|june|july|august|september|october|november|"
                       r"december|\d)"
                       # or an event to come: "before the open day", "ahead of the audit", "in time for our launch"
                       r"|\b(?:before|ahead of|in time for)\s+(?:the|our|next|this)\s+[a-z]", re.I)


def committed(clause: str, owner: str) -> bool:
    """Whether the owner, as the subject, commits to a task with a time it is due: "Helen will share the results
    before Thursday", "Ana is going to call them by Friday", "by May 3, Tom has to ..."."""
    o = re.escape(owner)
    return bool(re.search(r"(?:^\W*|[,;:]\s*|\b(?i:and|so|then)\s+)" + o + r"\s+(?i:will|'ll|is going to|is gonna|"
                          r"has to|needs to|must|is to|shall)\s+[a-z]", clause) and _DEADLINE.search(clause))


def requested(clause: str, owner: str) -> bool:
    """Whether the clause is plainly a request to the owner, by its form alone: addressed with "please" or "can
    you" ("Tom, please ..."), asked or had ("let's have Tom ...", "I'd like Tom to ..."), labelled ("owner: Tom") or
    handed the task ("it falls to Tom to ...")."""
    o = re.escape(owner)
    return bool(re.match(r"\W*(?:(?i:please)\W+)?" + o + r"\s*,\s*(?i:please|can you|could you|would you|will you)\b",
                         clause)
                or re.search(r"\b(?i:" + _CONTROL + r")\s+" + o + r"\s+(?i:to)\s+[a-z]", clause)
                or re.search(r"\b(?i:" + _CAUSATIVE + r")\s+" + o + r"\s+[a-z]", clause)
                or re.search(r"\b(?i:owner|assignee|assigned to)\s*:?\s+" + o + r"\b", clause)
                or re.search(r"\b(?i:over to|" + _FALLS + r")\s+" + o + r"\s+(?i:to)\s+[a-z]", clause))


def asks(clause: str, owner: str) -> bool:
    """Whether a question asks the owner to do something: the owner addressed ("Tom, could you ...?", "..., Tom?")
    or the subject of a request ("could Tom send ...?")."""
    o = re.escape(owner)
    return bool(re.match(r"\s*(?:please\s*,?\s+)?" + o + r"\s*[,:]", clause, re.I)
                or re.search(r",\s*" + o + r"\s*[.?!]?\s*$", clause, re.I)
                or re.match(r"^\W*(?:(?:so|and|okay|ok|then)\s+)?" + _MODAL_Q + r"\s+" + o + r"\b", clause, re.I))


# a promise or commitment the owner makes before the task itself: the task starts at its own verb ("has taken it upon
# herself to file ...", "is taking care of it and will file ...", "made sure to", "signed up to")
_COMMITS = re.compile(
    r"^(?:(?:has|have|had|is|are|was|were|'s|’s)\s+)?"
    r"(?:(?:taken|taking|take|takes|took)\s+(?:it\s+upon\s+\w+|care\s+of\s+(?:it|this|that))|"
    r"(?:make|makes|made|making)\s+sure|(?:sign|signs|signed|signing)\s+up|"
    r"(?:offer|offers|offering|promise|promises|promising|agree|agrees|agreeing|volunteer|volunteers|volunteering|"
    r"plans?|planned|planning|intends?|intended|intending|undertakes?|undertook|"
    r"(?:is\s+)?(?:happy|willing|keen|glad|able)))"
    r"\s+(?:and\s+(?:(?:he|she|they|we|i)\s*)?(?:(?:will|'ll|’ll|would|is\s+going\s+to)\s+)?|to\s+)(?=[a-z])", re.I)


def task_of(clause: str, start: int, owner: str = "") -> str:
    """The task: the clause after its owner (start > 0), or the clause without the owner's phrase (start 0: the
    owner addressed at its end, labelled or the agent of a passive), without the modal and auxiliary verbs before
    it."""
    task = clause[start:] if start else clause
    if owner and not start:
        o = re.escape(owner)
        task = re.sub(r",\s*" + o + r"\s*[.?!]?\s*$", "", task)
        task = re.sub(r"\s*\b(?i:by|to|with)\s+" + o + r"\b", "", task)
        task = re.sub(r"\b(?i:owner|assignee|assigned to|responsible)\s*:?\s+" + o + r"\b", "", task)
        task = re.sub(r"^\W*(?i:" + _LABEL + r")?\s*(?i:for\s+)?" + o + r"\s*:", "", task)
        task = re.sub(r"^\W*" + o + r"\s*,\s*", "", task)  # the owner addressed first: "Nora, please book ..."
        task = re.sub(r"^\W*(?i:let's|let us|we'll|we will|we should|i'll|i will)?\s*(?i:" + _HANDED + r")\s+", "",
                      task)
        task = re.sub(r"\s+(?:(?i:is|are|was|were|been|will|'ll|shall|should|must|needs?|has|have|going|to|be|being)"
                      r"\s+)+\w+\s*[.?!]?\s*$", "", task)  # the passive's verb: "the slides will be prepared"
    task = re.sub(r"^(?:['’](?:s|ll|d)\b|[^\w'’])+", "", task)
    task = re.sub(r"^(?:" + _AUX + r"\s+)+", "", task, flags=re.I)
    task = re.sub(r"^(?i:(?:asked|expected|tasked|supposed|meant|required)\s+(?:to|with)|takes\s+the\s+(?:action|task|job)\s+to|(?:task|action|to-?do)\s*:)\s*", "", task)
    task = _COMMITS.sub("", task)
    return task.strip(" ,:;.?!-—–")


def canonical(owner: str, names: Sequence[str]) -> str:
    """A heard owner written as the name it most likely is: a name read on screen or said more often that it
    sounds like (the recognizer spells an unfamiliar name differently from one sentence to the next), or a first
    name the recognizer wrote with the "'s" that followed it joined on."""
    low = owner.lower()
    for n in names:
        if n.lower() != low and sounds_like(n.lower(), low):
            return n
    if low.endswith("s") and not kind_of(low) and "person" in kind_of(low[:-1]):
        owner = owner[:-1]  # "Samuels is going to ...": the recognizer joined "Samuel's"
    return owner.title() if owner.islower() else owner
