"""Whether a clause says a verdict: the group or an authority choosing, approving, rejecting, cancelling,
postponing, stopping or adopting something, whatever verb the speaker picks.

A decision has the same structure in every wording: WHO settles it (the group or an authority, never one named
person: "we", "everyone", a collective noun such as "the board", "management", "the panel", any committee; or
nobody named, in an agentless passive: "the extension has been approved", "the proposal was turned down"), a
VERDICT verb, and WHAT it is about (the object, or the passive's subject). The verb is recognised by its class in
WordNet (`models.minutes.wordnet`), not by a list of phrasings: a verb is a verdict when one of its commonest senses
is, or falls under, one of the senses in `SEEDS` (decide, choose, approve, reject, veto, cancel, postpone,
discontinue, abandon, adopt, appoint, relocate ...), so "nixed", "shelved", "vetoed", "ditched", "scrapped", "turned down",
"ruled out", "called off" and "voted down" are verdicts without being written anywhere, and "discussed",
"reviewed" or "sent" are not. The collective subject is a noun whose commonest senses include a social group
(WordNet's noun.group: board, committee, panel, council, team, staff, management, leadership, jury ...) or the
plural of a person noun (the trustees, the directors, the partners).

Not a verdict: a question, a condition ("if the bid is turned down"), a time past ("cancelled last year", "in
2019"), something said of the listener ("your appointment has been confirmed"), or a report (the clause does not
open with the subject: "Priya said the client rejected the draft"). An authority's future ("the board will approve
it on Friday") is an event to come; only the group's own future ("we will cancel the trial") commits it.
"""
from __future__ import annotations

import functools
import re
from typing import Optional

from . import wordnet
from .due import past

# (lemma, WordNet sense number): the verdict senses. A verb is a verdict when one of its first SENSES senses is one
# of these or lies under one within DEPTH hypernym steps, and that sense is the verb's commonest or one it names
# first among its synonyms (a sense it only shares is another word's: "fix" names "specify" fourth, so "the bug has
# been fixed" is no decision, while "the offer was accepted" is one).
SEEDS = (("decide", 1), ("decide", 2), ("choose", 1), ("choose", 2), ("approve", 1), ("authorize", 1),
         ("reject", 1), ("reject", 2), ("reject", 4), ("veto", 1), ("forbid", 1), ("cancel", 1), ("cancel", 3),
         ("postpone", 1), ("discontinue", 1), ("discontinue", 2), ("abandon", 2), ("discard", 1), ("adopt", 1),
         ("accept", 3), ("appoint", 1), ("phase_out", 1), ("pull_the_plug", 1), ("revoke", 1), ("relocate", 1),
         ("relocate", 2))
SENSES = 3
DEPTH = 3


@functools.lru_cache(maxsize=1)
def _seeds() -> frozenset[int]:
    return frozenset(o for lemma, n in SEEDS if (o := wordnet.sense_of(lemma, n)) is not None)


@functools.lru_cache(maxsize=20_000)
def verdict_verb(word: str) -> bool:
    """Whether the verb (any inflection; "turn_down" for a phrasal verb) is a verdict."""
    if not wordnet.available():
        return False
    seeds = _seeds()
    return any(wordnet.ancestors(o, "v", DEPTH) & seeds
               for base in wordnet.base_forms(word, "v") for i, o in enumerate(wordnet.senses(base, "v")[:SENSES])
               if i == 0 or wordnet.synset(o, "v")[0][0] == base)


@functools.lru_cache(maxsize=20_000)
def collective(noun: str) -> bool:
    """Whether the noun names a group that can settle something: one of its commonest senses is a social group
    (WordNet's noun.group), or it is the plural of a person noun ("trustees")."""
    if not wordnet.available():
        return False
    low = noun.lower()
    if any(wordnet.lexfile(o, "n") == wordnet.NOUN_GROUP or "group" in wordnet.synset(o, "n")[0]
           for o in wordnet.senses(low, "n")[:SENSES]):
        return True
    return low.endswith("s") and any(wordnet.lexfile(o, "n") == wordnet.NOUN_PERSON
                                     for b in wordnet.base_forms(low, "n") if b != low
                                     for o in wordnet.senses(b, "n")[:1])


# words that open a clause and say nothing ("So, ...", "Okay then, ...")
FILLER = r"(?:(?i:so|and|okay|ok|right|then|well|um|uh|also|alright|good|fine|great|yes|yeah|now)\W+)*"
_FILLER = FILLER
# an opening phrase before the subject: "After some discussion, ...", "In the end, ...", "As of today, ..."
_OPENING = r"(?:(?:after|in|following|at|as|with|on|by)\b[^,;:]{0,40},\s*)?"
_DETS = frozenset("the our this that these those a an its their".split())
_ADV = r"(?:(?:has|have|had|'ve|’ve|just|now|finally|formally|officially|unanimously|all|also|then|already|today|" \
       r"both|jointly|collectively|duly|effectively|basically|actually|simply|quietly)\s+)*"
