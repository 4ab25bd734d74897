"""Which capitalized words are people's first names and which are places, from two maintained word lists:
gender-guesser (about 40,000 first names of many countries, from Jörg Michael's name dictionary) and geotext (the
GeoNames cities of 15,000 people or more, and the countries).

A question asks "who" or "where"; a line of evidence answers it only with a value of that kind. Both lists are
general, not fitted to any meeting: a word in both ("Florence", "Paris", "Austin") counts as both, a word in
neither (a product, a company, a misspelt name) as neither.

    kind_of("Cordelia") -> {"person"};  kind_of("Uppsala") -> {"place"};  kind_of("Florence") -> {"person", "place"}
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Lower-case first names (empty when gender-guesser is not installed)."""
    try:
        from gender_guesser.detector import Detector
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return frozenset()
    return frozenset(n.lower() for n in Detector(case_sensitive=False).names)


@lru_cache(maxsize=1)
def places() -> frozenset[str]:
    """Lower-case city and country names, one word or several (empty when geotext is not installed)."""
    try:
        from geotext.geotext import build_index
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return frozenset()
    idx = build_index()
    return frozenset(list(idx.cities) + list(idx.countries))


def kind_of(word: str) -> set[str]:
    """{"person"}, {"place"}, both or neither for one word or name ("New York")."""
    w = word.strip().lower()
    out = set()
    if w in first_names():
        out.add("person")
    if w in places():
        out.add("place")
    return out
