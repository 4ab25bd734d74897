"""models.text.gazetteer: first names and places from maintained word lists (gender-guesser, geotext)."""
import pytest

from models.text.gazetteer import first_names, heard_places, kind_of, places


def test_lists_are_large():
    assert len(first_names()) > 30000 and len(places()) > 20000


@pytest.mark.parametrize("word,kind", [
    ("Cordelia", {"person"}), ("Kenji", {"person"}), ("Aditya", {"person"}), ("Uppsala", {"place"}),
    ("Winnipeg", {"place"}), ("new york", {"place"}), ("Florence", {"person", "place"}),
    ("Northgate", set()), ("Mosaic", set()), ("", set()),
])
def test_kind_of(word, kind):
    assert kind_of(word) == kind


@pytest.mark.parametrize("line,found", [
    ("Samples for Mosaic are analyzed in to lose.", [("to lose", "toulouse")]),
    ("Zephyr in headquarter in stock home,", [("stock home", "stockholm")]),
    ("Containers for Gondola leaned from bridges.", [("bridges", "bruges")]),  # Brugge's other name
    ("Samples for Tortoise are analyzed in loosen,", [("loosen", "lucerne")]),
    ("The Pebble stock is kept in Brahmin.", []),  # capitalized: the recognizer's own name, not corrected
    ("Samples for Tortoise are analysed in Lucerne.", []),          # a place already
    ("We are going to hire more people in the spring.", []),        # common words
    ("I will talk to Maria at noon.", []),                          # a person
    ("It was sent to the team in time.", []),
    ("Press 1 to accept this recording.", []),
    ("Please hold while we try to connect you.", []),
])
def test_places_heard_as_other_words(line, found):
    assert heard_places(line) == found
