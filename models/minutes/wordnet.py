"""Princeton WordNet 3.0, read from the database files Debian's `wordnet-base` package installs
(/usr/share/wordnet; `packages-apt.txt`), in their documented format (wndb(5WN), morphy(7WN)): a word's senses in
order of frequency, each sense's synonyms and hypernyms, and a word's base form (morphy: the exception lists, then
the detachment rules).

NLTK reads the same files but refuses them where Debian puts them (its path sandbox, and a `lexnames` file Debian
does not ship) and its own data download is a hub: reading the two documented line formats here is smaller than
working around either.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

ROOT = Path(os.environ.get("VIGIL_WORDNET", "/usr/share/wordnet"))
_POS = {"v": "verb", "n": "noun", "a": "adj", "r": "adv"}
NOUN_GROUP, NOUN_PERSON = 14, 18  # lexicographer files noun.group and noun.person (lexnames(5WN); `lexfile`)
# morphy's detachment rules, per part of speech (morphy(7WN))
_RULES = {"v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
          "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
                ("ies", "y")]}


def available() -> bool:
    return (ROOT / "index.verb").is_file() and (ROOT / "data.verb").is_file()


@functools.lru_cache(maxsize=None)
def _index(pos: str) -> dict[str, tuple[int, ...]]:
    """lemma -> its synsets' offsets in data.<pos>, the most frequent sense first."""
    out = {}
    with open(ROOT / f"index.{_POS[pos]}", encoding="latin-1") as f:
        for line in f:
            if line.startswith(" "):
                continue  # the license header
            p = line.split()
            n_ptr = int(p[3])
            n_syn = int(p[2])
            out[p[0]] = tuple(int(x) for x in p[6 + n_ptr:6 + n_ptr + n_syn])
    return out


@functools.lru_cache(maxsize=None)
def _exceptions(pos: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    with open(ROOT / f"{_POS[pos]}.exc", encoding="latin-1") as f:
        for line in f:
            p = line.split()
            if len(p) > 1:
                out[p[0]] = out.get(p[0], ()) + tuple(p[1:])
    return out


@functools.lru_cache(maxsize=None)
def _data(pos: str) -> bytes:
    return (ROOT / f"data.{_POS[pos]}").read_bytes()


@functools.lru_cache(maxsize=200_000)
def synset(offset: int, pos: str = "v") -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(the synset's lemmas, its hypernyms' offsets) from its line in data.<pos>."""
    data = _data(pos)
    line = data[offset:data.index(b"\n", offset)].decode("latin-1").split(" | ")[0].split()
    n_words = int(line[3], 16)
    lemmas = tuple(line[4 + 2 * i].lower() for i in range(n_words))
    i = 4 + 2 * n_words
    n_ptr = int(line[i])
    hyper = tuple(int(line[i + 2 + 4 * k]) for k in range(n_ptr)
                  if line[i + 1 + 4 * k] in ("@", "@i") and line[i + 3 + 4 * k] == pos)
    return lemmas, hyper


def senses(lemma: str, pos: str = "v") -> tuple[int, ...]:
    """The synsets of a lemma ("turn_down" for a phrasal verb), the most frequent first; () when unknown."""
    return _index(pos).get(lemma.lower().replace(" ", "_"), ())


def base_forms(word: str, pos: str = "v") -> list[str]:
    """The word's base forms that WordNet knows ("chose" -> choose, "scrapped" -> scrap, "greenlit" -> ...)."""
    w = word.lower()
    index = _index(pos)
    out = [w] if w in index else []
    out += [b for b in _exceptions(pos).get(w, ()) if b in index]
    for suffix, repl in _RULES.get(pos, ()):
        if w.endswith(suffix) and len(w) > len(suffix) + 1:
            b = w[: len(w) - len(suffix)] + repl
            if b in index:
                out.append(b)
            if suffix in ("ed", "ing") and len(b) > 2 and b[-1] == b[-2] and b[:-1] in index:
                out.append(b[:-1])  # a doubled consonant: "scrapped" -> "scrapp" -> scrap
    return list(dict.fromkeys(out))


def ancestors(offset: int, pos: str = "v", depth: int = 3) -> set[int]:
    """The synset and its hypernyms up to `depth` levels."""
    seen, frontier = {offset}, [offset]
    for _ in range(depth):
        frontier = [h for o in frontier for h in synset(o, pos)[1] if h not in seen]
        seen.update(frontier)
    return seen


def sense_of(lemma: str, number: int, pos: str = "v") -> Optional[int]:
    """The offset of the lemma's sense `number` (1: the most frequent), as WordNet numbers them ("reject.v.01")."""
    s = senses(lemma, pos)
    return s[number - 1] if len(s) >= number else None


def lexfile(offset: int, pos: str = "n") -> int:
    """The synset's lexicographer file number (noun.group is 14, noun.person 18: lexnames(5WN))."""
    data = _data(pos)
    return int(data[offset:offset + 40].split()[1])


@functools.lru_cache(maxsize=50_000)
def gloss(offset: int, pos: str = "n") -> str:
    """The synset's definition, without its quoted examples ("potter": "a craftsman who shapes pottery on a potter's
    wheel and bakes them it a kiln")."""
    data = _data(pos)
    line = data[offset:data.index(b"\n", offset)].decode("latin-1")
    text = line.split(" | ", 1)[1] if " | " in line else ""
    return text.split('; "', 1)[0].split(' "', 1)[0].strip().rstrip(";").strip()
