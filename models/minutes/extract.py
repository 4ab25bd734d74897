"""Decisions, action items and figures from one sentence or slide line.

With a sentence embedder (the product path: `summarize` passes the profile's), decisions and action items are found
first by their structure, whatever the wording: a named person, a task and a time it is due make an action item
(`models.minutes.assign`); a verdict (`models.minutes.verdict`: the group or an authority, or nobody named in the
passive, with a verb of deciding by its WordNet class: "the panel turned down ...", "the relocation has been
shelved"), the verdict's noun as the subject ("our final call is to ..."), an outcome labelled ("Final call: ...",
a bare label joined to the sentence after it: `labelled_runs`) or a rule from a time on make a decision (`_verdict`);
so do, less surely, the group committing itself or a thing's plan changed, with nobody named (`_settled`), and a
proposal the group agrees to in the next sentence ("We all agreed.": `verdict.assent`, joined by `labelled_runs`);
a person taking something on ("Cecilia is on it.") and the order said next make an action item (`claimed_tasks`). A
proposal still open, a condition, a question or a time past is none. The classifier (`models.minutes.acts`: sentence
embeddings and words, trained on general meeting language, clause by clause) only vetoes those, and finds the rest,
with the owner taken from the grammar. Without one, by the usual forms of English
meeting language:

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
from typing import Iterable, Sequence

from models.text.gazetteer import kind_of
from models.text.relevance import MONTHS
from models.text.words import digits, sentences, stop_words

from . import acts, assign, owners, wordnet
from .verdict import FILLER, assent, unsettled, verdict
from .due import due
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


is_name = owners.is_name


# right before an owner: an article or possessive, or another capitalized word ("The Comet Project will hire ...")
# make the capitalized word part of a thing's name, not a person
_NOT_PERSON_BEFORE = re.compile(r"(?:\b(?i:the|a|an|this|that|these|our|their|its|his|her|my|your)|\b[A-Z][a-z]+)\s+$")


def _person_slot(sentence: str, m: re.Match) -> bool:
    return not _NOT_PERSON_BEFORE.search(sentence[: m.start("owner")])


def extract_actions(text: str, t0: float, t1: float, embedder=None, names: Sequence[str] = (),
                    things: Iterable[str] = ()) -> list[ActionItem]:
    """Action items said in text, each with its owner (a person), its task and the sentence; `names` (people and
    things named in the meeting, the surest first) let a misheard or lower-case owner be written as the name;
    `things` (lower case: `owners.things_in`) are the meeting's names of things and places, never owners."""
    if embedder is not None:
        return [ActionItem(owners.canonical(o, names), task, t0, t1, c)
                for c, o, task in _classified(text, embedder, names, things)[1]]
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


# a person taking on, in a few words, the task said next ("Cecilia is on it. Update the emergency contacts by
# Friday.", "Veronica owns this one. Restock the first aid kits before Tuesday."): the name, up to two words, and
# "it", "this" or "that" for the task; a verb of saying, thinking, feeling or perceiving ("Maria said it") takes on
# nothing (WordNet's verb.cognition, communication, emotion and perception)
_CLAIM = re.compile(r"^\W*" + FILLER + r"(?P<owner>[A-Z][a-z]+)(?:['’]s)?\s+(?P<vp>(?:[a-z'’]+\s+){0,2}?)"
                    r"(?:it|this|that)(?:\s+one)?\W*$")
_NOT_TAKING_ON = frozenset((31, 32, 37, 39))
_AUX_WORDS = frozenset("is are was has have had will shall can 'll got gotten on upon".split())
_PLEASE = re.compile(r"^\W*(?:(?i:please|kindly)\s+)?")


def _takes_on(vp: str) -> bool:
    for w in vp.split():
        if w in _AUX_WORDS:
            continue
        files = {wordnet.lexfile(o, "v") for b in wordnet.base_forms(w, "v") for o in wordnet.senses(b, "v")[:2]}
        if files and files <= _NOT_TAKING_ON:
            return False
    return True


# an order: a verb (and its particle), then its object ("Restock the first aid kits ...", "Clean up our drive ...")
_IMPERATIVE = re.compile(r"^[A-Za-z][a-z-]+\s+(?:(?i:up|out|down|off|over|back|in|through|away)\s+)?"
                         r"(?i:the|a|an|our|their|his|her|my|your|this|that|these|those|all|some|any|new|more|every)"
                         r"\s+\S")


