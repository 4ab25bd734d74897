"""What the bank stores and hands out: carrier records, memories, their evidence lines; the bank's error type and
the small helpers every part of the bank shares (key normalization, credential redaction, thumbnails)."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

POS_COLS = 10  # pos(3) lo(3) hi(3) size(1), int32
_CRED_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@]+):([^/\s@]*)@")


def redact(text: str) -> str:
    """`rtsp://user:pass@host/…` -> `rtsp://user:***@host/…`, anywhere in the text."""
    return _CRED_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text or "") if text else text



class BankError(RuntimeError):
    """The bank cannot be opened or used; one line for the user."""


@dataclass
class CarrierRecord:
    """Carrier tokens as stored: tokens [M, D] float16 (or float32 when given so), pos/lo/hi [M, 3] int32,
    size [M] int32. The stored width of a token follows from nbytes, so both dtypes read back exactly."""

    tokens: np.ndarray
    pos: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    size: np.ndarray

    def to_bytes(self) -> bytes:
        meta = np.concatenate([self.pos, self.lo, self.hi, self.size[:, None]], axis=1).astype(np.int32)
        tok = self.tokens if self.tokens.dtype == np.float32 else self.tokens.astype(np.float16)
        return np.ascontiguousarray(tok).tobytes() + meta.tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes, m: int, d: int) -> "CarrierRecord":
        width = (len(raw) - m * POS_COLS * 4) // max(1, m * d)  # 2: float16, 4: float32
        dt = np.float32 if width == 4 else np.float16
        tok = np.frombuffer(raw, dt, count=m * d).reshape(m, d)
        meta = np.frombuffer(raw, np.int32, offset=m * d * width).reshape(m, POS_COLS)
        return cls(tok, meta[:, 0:3], meta[:, 3:6], meta[:, 6:9], meta[:, 9])


@dataclass
class Memory:
    id: int
    stream: str
    t0: float
    t1: float
    wall: float
    reducer: str
    budget: int
    space: str
    m: int
    d: int
    thumb: Optional[str]
    novelty: Optional[float]
    evidence: dict = field(default_factory=dict)
    steps: Optional[int] = None   # time steps of the clip's token grid (carrier pos t runs over 0..steps-1)
    score: float = 0.0

    def citation(self) -> dict:
        return {"id": self.id, "stream": self.stream, "start": round(self.t0, 3), "end": round(self.t1, 3),
                "score": round(float(self.score), 4), "evidence": evidence_text(self.evidence), "thumbnail": self.thumb}


# what each kind of text evidence is, in the words the faces show it with
EVIDENCE_LABELS = {"asr": "Said", "ocr": "On screen", "tags": "Looks like", "screen": "Screen headings"}
# evidence that says what a clip is about, not what it said or showed anew: not quoted in citations
CONTEXT_ONLY = frozenset({"screen"})
# the memories table's evidence columns, in the order reads give them
EVIDENCE_COLS = ("asr", "ocr", "tags", "screen")


def evidence_text(ev: dict, limit: int = 300) -> str:
    """A memory's text evidence on one line, in plain words: `Said: … | On screen: … | Looks like: cup, mug`."""
    parts = []
    for k, v in (ev or {}).items():
        if not v or k in CONTEXT_ONLY:
            continue
        v = " ".join(str(v).split())  # slide lines and transcript breaks on one line
        parts.append(f"{EVIDENCE_LABELS.get(k, k.replace('_', ' ').capitalize())}: {v}")
    s = " | ".join(parts)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _safe_name(stream: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream)[:80] or "stream"


def normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def encode_jpeg(image: np.ndarray, width: int = 320, quality: int = 80) -> bytes:
    """A thumbnail JPEG of an RGB uint8 image, `width` pixels wide."""
    from PIL import Image

    im = Image.fromarray(image)
    if im.width > width:
        im = im.resize((width, max(1, round(im.height * width / im.width))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