_WE = r"(?:we|everyone|everybody|all of us|the two of us|both of us)"
_PARTICLES = ("down", "off", "out", "up", "back", "through", "in", "over", "aside", "away")
# a passive's auxiliary: "has been", "was", "is being", "will be", "will not be", "gets", "got"
_PASSIVE = (r"(?:has|have|had|'s|’s)\s+(?:now\s+|just\s+|also\s+|officially\s+|finally\s+)?been|was|were|is|are|'s|’s|"
            r"is being|are being|(?:will|'ll|’ll|shall)\s+(?:not\s+)?be|won't be|won’t be|is going to be|"
            r"are going to be|gets|got|has got|get")
_CONDITION = re.compile(r"\b(?:if|unless|whether|once|when|until|whatever|in case)\b")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_TOKEN = r"[a-z][a-z'’-]*"


def _verb_at(words: list[str], i: int) -> Optional[int]:
    """How many words the verdict verb at words[i] takes (1, or 2 for a phrasal verb "turned down"), or None."""
    if i >= len(words):
        return None
    w = words[i]
    if i + 1 < len(words) and words[i + 1] in _PARTICLES:
        phrasal = [f"{b}_{words[i + 1]}" for b in wordnet.base_forms(w, "v")]
        known = [p for p in phrasal if wordnet.senses(p, "v")]
        if known:  # a phrasal verb WordNet knows decides: "turn down" is a verdict, "turn up" is not
            return 2 if any(verdict_verb(p) for p in known) else None
    return 1 if verdict_verb(w) else None


def _group_subject(head: str) -> bool:
    return bool(re.fullmatch(_WE, head)) or collective(head.split()[-1])


_START = re.compile(r"^\W*" + _FILLER + _OPENING + _FILLER)
_AUX = re.compile(r"^" + _ADV + r"(?P<aux>(?:(?:will|shall|are going to|are)\s+(?:not\s+)?)?)")
_PASSIVE_RE = re.compile(r"^(?P<aux>" + _PASSIVE + r")\s+(?:not\s+)?(?:(?:now|officially|formally|finally|also|just|"
                         r"unanimously|been|already|effectively|\w+ly)\s+)?")
_CONTRACTION = ((r"(?<=\w)['’]ve\b", " have"), (r"(?<=\w)['’]re\b", " are"), (r"\b(?:won['’]t)\b", "will not"),
                (r"(?<=\w)['’]ll\b", " will"), (r"\bcan['’]t\b", "can not"), (r"(?<=\w)n['’]t\b", " not"))


def _active(words: list[str], i: int, subj: list[str]) -> bool:
    """The group or an authority as the subject, then the verdict verb: "the panel rejected", "leadership has
    nixed", "we are scrapping", "we will cancel"."""
    head = " ".join(subj)
    we = bool(re.fullmatch(_WE, head))
    if not we and not (subj[-1] not in _NOT_SUBJECT_WORDS and collective(subj[-1])):
        return False
    m = _AUX.match(" ".join(words[i:]) + " ")
    aux = m.group("aux").strip()
    j = i + len(m.group(0).split())
    if j >= len(words):
        return False
    w = words[j]
    if not aux:
        form = w.endswith(("ed", "s")) or w in _IRREGULAR_PAST
    else:  # only the group's own future commits it ("the board will approve it" is an event to come)
        form = we and (w.endswith("ing") if aux.split()[0] == "are" and "going" not in aux else True)
    if form and _verb_at(words, j) is not None:
        return True
    # "the group voted to retire ...", or the verb before "to" misheard as no English verb ("the group voggin to
    # retire the prototype"): the group's verb, then the verdict
    return not aux and j + 2 < len(words) and words[j + 1] == "to" and _verb_at(words, j + 2) is not None and (
        verdict_verb(w) or not wordnet.base_forms(w, "v"))


def _passive(words: list[str], i: int, subj: list[str]) -> bool:
    """Nobody named, in the passive: "the extension has been approved", "the trip is postponed", "the proposal
    was turned down" (an agent that is a person makes it that person's act, not the group's)."""
    if subj[0] in _NOT_SUBJECT_WORDS or subj[-1] in _NOT_SUBJECT_WORDS and len(subj) == 1:
        return False
    m = _PASSIVE_RE.match(" ".join(words[i:]) + " ")
    if not m:
        return False
    j = i + len(m.group(0).split())
    if j >= len(words) or not re.search(r"(?:ed|en|wn|t|d)$", words[j]):
        return False
    n = _verb_at(words, j)
    if n is None:
        return False
    after = words[j + n:]
    return not (after[:1] == ["by"] and len(after) <= 3 and not collective(after[-1]))


