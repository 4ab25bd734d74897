"""models.text.gazetteer: first names and places from maintained word lists (gender-guesser, geotext)."""
import pytest

from models.text.gazetteer import first_names, kind_of, places


def test_lists_are_large():
    assert len(first_names()) > 30000 and len(places()) > 20000


@pytest.mark.parametrize("word,kind", [
    ("Cordelia", {"person"}), ("Kenji", {"person"}), ("Aditya", {"person"}), ("Uppsala", {"place"}),
    ("Winnipeg", {"place"}), ("new york", {"place"}), ("Florence", {"person", "place"}),
    ("Northgate", set()), ("Mosaic", set()), ("", set()),
])
def test_kind_of(word, kind):
    assert kind_of(word) == kind
