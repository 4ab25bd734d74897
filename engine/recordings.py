"""Recordings summarized straight from a file (`app.py summarize FILE`): which bank holds them, and whether that
bank already covers the file, so a second summary reuses it instead of ingesting again."""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from typing import Optional

from . import sources
from .errors import EngineError


def summary_bank_dir(source: str) -> str:
    """The bank of a summarized file: $VIGIL_BANKS (default ~/.cache/vigil/banks)/<name>-<hash of its path>."""
    root = os.environ.get("VIGIL_BANKS") or os.path.join(
        os.environ.get("VIGIL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vigil"), "banks")
    real = os.path.realpath(source)
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(real))[:60]
    return os.path.join(root, f"{stem}-{hashlib.sha1(real.encode()).hexdigest()[:12]}")


def file_stamp(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime": round(st.st_mtime, 3)}


def media_seconds(path: str) -> float:
    try:
        import av

        with av.open(path) as c:
            return c.duration / 1_000_000 if c.duration else float("inf")
    except Exception:  # noqa: BLE001 - unreadable: never "covered"
        return float("inf")


@dataclass
class Recording:
    """Where a summarized file's memories live. reuse: the bank covers the file already (no ingest needed)."""

    source: str
    bank_dir: str
    stream: str
    derived: bool
    stamp: dict
    reuse: bool = False
    notes: list = field(default_factory=list)

    @property
    def meta_key(self) -> str:
        return f"summary_source:{self.stream}"


def prepare(source: str, bank: Optional[str] = None, stream: Optional[str] = None) -> Recording:
    """The bank and stream for summarizing a file (its own derived bank unless `bank` is given). A bank holding
    part of this very file (an interrupted ingest) goes on from there (the engine resumes it); a derived bank
    holding a changed file is removed, to be rebuilt; a given bank holding another file under that stream is
    refused."""
    if sources.kind_of(source) != "file":
        raise EngineError("summarize SOURCE takes a recording (a file); for a live stream run ingest, then "
                          "summarize --bank")
    if not os.path.isfile(source):
        raise EngineError(f"no such file: {source!r}", "not_found")
    rec = Recording(source, bank or summary_bank_dir(source), sources.stream_id_for(source, stream),
                    derived=not bank, stamp=file_stamp(source))
    if not os.path.isdir(rec.bank_dir):
        return rec
    from memory.bank import MemoryBank

    from .errors import as_engine_errors

    from .ingest import FILE_KEY

    with as_engine_errors(), MemoryBank(rec.bank_dir, readonly=True) as b:
        have = b.get_meta(rec.meta_key)
        ingested = b.get_meta(FILE_KEY.format(rec.stream))  # the file a stream was ingested from (engine/ingest.py)
        streams = {x["stream"]: x for x in b.streams()}
    st = streams.get(rec.stream) or {}
    covered = bool(st.get("memories")) and (have == rec.stamp or (  # or `ingest` stored this file to its end
        st.get("source") and os.path.realpath(st["source"]) == rec.stamp["path"]
        and (st.get("last_t") or 0) >= media_seconds(source) - 2.5))
    same_file = bool(st.get("source")) and os.path.realpath(st["source"]) == rec.stamp["path"] and (
        not ingested or (ingested.get("size"), ingested.get("mtime")) == (rec.stamp["size"], rec.stamp["mtime"]))
    if covered:
        rec.reuse = True
        rec.notes.append(f"reusing bank {rec.bank_dir} (it already covers {source!r})")
    elif same_file and st.get("memories"):  # an interrupted ingest of this very file: the engine resumes it
        rec.notes.append(f"bank {rec.bank_dir} holds part of {source!r}: ingesting the rest")
    elif rec.stream in streams and streams[rec.stream]["memories"]:
        if not rec.derived:
            raise EngineError(f"bank {rec.bank_dir!r} already holds a stream {rec.stream!r} that does not cover "
                              "this file completely; choose another --stream or bank", "conflict")
        rec.notes.append(f"bank {rec.bank_dir} does not cover {source!r} (changed or interrupted): rebuilding it")
        shutil.rmtree(rec.bank_dir)
    return rec


def mark_covered(engine, rec: Recording) -> None:
    """Record that the engine's bank now holds the whole file (a later summary reuses it)."""
    engine.bank.set_meta(rec.meta_key, rec.stamp)