def verdict(clause: str) -> bool:
    """Whether the clause has a verdict's structure (see the module's doc)."""
    c = clause.strip()
    if not c or c.endswith("?") or not wordnet.available():
        return False
    low = re.sub(r"\s+", " ", c.lower())
    for rx, repl in _CONTRACTION:
        low = re.sub(rx, repl, low)
    if unsettled(low):
        return False
    start = _START.match(low)
    if _CONDITION.search(low[: start.end()]):
        return False
    words = re.findall(_TOKEN, low[start.end():])
    k0 = 1 if words and words[0] in _DETS else 0
    for k in range(1, 6):  # the subject: up to five words ("the finance committee", "the extension to the car park")
        if k0 + k >= len(words) or _CONDITION.fullmatch(words[k0 + k - 1]):
            break
        subj = words[:k0 + k]
        if len(subj) <= k0 + 3 and _active(words, k0 + k, subj[k0:] or subj):
            return True
        if _passive(words, k0 + k, subj):
            return True
    return False


# what leaves a matter open, whatever verb follows: a proposal or an opinion ("I suggest we ...", "maybe we could
# ...", "we should ...", "I'd rather we ..."), a condition ("if the bid is turned down"), a choice still to make
# ("whether to close the depot"); "I'd" and "we'd" as one word too
_OPEN = re.compile(r"^\W*" + _FILLER + r"(?:(?:i|we)(?:\s+would|['’]d)?\s+(?:suggest|propose|recommend|think|feel|"
                   r"believe|reckon|guess|wonder|rather|prefer|like)|maybe|perhaps|possibly|how about|what about|"
                   r"what if|why don't|ideally|if|unless|in case|provided|supposing)\b|\bwe\s+(?:could|might|"
                   r"should|may|would|ought)\b|\bwhether\b")


def unsettled(clause: str) -> bool:
    """Whether the clause leaves the matter open or tells of an earlier time: a proposal, an opinion, a
    condition, a choice still to make, or a time past ("last month the committee approved ...", "in 2019")."""
    low = clause.strip().lower()
    return bool(_OPEN.search(low) or _YEAR.search(low) or past(low))


_NOT_SUBJECT_WORDS = frozenset("i you your he she they him her them his my me who what which there this that it's "
                               "something anything nothing nobody someone".split())


# the past tense of irregular verbs that may be verdicts (WordNet's exception list maps them to their base)
_IRREGULAR_PAST = frozenset(("chose", "struck", "threw", "put", "cut", "shot", "gave", "took", "overrode", "withdrew",
                             "upheld", "forbade", "forbid", "broke", "let", "set", "quit", "shut", "kept"))


# agreeing, and objecting, by their senses in WordNet: "we all agreed", "everyone concurred", "the board consented";
# "nobody disagreed", "no one objected", "none of us dissented"
_ASSENT_SEEDS = (("agree", 1), ("agree", 2), ("consent", 1), ("assent", 1), ("approve", 1))
_DISSENT_SEEDS = (("disagree", 1), ("object", 1), ("dissent", 1), ("protest", 2), ("oppose", 1))
_NOBODY = r"(?:nobody|no one|no-one|none of us|not one of us|not a single person|no one here)"
_ASSENT_TAIL = r"(?:\s+(?:with|on|to)\s+(?:it|that|this|them))?(?:\s+(?:too|either|as well|unanimously))?"


@functools.lru_cache(maxsize=8)
def _senses_under(seeds: tuple, pos: str = "v") -> frozenset[int]:
    return frozenset(o for lemma, n in seeds if (o := wordnet.sense_of(lemma, n, pos)) is not None)


def _verb_in(word: str, seeds: tuple) -> bool:
    roots = _senses_under(seeds)
    return any(o in roots or wordnet.ancestors(o, "v", 1) & roots
               for base in wordnet.base_forms(word, "v") for o in wordnet.senses(base, "v")[:2])