def _verb_first(task: str) -> bool:
    """Whether the first word may be a verb in its base form: WordNet has it as one, or does not know it
    ("recalibrate"); a word it knows only as another part of speech, or a function word, is none."""
    w = task.split()[0].lower()
    if w in stop_words():
        return False
    if w in wordnet.base_forms(w, "v"):
        return True
    return not any(wordnet.senses(w, pos) for pos in ("v", "n", "a", "r"))


def claimed_tasks(timed: Sequence[tuple[str, float, float]], names: Sequence[str] = (), things: Iterable[str] = (),
                  gap: float = 4.0) -> list[ActionItem]:
    """Action items said in two sentences, a person taking it on and then the task (an imperative with a time
    due and no one else named), said within `gap` seconds: the recognizer ends a sentence at the pause between
    them, and neither is an action item alone."""
    if not wordnet.available():  # the order's verb and the claim's are told by WordNet (Debian's wordnet-base)
        return []
    things = {t.lower() for t in things}
    out = []
    for (s, a, b), (nxt, a2, b2) in zip(timed, timed[1:]):
        m = _CLAIM.match(s.strip())
        if not m or a2 - b > gap or not is_name(m.group("owner")) or m.group("owner").lower() in things:
            continue
        task = _PLEASE.sub("", nxt.strip()).strip().rstrip(" .!")
        if (not _IMPERATIVE.match(task) or _QUESTION.search(nxt.strip()) or not _verb_first(task)
                or not _takes_on(m.group("vp")) or due(task) is None
                or any(is_name(w) and w.lower() not in things for w in re.findall(r"[A-Z][a-z]+", task)[1:])):
            continue
        out.append(ActionItem(owners.canonical(m.group("owner"), names), task[:1].lower() + task[1:], a,
                              max(b, b2), f"{s.strip()} {nxt.strip()}"))
    return out


def extract_decisions(text: str, t0: float, t1: float, embedder=None) -> list[Line]:
    if embedder is not None:
        return [Line(c, t0, t1) for c in _classified(text, embedder)[0]]
    return [Line(s, t0, t1) for s in sentences(text) if _DECISION_RE.search(s)]


_QUESTION = owners.QUESTION


def _classified(text: str, embedder, names: Sequence[str] = (),
                things: Iterable[str] = ()) -> tuple[list[str], list[tuple[str, str, str]]]:
    """(decisions, [(clause, owner, task)]) in text: each sentence, or each clause of a run-on one, that the
    classifier takes for one with enough confidence. A question is never a decision, and an action item only when
    it is a request to a person addressed by name ("Tom, can you ...?"); an action item needs a named owner."""
    decisions, actions = [], []
    things = set(things)
    for s in sentences(text):
        cased = bool(re.search(r"[A-Z]", s))  # a line all in lower case: a first name may be too
        units = acts.clauses(s)
        group = [u for u in units if u != s.strip()] or units  # a run-on line: its clauses, never the whole as one
        whole = s.strip() if s.strip() in units and len(s.split()) <= 20 else None
        n_actions, n_decisions = len(actions), len(decisions)
        # what was said, then the group agreeing to it ("Kodiak moves to June, we all agreed"), or the agreement
        # opening it ("By common consent, Kodiak moves to June"): one decision, the whole sentence, unless the
        # classifier is sure it is none
        agreed = len(group) > 1 and ((assent(group[-1]) and not _QUESTION.search(" ".join(group[:-1])))
                                     or (assent(group[0]) and not _QUESTION.search(" ".join(group[1:]))))
        if group:
            probs = acts.probabilities(group, embedder)
            for c, p in zip(group, probs):
                label = _label(c, p, names, things, cased)
                if label == "decision":  # the whole sentence when the rest is a few words that complete it
                    rest = [u for u in group if u != c]  # ("The decision is to launch, Harbor in Athens first")
                    short = whole and whole != c and all(len(u.split()) <= 4 for u in rest)
                    pw = acts.probabilities([whole], embedder)[0] if short else None
                    lw = _label(whole, pw, names, things, cased) if pw is not None else None
                    # an opening phrase ("After some discussion, ...", "In the end, ...") belongs to the decision
                    opening = lw == "other" and whole.endswith(c) and len(group) == 2
                    decisions.append(whole if lw == "decision" or opening else c)
                elif label == "action":
                    actions += _action(c, names, things, cased)
        # an assignment, or something settled, whose parts the clauses cut apart ("Over to Nora for the deck, end
        # of week", "From next month, claims need a receipt")
        if whole and whole not in group:
            pw = acts.probabilities([whole], embedder)[0]
            if len(actions) == n_actions and _structured(whole, pw, things, cased):
                actions += _action(whole, names, things, cased)
            elif len(decisions) == n_decisions and _label(whole, pw, names, things, cased) == "decision" \
                    and _settled(whole, things):
                decisions.append(whole)
        if agreed:
            del decisions[n_decisions:]
            if acts.probabilities([s.strip()], embedder)[0][0] < acts.VERDICT_VETO:
                decisions.append(s.strip())
    return decisions, actions


