"""The bank's side of the Engine: what it holds, its memories (the API's shapes), thumbnails, replayable media and
uploads. Mixed into engine.core.Engine."""
from __future__ import annotations

import os
import time
from typing import Optional

from . import media as media_rules
from .errors import EngineError


class BankViewsMixin:
    """Needs: bank, media_dir, max_upload_bytes, _lock, _runs, _bytes_cache."""

    # ---- the bank --------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self.bank.path

    @property
    def repairs(self) -> list[str]:
        return list(self.bank.repairs)

    def info(self) -> dict:
        """What the bank holds: {"bank", "memories", "bytes", "streams", "key_spaces", "consistent", "events"};
        each stream with the settings it was stored with ({"reducer", "budget", "clip_seconds", "fps"})."""
        b = self.bank
        return {"bank": b.path, "memories": b.count(), "bytes": b.bytes_on_disk(), "streams": self.stored_streams(),
                "key_spaces": b.key_spaces(), "consistent": b.check()["ok"], "events": len(b.events())}

    def stored_streams(self) -> list[dict]:
        """The bank's streams: {"stream", "source", "memories", "covered_s", "first_t", "last_t", "settings"}."""
        out = []
        for s in self.bank.streams():
            st = self.bank.stream_settings(s["stream"])
            out.append({**s, "settings": {k: st[k] for k in ("reducer", "budget", "clip_seconds", "fps") if k in st}})
        return out

    def bank_summary(self) -> dict:
        """{"memories", "bytes", "streams"}, cheap enough to poll (the size is re-read every 5 s)."""
        now = time.monotonic()
        t, size = self._bytes_cache
        if now - t > 5.0:
            size = self.bank.bytes_on_disk()
            self._bytes_cache = (now, size)
        return {"memories": self.bank.count(), "bytes": size, "streams": len(self.bank.streams())}

    def stream_list(self) -> list:
        """Every stream, as StreamInfo: those started here (their live state), then the bank's others as
        "stopped" (not running here; their memories kept). The API's GET /v1/streams."""
        from .streams import StreamInfo

        infos = self.streams()
        seen = {i.stream for i in infos}
        for s in self.bank.streams():
            if s["stream"] not in seen:
                infos.append(StreamInfo(stream=s["stream"], source=s["source"] or "", state="stopped",
                                        memories=int(s["memories"]), last_t=float(s["last_t"] or 0.0)))
        return infos

    def search(self, query: str, *, k: int = 10, streams: Optional[list] = None, start: Optional[float] = None,
               end: Optional[float] = None) -> list[dict]:
        """The memories the ask path retrieves for a query, best k in time order, without answering: the
        citation dicts of ask() ({"id", "stream", "start", "end", "score", "evidence", "thumbnail", "tokens"})."""
        answer = self.ask(query, k=k, streams=streams, start=start, end=end)
        answer.close()  # the answerer runs only as text is read: none is generated
        return answer.citations

    def require_stream(self, stream: str) -> str:
        """The stream id if the bank holds it or it was started here; else EngineError kind "not_found"."""
        if stream not in self.stream_ids():
            raise EngineError(f"unknown stream {stream!r}", "not_found")
        return stream

    def events(self, stream: Optional[str] = None) -> list[dict]:
        return self.bank.events(stream)

    def memories(self, stream: Optional[str] = None, start: Optional[float] = None, end: Optional[float] = None,
                 limit: Optional[int] = None, newest_first: bool = False) -> list[dict]:
        """Stored memories (time order; newest first when asked) of one stream or all, overlapping [start, end]:
        [{"id", "stream", "start", "end", "evidence": {"asr", "ocr", "tags"}, "thumbnail", "novelty", "text"}]."""
        t_range = None
        if start is not None or end is not None:
            t_range = (float(start or 0.0), float(end) if end is not None else 1e12)
        if limit is not None and int(limit) <= 0:
            raise EngineError("limit must be > 0")
        rows = self.bank.list(stream=stream or None, t_range=t_range, limit=int(limit) if limit else None,
                              newest_first=newest_first)
        return [self._memory_dict(m) for m in rows]

    def memory(self, memory_id: int) -> dict:
        """One memory (memories()'s fields) plus "player": the media file it can be replayed from, if any."""
        try:
            ms = self.bank.get([int(memory_id)])
        except (TypeError, ValueError):
            raise EngineError(f"not a memory id: {memory_id!r}") from None
        if not ms:
            raise EngineError(f"memory {memory_id} is not in the bank", "not_found")
        d = self._memory_dict(ms[0])
        d["player"] = self.replay_path(ms[0].stream)
        return d

    def thumbnail(self, memory_id: int) -> str:
        path = self.memory(memory_id)["thumbnail"]
        if not path:
            raise EngineError(f"memory {memory_id} has no thumbnail", "not_found")
        return path

    def _memory_dict(self, m) -> dict:
        from memory.bank import evidence_text

        ev = m.evidence or {}
        return {"id": m.id, "stream": m.stream, "start": m.t0, "end": m.t1,
                "evidence": {k: ev.get(k, "") for k in ("asr", "ocr", "tags")},
                "thumbnail": self.bank.thumbnail_path(m.id), "novelty": m.novelty,
                "text": evidence_text(ev, 160)}

    def replay_path(self, stream: str) -> Optional[str]:
        """The media file a stream was replayed from, if it lies in the media directory (so it may be served)."""
        with self._lock:
            r = self._runs.get(stream)
        path = r.media_path if r is not None else None
        if path is None:
            src = next((s["source"] for s in self.bank.streams() if s["stream"] == stream), None)
            if not src or "://" in src:
                return None
            path = src
        if not self.media_dir:
            return path if os.path.isfile(path) else None
        try:
            return media_rules.resolve_media_path(self.media_dir, path)
        except EngineError:
            return None

    # ---- media -----------------------------------------------------------------------------------

    def list_media(self) -> list[str]:
        return media_rules.list_media(self.media_dir) if self.media_dir else []

    def accept_upload(self, tmp_path: str, name: str = "") -> str:
        """An uploaded video, checked and copied into the media directory; its media name (for start())."""
        if not self.media_dir:
            raise EngineError("this engine has no media directory for uploads")
        return media_rules.accept_upload(self.media_dir, tmp_path, name, self.max_upload_bytes)
