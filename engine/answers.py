"""What ask and summarize hand back: typed objects with a `to_dict()` in DESIGN.md's wire shapes."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterator, Optional


class Answer:
    """An answer being generated (models/ask.py's AnswerStream, timed).

    Iterate it for text pieces (the answerer runs as they are consumed; `close()` stops it). `citations` are ready
    at once; `text`, `usage` and `answered` fill in as it runs; `to_dict()` (after iterating, or `collect()`) is
    DESIGN.md's Answer: {"answer", "citations", "usage", "latency"}."""

    def __init__(self, stream, citations: list, *, load_ms: float, t_asked: float):
        self._stream = stream
        self.citations = citations
        self.load_ms = load_ms
        self._t_asked = t_asked
        self._t_ready = time.perf_counter()
        self._t_done: Optional[float] = None

    def __iter__(self) -> Iterator[str]:
        for piece in self._stream:
            yield piece
        self._t_done = time.perf_counter()

    def collect(self) -> "Answer":
        for _ in self:
            pass
        return self

    def close(self) -> None:
        self._stream.close()

    @property
    def text(self) -> str:
        return self._stream.text

    @property
    def usage(self) -> dict:
        return self._stream.usage.as_dict()

    @property
    def answered(self) -> bool:
        """True when an answerer wrote the text (False: the list of retrieved moments, or a refusal)."""
        return bool(self._stream.answered)

    @property
    def latency(self) -> dict:
        end = self._t_done or time.perf_counter()
        first = self._stream.first_piece or end
        return {"load_ms": round(self.load_ms, 1), "retrieve_ms": round(self._stream.retrieve_ms, 1),
                "first_token_ms": round((first - self._t_ready) * 1000, 1),
                "total_ms": round((end - self._t_asked) * 1000 - self.load_ms, 1)}

    def to_dict(self) -> dict:
        return {"answer": self.text, "citations": self.citations, "usage": self.usage, "latency": self.latency}


@dataclass
class Summary:
    """Minutes of one stream: Markdown, the structured minutes (models.assistant.Minutes.to_dict()), and where
    the Markdown was saved (<bank>/minutes/<stream>.md; None for a read-only bank)."""

    stream: str
    markdown: str
    minutes: dict
    path: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)
