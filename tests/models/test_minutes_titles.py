"""Titles of sections without slides (models.minutes.summarize._heading): the key phrase of the section's speech, as
it was said, chosen by how distinctive its words are for this section (RAKE-like), not a list of keywords."""
from collections import Counter

import pytest

from models.minutes.summarize import _Informative, _heading, _runs
from models.text.words import content, stem

SECTIONS = [
    ["Let's turn to the hiring plan for the Kestrel office.", "We want four engineers for Kestrel by May.",
     "The Kestrel hiring plan needs a budget too."],
    ["Customer growth at Lumen slowed in the third quarter.", "Lumen lost two customers to a competitor.",
     "Does anyone have questions?"],
    ["Does anyone have questions?", "Okay, thank you."],
]


def _titles(sections):
    timed = [[(s, 0.0, 1.0) for s in sec] for sec in sections]
    info = _Informative([s for sec in sections for s in sec])
    df = Counter(k for sec in sections for k in {stem([w])[0] for s in sec for w in content(s)})
    return [_heading(t, info, df, len(sections)) for t in timed]


def test_titles_are_key_phrases_said_in_their_section():
    kestrel, lumen, chatter = _titles(SECTIONS)
    assert "Kestrel" in kestrel and kestrel.lower() in " ".join(SECTIONS[0]).lower(), kestrel
    assert "Lumen" in lumen or "growth" in lumen.lower(), lumen
    assert lumen.lower() in " ".join(SECTIONS[1]).lower(), lumen
    assert ":" not in kestrel + lumen + chatter  # no "Discussion: a, b, c" lists


@pytest.mark.parametrize("sentence, runs", [
    ("Moving on to kite training program, kite launches with North Star.",
     [["Moving"], ["kite", "training", "program"], ["kite", "launches"], ["North", "Star"]]),
    ("The next review is on March 8th.", [["review"], ["March"]]),
    ("To meet Rayon's Iris project team leads quickly today", [["meet", "Rayon", "Iris", "project"],
                                                                ["Rayon", "Iris", "project", "team"],
                                                                ["Iris", "project", "team", "leads"],
                                                                ["project", "team", "leads", "quickly"],
                                                                ["team", "leads", "quickly", "today"]]),
])
def test_runs_of_content_words(sentence, runs):
    assert _runs(sentence) == runs
