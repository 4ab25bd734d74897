"""What Whisper is told before it listens (pure functions): the words on screen while the speech was said, as its
initial prompt (`prompt_text`), and names read on screen earlier in the stream, as hotwords (`hotword_text`).
Slides and shared documents show the names and numbers a meeting says; a recognizer that has read them spells
them as shown. A hint can also mislead: `copies_hints` tells a window whose text is its hotwords."""
from __future__ import annotations

import re
from typing import Optional, Sequence


def prompt_text(lines: Sequence[str], words: int) -> Optional[str]:
    """The last `words` words of the screen lines, each line ended as a sentence (None when there are none):
    Whisper writes in its prompt's style, and slide lines without full stops made Whisper base write whole
    windows without punctuation (one 'sentence' of 25 words, stamped over 10 s)."""
    ws = " ".join(_as_sentence(x) for x in lines if x.strip()).split()
    return " ".join(ws[-words:]) or None


def hotword_text(names: Sequence[str], prompt: Optional[str], count: int) -> Optional[str]:
    """The latest `count` names (given the latest last) that the prompt does not hold, the most recent first,
    space-separated (None without any): a name on the agenda or an earlier slide is often said while another
    screen is up (on the dev and held-out meetings, "Crestway", "Fastlane", "Irene" heard only with them)."""
    have = set(re.findall(r"[a-z0-9']+", (prompt or "").lower()))
    out: list[str] = []
    for n in reversed([str(x) for x in names]):
        if n.lower() not in have and n not in out:
            out.append(n)
    return " ".join(out[:max(0, count)]) or None


def _as_sentence(line: str) -> str:
    """A line of screen text as a sentence: a full stop added unless it ends in punctuation already."""
    line = line.strip()
    return line if not line or line[-1] in ".!?:;," else line + "."


def copies_hints(texts: Sequence[str], hotwords: Optional[str], share: float = 0.8, min_words: int = 3) -> bool:
    """Did Whisper write its hotwords instead of the speech? True when a segment of at least `min_words` words has
    `share` or more of them among the hotwords. Whisper base, given "May Fans Ceiling Cabinet Key" (title words of
    earlier slides) while a voice it barely understood spoke for 10 s, wrote "May Fans Ceiling Cabinet" for all of
    it (held-out 14, template style); without the hotwords it wrote the three sentences said."""
    hot = set(re.findall(r"[a-z0-9']+", (hotwords or "").lower()))
    if not hot:
        return False
    for text in texts:
        ws = re.findall(r"[a-z0-9']+", str(text).lower())
        if len(ws) >= min_words and sum(w in hot for w in ws) >= share * len(ws):
            return True
    return False
