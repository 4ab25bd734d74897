"""Sound likeness by the pronunciation dictionary (models.text.phonetic): the confusions a recognizer makes cost
half, and what it keeps apart does not match."""
import pytest

from models.text.phonetic import phonemes, similarity, sound_alike


def test_phonemes_drop_stress_and_join_words():
    assert phonemes("lynx") == ("L", "IH", "NG", "K", "S")
    assert phonemes("see the") == ("S", "IY", "DH", "AH")
    assert phonemes("zzqxv") is None


@pytest.mark.parametrize("name,heard,low,high", [
    ("lynx", "links", 1.0, 1.0),            # a homophone
    ("thistle", "fissile", 0.85, 0.95),     # TH for F: half a substitution
    ("granite", "planet", 0.75, 0.8),       # G/P differ, R/L are near
    ("cedar", "see the", 0.75, 0.8),        # two words said as one
    ("mandolin", "gondola", 0.0, 0.7),      # another name, not a mishearing of it
    ("kenya", "can go", 0.0, 0.7),
])
def test_sound_alike(name, heard, low, high):
    assert low <= sound_alike(name, heard) <= high


def test_similarity_is_an_edit_distance():
    assert similarity(("A",), ("A",)) == 1.0
    assert similarity(("P",), ("B",)) == 0.5
    assert similarity(("P", "AE"), ()) == 0.0
    assert similarity(("K", "AE", "T"), ("K", "AE", "T", "S")) == 0.75
