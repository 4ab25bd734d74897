"""Meeting minutes of a bank's stream: the one summarize path shared by the CLI and the UI."""
from __future__ import annotations

from typing import Callable, Optional

from .minutes import Minutes, summarize
from .base import MemoryView, ModelError

Progress = Callable[[int, int, str], None]  # (done, total, what)


def stream_minutes(bank, profile, stream: Optional[str] = None, progress: Optional[Progress] = None) -> Minutes:
    """Minutes of one stream (or of the bank's only stream when None). Raises ModelError for an empty choice."""
    streams = [s["stream"] for s in bank.streams() if s["memories"]]
    if not streams:
        raise ModelError("the bank holds no memories to summarize")
    if stream is None:
        if len(streams) > 1:
            raise ModelError(f"the bank holds {len(streams)} streams; choose one with --stream ({', '.join(streams)})")
        stream = streams[0]
    memories = bank.list(stream=stream)
    if not memories:
        raise ModelError(f"stream {stream!r} has no memories yet")
    views = [MemoryView(m.id, m.stream, m.t0, m.t1, 0.0, None, m.evidence, None) for m in memories]
    if progress:
        progress(0, 1, "loading the LLM")
    llm = getattr(profile.answerer, "llm", None)  # the lite answerer loads its bundled LLM on first use
    return summarize(views, llm, progress,
                     embedder=getattr(profile, "text_embedder", None), title=f"Minutes: {stream}")