def _action(c: str, names: Sequence[str], things: Iterable[str], cased: bool) -> list[tuple[str, str, str]]:
    """[(clause, owner, task)] for a clause taken for an action item: its owner by the assignment's structure or
    by grammar, and a task of two words or more (a bullet mark is none); [] without both."""
    who = assign.assignment(c, things, cased) or owners.owner_of(c, names, things)
    task = owners.task_of(c, who[1], who[0]) if who else ""
    return [(c, who[0], task)] if who and len(re.findall(r"\w+", task)) >= 2 else []


def _structured(clause: str, p, things: Iterable[str], cased: bool) -> bool:
    """Whether the clause has an assignment's structure (a named person, a task, a time due), is no option read
    out from a menu and the classifier is not sure it is none: the structure decides, the classifier only
    vetoes."""
    return not _OPTION.search(clause) and p[0] < acts.STRUCTURE_VETO and \
        assign.assignment(clause, things, cased) is not None


# an option read out in a list, as a phone menu does ("2 to lock the room", "or 8 to exit", "press 1 for sales"):
# an instruction to a caller, never something a meeting decided or gave someone to do
_NUMBER = (r"(?:\d+|zero|one|two|three|four|five|six|seven|eight|nine|star|hash|pound)")
_OPTION = re.compile(r"^\W*(?:(?:or|and|then)\s+)?(?:(?:press|dial|enter|say|key|choose|select)\s+)?" + _NUMBER
                     + r"(?:\s*(?:,|or|and)\s*" + _NUMBER + r")*\s+(?:to|for)\b|\b(?:press|dial)\s+" + _NUMBER
                     + r"\b", re.I)


def _label(clause: str, p, names: Sequence[str], things: Iterable[str] = (), cased: bool = True) -> str:
    """decision, action or other: the classifier's likeliest class when sure enough, then grammar. A question is
    never a decision, and an action item only when it asks a person by name ("Tom, can you ...?", "could Tom
    ...?"). A commitment whose subject is one named person ("Ana will ...", "Ana agreed to ...") is that person's
    action item, not the group's decision. An option read out from a menu is neither."""
    if _OPTION.search(clause):
        return "other"
    if _structured(clause, p, things, cased):
        return "action"
    label = acts.LABELS[int(p.argmax())]
    question = bool(_QUESTION.search(clause.strip()))
    who = owners.owner_of(clause, names, things)
    if owners.handed(clause):  # a task given to someone the recognizer did not name ("it falls to ... to call")
        return "action" if who is not None and p[2] >= acts.ACTION_MIN and owners.requested(clause, who[0]) else "other"
    # a question, or a line said to the listener ("you will be given the option to ..."), is no decision
    no_decision = question or bool(_TO_LISTENER.match(clause)) or unsettled(clause)
    if not no_decision and p[0] < acts.VERDICT_VETO and _verdict(clause):
        return "decision"  # the group or an authority settling something: the structure decides, the classifier vetoes
    if label == "decision" and p[1] >= acts.DECISION_MIN and not no_decision:
        subject = who is not None and who[1] > 0 and not clause[: who[1]].strip(" ,:").count(" ")
        return "action" if subject and p[2] >= acts.SECOND_MIN else "decision"
    # an action item: the likeliest class, or a plain request to a named person ("Tom, please ...") about as likely
    # or a dated commitment of a named person ("Helen will share the results before Thursday")
    if who is not None and p[2] >= acts.ACTION_MIN and (label == "action" or
                                                        (p[2] >= p[1] and (owners.requested(clause, who[0]) or
                                                                           owners.committed(clause, who[0])))):
        return "action" if not question or owners.asks(clause, who[0]) else "other"
    if who is None and not no_decision and p[1] + p[2] >= acts.COMMIT_MIN and p[1] >= acts.COMMIT_DEC \
            and (_GROUP_SUBJECT.match(clause) or _PASSIVE_TO_DO.search(clause)):
        return "decision"
    if not no_decision and p[0] < acts.SETTLED_VETO and _settled(clause, things):
        return "decision"  # the group's commitment or a plan changed: the structure decides, the classifier vetoes
    if not no_decision and p[0] < acts.RESCHEDULED_VETO and _changed(clause, things) and due(clause):
        return "decision"  # a plan changed to a time: a schedule, more surely than a state
    return "other"


