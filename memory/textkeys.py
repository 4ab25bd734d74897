"""A memory's text keys: one key space per part of its text evidence.

    text:<model>       the whole evidence (speech, on-screen text and tags), as before
    text.asr:<model>   the speech alone
    text.ocr:<model>   the on-screen text alone

One vector for a clip whose screen holds a page of text and whose speaker says one sentence dilutes that sentence
in the page (and a short slide line in a long stretch of speech): the part keys find each part by itself. They are
ordinary keys of the bank (one per memory and space: SQLite, tails, sealed segments, recovery); a bank written
before them lacks their spaces, which retrieval skips. Retrieval fuses every space's ranking (memory.retrieval);
a memory's score stays the cosine of its whole key, the one answerers' thresholds were set on.
"""
from __future__ import annotations

# prefix -> the evidence fields its text is made of, in this order
TEXT_PARTS: dict[str, tuple[str, ...]] = {"text": ("asr", "ocr", "tags"), "text.asr": ("asr",), "text.ocr": ("ocr",)}
WHOLE = "text"


def key_texts(evidence: dict) -> dict[str, str]:
    """{prefix: text} of every text key a memory's evidence gives (a part with no text gives no key)."""
    out = {}
    for prefix, fields in TEXT_PARTS.items():
        text = " ".join(str(evidence.get(f) or "") for f in fields).strip()
        if text:
            out[prefix] = text
    return out


def text_spaces(model_space: str) -> list[str]:
    """The key spaces of a text embedder's keys, whole first."""
    return [f"{prefix}:{model_space}" for prefix in TEXT_PARTS]


def is_part_space(space: str) -> bool:
    """A key space of one part of the evidence (not of the whole memory)."""
    return space.split(":", 1)[0] in TEXT_PARTS and space.split(":", 1)[0] != WHOLE
