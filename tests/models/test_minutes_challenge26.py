"""Decisions and action items in wording the minutes were never tuned on: the session-26 challenge set
tests/models/minutes_challenge26.tsv (written before any code change, apart from the bench's meeting generator; its
check half only scored, at the start and the end), through the product path with the bundled embedder (the
minutes read sentences with all-mpnet-base-v2 where it is installed: `models.minutes.acts.classifier_embedder`)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def embedder():
    from models.text_embed import TextEmbedder

    return TextEmbedder()


def _rows(half: str) -> list[list[str]]:
    path = Path(__file__).with_name("minutes_challenge26.tsv")
    rows = [ln.split("\t") for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [r for r in rows if r[0] == half]


@pytest.mark.parametrize("sentence", [
    "The trustees gave the thumbs up to the roof repairs.",  # an idiom of approval, an authority
    "The directors have given Falcon the go-ahead.",  # a project's name as the object
    "the plan for a second depot got knocked back by the regional office",  # lower case, a phrasal verb
    "The executive team endorsed the Dublin hub.",
    "Overtime over the holidays has been authorised.",  # agentless passive
    "From now on we book travel through the portal.",  # a rule from a time on
    "The summer fair is pushed back a month.",  # a plan moved
    "We'll run with the second design.",
])
def test_idioms_verdicts_rules_and_moves_are_decisions(embedder, sentence):
    from models.minutes.extract import extract_actions, extract_decisions

    assert [d.text for d in extract_decisions(sentence, 0, 1, embedder=embedder)] == [sentence]
    assert extract_actions(sentence, 0, 1, embedder=embedder) == []


@pytest.mark.parametrize("sentence,owner", [
    ("Send the minutes round by Friday, Ingrid.", "Ingrid"),  # the owner addressed last
    ("Oskar: book the minibus before the trip.", "Oskar"),  # labelled
    ("Agatha's action: fix the door entry by Monday.", "Agatha"),  # possessive label
    ("Ask Lucinda to post the job advert tomorrow.", "Lucinda"),
    ("It's down to Ambrose to fix the projector before Thursday.", "Ambrose"),
    ("fatima to send round the survey link before monday", "fatima"),  # lower case, minutes style
    ("piotr can you get the quotes in by the fifteenth", "piotr"),
])
def test_action_items_in_varied_forms_have_their_owner(embedder, sentence, owner):
    from models.minutes.extract import extract_actions, extract_decisions

    assert [a.owner.lower() for a in extract_actions(sentence, 0, 1, embedder=embedder)] == [owner.lower()]
    assert extract_decisions(sentence, 0, 1, embedder=embedder) == []


@pytest.mark.parametrize("sentence", [
    "Chair: Dolores",  # a slide's label
    "Last year the board pulled the plug on the Berlin office.",  # a past event
    "Gustav gave the thumbs up to the plan back in March, before he left.",
    "Maybe we should push the fair back a month?",  # an open proposal, a question
    "Imelda reckons the tender is dead in the water.",  # an opinion reported
    "Horatio finished the storeroom clear-out yesterday.",  # a task done
    "we talked about the car share scheme for a while but didn't land anywhere",
])
def test_past_events_opinions_questions_and_labels_are_neither(embedder, sentence):
    from models.minutes.extract import extract_actions, extract_decisions

    assert extract_decisions(sentence, 0, 1, embedder=embedder) == []
    assert extract_actions(sentence, 0, 1, embedder=embedder) == []


# (half, decisions found at least, action items with their owner at least, false decisions at most, false action
# items at most): session 26 before -> after, tune: decisions 17 -> 25 / 30, action items 19 -> 19 / 20, false
# decisions 2 -> 2, false action items 1 -> 0; check (never looked at while changing code): decisions 15 -> 21 / 30,
# action items 17 -> 17 / 20, false decisions 1 -> 0, false action items 1 -> 0
CHECK = {"tune": (25, 19, 2, 0), "check": (21, 17, 0, 0)}


@pytest.mark.parametrize("half", ["tune", "check"])
def test_the_challenge_set_through_the_product_path(embedder, half):
    from models.minutes.extract import extract_actions, extract_decisions

    rows = _rows(half)
    assert len(rows) == 70 and sum(r[1] == "decision" for r in rows) == 30 and sum(r[1] == "action" for r in rows) == 20
    found = actions = false_dec = false_act = 0
    for _, label, owner, sentence in rows:
        decs = extract_decisions(sentence, 0, 1, embedder=embedder)
        owners = {a.owner.lower() for a in extract_actions(sentence, 0, 1, embedder=embedder)}
        found += label == "decision" and bool(decs)
        false_dec += label != "decision" and bool(decs)
        actions += label == "action" and owner.lower() in owners
        false_act += bool(owners - {owner.lower()}) if label == "action" else bool(owners)
    min_dec, min_act, max_fdec, max_fact = CHECK[half]
    assert found >= min_dec and actions >= min_act, (half, found, actions)
    assert false_dec <= max_fdec and false_act <= max_fact, (half, false_dec, false_act)