# what the group commits to with nobody named to do it is the group's decision: said of the plan or the group's
# call ("The plan is to move the depot", "our call is to drop the beta"), or a thing's fate in the passive future
# ("the depot will be moved to Leeds"); "we are trying to ..." or a task whose owner was misheard is not
_FILLER = FILLER
# the nouns that name what a group settles ("the decision", "our call", "the verdict")
_VERDICT_NOUN = (r"(?:decision|call|choice|consensus|conclusion|outcome|verdict|ruling|resolution|agreement|"
                 r"way forward)")
_GROUP_SUBJECT = re.compile(r"^\W*" + _FILLER + r"(?i:(?:the|our)\s+(?:\w+\s+)?(?:plan|" + _VERDICT_NOUN[3:] + r")\b")
# the verdict said with its noun as the subject: "our final call is to drop the beta", "the consensus is that ..."
_VERDICT_IS = re.compile(r"^\W*" + _FILLER + r"(?i:(?:the|our)\s+(?:\w+\s+)?" + _VERDICT_NOUN + r"\s+(?:is|was|has been)\s+"
                         r"(?:to\s+[a-z]+|that\b))")
_PASSIVE_TO_DO = re.compile(r"\b(?i:will|'ll|shall|is to|are to|is going to|are going to)\s+(?i:not\s+)?(?i:be|get)\s+(?:\w+ly\s+)?"
                            r"\w+(?:ed|en|wn|t)\b")


# the group commits itself ("we'll put the audit on hold until June", "we are cancelling the trial", "let's keep
# the old logo"): "we" or "let's" and a verb of doing, not one of running the meeting ("we'll hear from ...", "we
# will see how ...", "let's move on") or of a state, wish, need or reliance ("we are behind", "we need to ...", "we
# are counting on Ana to ...": Ana's task, `owners`)
_PROCESS = (r"(?:hear|see|talk|discuss|look|come|cover|start|begin|continue|wrap|take|get|try|trying|need|have|be|"
            r"think|know|want|like|find|move\s+on|go\s+(?:through|over|on|back|around|round)|circle|touch|run\s+"
            r"through|break|hand|turn|talk|ask|check|let|hope|wish|expect|say|tell|share|show|walk|meet|catch|"
            r"pick\s+up|follow|decide|figure|consider|revisit|learn|review|keep\s+going|finish|end\s+(?:here|there)|"
            r"count|counting|rely|relying|depend|depending|"
            r"stop\s+(?:here|there)|come\s+back|get\s+back|leave\s+it|do\s+that|do\s+this|remind|inform|update|"
            r"email|send|call|phone|write|let\s+\w+\s+know|circulate|report)")
_WE_COMMIT = re.compile(r"^\W*" + _FILLER + r"(?:(?i:where|so)\s+)?(?i:we\s*(?:(?:will|'ll|’ll|shall|are going to|"
                        r"'re going to|’re going to)\s+(?!(?i:" + _PROCESS + r")\b)[a-z]+|(?:are|'re|’re)\s+"
                        r"(?!(?i:" + _PROCESS + r"|going)\b)[a-z]+ing)|let(?:'s|’s| us)\s+(?!(?i:" + _PROCESS +
                        r")\b)[a-z]+)\b")
# a plan changed, said of the thing: "the launch moves to May", "Kodiak waits until June", "the trial is off"
_CHANGE = (r"(?:moves?|shifts?|switch(?:es)?|slips?|waits?|pauses?|resumes?|goes ahead|is going ahead|proceeds?|"
           r"(?:is|was|has been)\s+(?:now\s+)?(?:postponed|"
           r"cancell?ed|scrapped|dropped|delayed|paused|shelved|moved|pushed back|brought forward|off|on hold|"
           r"approved|confirmed|a go))")
# the thing opens the clause (after filler, or a short phrase and a comma: "After some debate, the launch was pushed
# back"), or follows "so", "then", "therefore"
_PLAN_CHANGE = re.compile(r"(?:^\W*" + _FILLER + r"(?:(?:[A-Za-z]+\s+){0,3}[A-Za-z]+,\s+)?|\b(?i:so|then|therefore)\s+)"
                          r"((?:(?i:the|our)\s+)?(?:[\w-]+\s+){0,2}?"
                          r"[\w-]+)\s+" + _CHANGE + r"\b")
_PRONOUN = re.compile(r"\b(?i:i|we|you|he|she|they|it|this|that|there|which|who|what|nothing|everything)\b")