def assent(sentence: str) -> bool:
    """Whether the sentence is only the group agreeing to what was said before it: the group (or nobody) as the
    subject, a verb of agreeing (of objecting, after nobody) and nothing agreed on named ("We all agreed.",
    "Everyone concurred.", "Nobody disagreed.", "No one objected to that."), or the same said with a noun ("With
    everyone's blessing.", "No objections.", "The room was unanimous.": `_said_as_noun`). Said right after a
    proposal, or before it as its opening ("By common consent, ..."), it makes the proposal the group's decision
    (`models.minutes.extract.labelled_runs`, `_classified`)."""
    c = sentence.strip()
    if not c or c.endswith("?") or not wordnet.available():
        return False
    low = re.sub(r"\s+", " ", c.lower()).rstrip(" .!")
    low = re.sub(r"^\W*" + _FILLER, "", low)
    m = re.fullmatch(r"(?P<who>" + _WE + r"|" + _NOBODY + r"|(?:the\s+)?(?:whole\s+)?[a-z]+)(?:\s+all)?\s+" + _ADV
                     + r"(?P<verb>[a-z]+)" + _ASSENT_TAIL, low)
    return bool(m) and _said_as_verb(m) or _said_as_noun(low)


def _said_as_verb(m: re.Match) -> bool:
    who, verb = m.group("who"), m.group("verb")
    if re.fullmatch(_NOBODY, who):
        return _verb_in(verb, _DISSENT_SEEDS)
    if not (re.fullmatch(_WE, who) or collective(who.split()[-1])):
        return False
    return not verb.endswith("ing") and _verb_in(verb, _ASSENT_SEEDS)


# agreeing said with a noun: the group's consent ("with everyone's blessing", "by common consent"), no objection
# ("no objections", "without dissent"), or the group of one mind ("the room was unanimous", "we were all in
# agreement", "all in favour"). The noun by its senses in WordNet: one of its commonest is, or falls under
# within two steps, agreement of opinion, approval or consent (objection, dissent or disagreement after "no")
_CONSENT_NOUN_SEEDS = (("agreement", 3), ("approval", 1), ("approval", 2), ("consent", 1), ("assent", 1))
_OBJECTION_NOUN_SEEDS = (("objection", 1), ("objection", 2), ("objection", 3), ("dissent", 1), ("dissent", 2),
                         ("disagreement", 1))
_APOS = r"['’]s"
_GROUPS = (r"(?P<own>everyone" + _APOS + r"|everybody" + _APOS + r"|our|the\s+(?:whole\s+)?(?P<group>[a-z]+)" + _APOS
           + r"|common|general|full|unanimous|mutual|broad|universal)")
_BY_CONSENT = re.compile(r"(?:with|by|on|after)\s+" + _GROUPS + r"\s+(?P<noun>[a-z]+)")
_NO_OBJECTION = re.compile(r"(?:there\s+(?:was|were)\s+)?(?:no|without(?:\s+any)?)\s+(?P<noun>[a-z]+)"
                           r"(?:\s+(?:from\s+anyone|at\s+all|whatsoever))?")
_OF_ONE_MIND = re.compile(r"(?P<who>" + _WE + r"|all|(?:the\s+)?(?:whole\s+)?[a-z]+)(?:\s+(?:was|were|is|are))?"
                          r"(?:\s+all)?\s+(?:(?P<adj>[a-z]+)|in\s+(?P<noun>[a-z]+))")


def _noun_in(word: str, seeds: tuple) -> bool:
    roots = _senses_under(seeds, "n")
    return any(o in roots or wordnet.ancestors(o, "n", 2) & roots
               for base in wordnet.base_forms(word, "n") for o in wordnet.senses(base, "n")[:SENSES])


def _unanimous(word: str) -> bool:
    """An adjective of one sense with "unanimous" (WordNet: "in complete agreement")."""
    one = wordnet.sense_of("unanimous", 1, "a")
    return one is not None and one in wordnet.senses(word, "a")


def _said_as_noun(low: str) -> bool:
    """`assent` said with a noun (lower case, no final stop): the group's consent, no objection, or the group of
    one mind."""
    m = _BY_CONSENT.fullmatch(low)
    if m:
        group = m.group("group")
        return (group is None or collective(group)) and _noun_in(m.group("noun"), _CONSENT_NOUN_SEEDS)
    m = _NO_OBJECTION.fullmatch(low)
    if m:
        return _noun_in(m.group("noun"), _OBJECTION_NOUN_SEEDS)
    m = _OF_ONE_MIND.fullmatch(low)
    if m and m.group("adj"):  # only a group is unanimous ("the room was unanimous", "the vote was unanimous")
        return _unanimous(m.group("adj"))
    if m:
        who = m.group("who")
        return (bool(re.fullmatch(_WE + r"|all", who)) or collective(who.split()[-1])) and \
            _noun_in(m.group("noun"), _CONSENT_NOUN_SEEDS)
    return False
