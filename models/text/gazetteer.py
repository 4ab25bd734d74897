"""Which capitalized words are people's first names and which are places, from two maintained word lists:
gender-guesser (about 40,000 first names of many countries, from Jörg Michael's name dictionary) and geotext (the
GeoNames cities of 15,000 people or more, and the countries).

A question asks "who" or "where"; a line of evidence answers it only with a value of that kind. Both lists are
general, not fitted to any meeting: a word in both ("Florence", "Paris", "Austin") counts as both, a word in
neither (a product, a company, a misspelt name) as neither.

    kind_of("Cordelia") -> {"person"};  kind_of("Uppsala") -> {"place"};  kind_of("Florence") -> {"person", "place"}
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path


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


# a place a recognizer misheard is sought among the larger ones only: a small town's name is too often a common word
BIG_PLACE = 50_000
PLACE_SOUND = 0.8       # how alike in sound (`phonetic.sound_alike`, or `words.likeness` without a pronunciation)
_LATIN = re.compile(r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+)?")
_PLACE_SLOT = re.compile(r"\b(?:in|at|from|near)\s+(?=([A-Za-z][\w'-]*)(?:\s+([A-Za-z][\w'-]*))?)", re.I)


@lru_cache(maxsize=1)
def big_places() -> dict[str, list[str]]:
    """{first letter: lower-case names} of the GeoNames cities of BIG_PLACE people or more (geotext's data file)
    and the countries."""
    out: dict[str, list[str]] = {}
    try:
        import geotext
        from geotext.geotext import build_index
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return out
    names = set(build_index().countries)
    path = Path(geotext.__file__).parent / "data" / "cities15000.txt"
    with open(path, encoding="utf-8") as f:
        for row in f:
            col = row.split("\t")
            if len(col) > 14 and col[14].isdigit() and int(col[14]) >= BIG_PLACE:
                # the name, its ASCII form and its other names in Latin letters ("Bruges" and "Brugge")
                names |= {n.lower() for n in [col[1], col[2]] + col[3].split(",") if _LATIN.fullmatch(n)}
    for n in names:
        if n[:1].isalpha():
            out.setdefault(n[0], []).append(n)
    return out


def place_heard_as(heard: str) -> str:
    """The city or country (`big_places`) that the lower-case word or words `heard` most likely are, as a
    recognizer wrote a place it did not know ("stock home" for Stockholm, "to lose" for Toulouse, "bridges" for
    Bruges): same first letter (a recognizer keeps a word's onset) and alike in sound >= PLACE_SOUND by the
    pronunciation dictionary (both must be in it: spelling and Metaphone alone match far too much). "" when none
    is, or when either has fewer than 4 phonemes (one vowel apart is then alike: "noon" and Nan), `heard` is capitalized (the recognizer took it for a name, and many places are missing from the
    lists: "Lucerne"), a place or a person itself, only stop words, or one of the commonest words."""
    from .phonetic import phonemes, similarity
    from .words import common_word, stop_words

    if heard != heard.lower():
        return ""  # the recognizer took it for a name: its spelling is its own (a place the lists lack: "Lucerne")
    heard = heard.strip()
    ws = heard.split()
    said = phonemes(heard)
    stop = stop_words()
    # a word that is a place, or a person's name that is no stop word ("the" is also a first name), is itself
    named = any("place" in kind_of(w) or (kind_of(w) and w not in stop) for w in ws)
    if not said or len(said) < 4 or kind_of(heard) or named or all(w in stop for w in ws) or \
            (len(ws) == 1 and common_word(heard)):
        return ""
    best, best_sound = "", PLACE_SOUND
    slack = (1.0 - PLACE_SOUND) * len(said) / PLACE_SOUND  # more phonemes apart than this cannot be alike enough
    for name in big_places().get(heard[0], []):
        pron = phonemes(name)
        if not pron or len(pron) < 4 or abs(len(pron) - len(said)) > slack:
            continue
        sound = similarity(pron, said)
        if sound >= best_sound and (sound > best_sound or not best):
            best, best_sound = name, sound
    return best


def heard_places(line: str) -> list[tuple[str, str]]:
    """(heard words, place) for each word or two in a place's slot of a line (after "in", "at", "from", "near";
    not "to", which is also an infinitive's: "to cancel the") that no place is but one sounds like
    (`place_heard_as`)."""
    out = []
    for m in _PLACE_SLOT.finditer(line or ""):
        one, two = m.group(1), m.group(2)
        if kind_of(one) & {"place"} or (two and kind_of(f"{one} {two}") & {"place"}):
            continue
        for heard in ([f"{one} {two}"] if two else []) + [one]:
            place = place_heard_as(heard)
            if place:
                out.append((heard, place))
                break
    return out