_TO_LISTENER = re.compile(r"^\W*" + _FILLER + r"(?i:you|you'll|you’ll|you're|you’re|your)\b")
# an outcome labelled ("Approved: the overtime budget", "Agreed - no new hires"), or a rule from a time on ("From
# next month, claims need a receipt", "As of Monday, the door code changes")
_LABEL = r"(?i:(?:approved|agreed|decided|settled|resolved|confirmed|(?:(?:the|our)\s+)?(?:final\s+)?" + _VERDICT_NOUN + r"))"
_OUTCOME = re.compile(r"^\W*" + _FILLER + r"(?:" + _LABEL + r"\s*[:\-–—,]|(?i:(?:from|starting(?:\s+from)?|as\s+of|"
                      r"effective|beginning)\s+(?=\S)))")


def _verdict(clause: str) -> bool:
    """Whether the clause says a verdict: the group or an authority, or nobody named in the passive, with a verb of
    deciding (`models.minutes.verdict`), the verdict's noun as the subject ("our final call is to drop the beta"),
    an outcome labelled ("Final call: the launch waits until May") or a rule from a time on."""
    return verdict(clause) or bool(_VERDICT_IS.match(clause)) or _outcome(clause)



def _outcome(clause: str) -> bool:
    """An outcome labelled ("Approved: ...", "Final call: ...") or a rule from a time on ("From next month, ...",
    "From now on, ...")."""
    m = _OUTCOME.search(clause)
    return bool(m) and (m.group(0).rstrip()[-1:] in ":-–—," or due(clause[m.end():].split(",")[0]) is not None
                        or bool(re.match(r"(?i:now\s+on|today|here\s+on)\b", clause[m.end():])))


_BARE_LABEL = re.compile(r"^\W*" + _FILLER + _LABEL + r"\W*$")


def labelled_runs(timed: Sequence[tuple[str, float, float]], gap: float = 5.0) -> list[tuple[str, float, float]]:
    """The sentences in time order, a bare outcome label ("Final call.", "The verdict.", "Agreed.") joined to the
    sentence said right after it, which it labels ("Final call: the launch waits until May"), and the group's
    assent (`verdict.assent`: "We all agreed.", "Nobody disagreed.") joined to the sentence said right before it,
    which it agrees to ("Kodiak moves to June, we all agreed."): a recognizer often ends a sentence at the
    speaker's pause after the label or before the assent."""
    out: list[tuple[str, float, float]] = []
    i = 0
    while i < len(timed):
        s, a, b = timed[i]
        nxt = timed[i + 1] if i + 1 < len(timed) and timed[i + 1][1] - b <= gap else None
        if nxt and _BARE_LABEL.match(s):
            out.append((f"{s.strip().rstrip('.:;,!')}: {nxt[0].strip()}", a, max(b, nxt[2])))
            i += 2
            continue
        if nxt and assent(nxt[0]) and not assent(s) and not _QUESTION.search(s.strip()):
            said = nxt[0].strip()
            out.append((f"{s.strip().rstrip('.:;,!')}, {said[:1].lower()}{said[1:]}", a, max(b, nxt[2])))
            i += 2
            continue
        out.append((s, a, b))
        i += 1
    return out


def _settled(clause: str, things: Iterable[str]) -> bool:
    """Whether the clause has the structure of something settled with nobody named to do it: the group committing
    itself, an outcome labelled or a rule from a time on, or a thing's plan changed (its subject no pronoun and no
    person)."""
    if _WE_COMMIT.search(clause):
        return True
    if _outcome(clause):
        return True
    return _changed(clause, things)


def _changed(clause: str, things: Iterable[str]) -> bool:
    """Whether the clause says a thing's plan changed ("the launch moves to May", "the trial is off"; its subject
    no pronoun and no person)."""
    m = _PLAN_CHANGE.search(clause)
    if not m or _PRONOUN.search(m.group(1)):
        return False
    things = {t.lower() for t in things}
    return not any("person" in kind_of(w) and w.lower() not in things | stop_words()
                   for w in re.findall(r"[A-Z][a-z]+", m.group(1)))


def extract_numbers(text: str, t0: float, t1: float) -> list[Line]:
    out = []
    for s in sentences(text):
        hits = [m.group(0).strip() for m in _FIGURE_RE.finditer(digits(s))]
        hits = [h for h in hits if not re.fullmatch(r"[01]", h)]  # "1" alone is rarely a fact
        if hits:
            out.append(Line(s, t0, t1))
    return out
