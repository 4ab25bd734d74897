"""Model profiles, loaded once per process and shared by every stream and question.

A profile is keyed by what selects its models (ModelSpec) and by the parts loaded (evidence extractors for
ingest, the answerer for questions): a profile with more parts serves a request for fewer. Every stream gets
its own evidence extractors (they keep per-stream state: the ASR buffer, the OCR gate), made with `fresh()`
from the loaded ones, so the speech and OCR models themselves are loaded once.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

from .errors import EngineError

_CACHE: dict[tuple, object] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSpec:
    """What picks the models: the lite profile (model None or "lite") or a VLM by hub id / local directory."""

    model: Optional[str] = None
    device: Optional[str] = None
    trust_remote_code: bool = False
    retrieval: Optional[str] = None
    text_evidence: bool = False

    @property
    def name(self) -> str:
        return self.model or "lite"

    def _key(self) -> tuple:
        return (None if self.model in (None, "", "lite") else self.model, self.device, self.trust_remote_code,
                self.retrieval, self.text_evidence)


def load(spec: ModelSpec, *, evidence: bool = True, answerer: bool = True):
    """The loaded profile for spec with at least these parts (from the process cache when it holds one)."""
    key = spec._key()
    with _LOCK:
        for (k, ev, an), prof in _CACHE.items():
            if k == key and (ev or not evidence) and (an or not answerer):
                return prof
        from models.registry import load_profile

        try:
            prof = load_profile(key[0], trust_remote_code=spec.trust_remote_code, device=spec.device,
                                retrieval=spec.retrieval, text_evidence=spec.text_evidence, evidence=evidence,
                                answerer=answerer)
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot load model {spec.name!r}: {e}".splitlines()[0], "unavailable") from None
        except Exception as e:  # noqa: BLE001
            from models.base import ModelError

            if isinstance(e, ModelError):
                raise EngineError(f"cannot load model {spec.name!r}: {e}", "unavailable") from None
            raise
        _CACHE[(key, evidence, answerer)] = prof
        return prof


def cached(spec: ModelSpec):
    """A loaded profile for spec if there is one (any parts), else None. Never loads."""
    key = spec._key()
    with _LOCK:
        return next((p for (k, _, _), p in _CACHE.items() if k == key), None)


def remember(spec: ModelSpec, profile, *, evidence: bool = True, answerer: bool = True) -> None:
    """Register a profile loaded elsewhere (tests hand one engine's profile to another)."""
    with _LOCK:
        _CACHE[(spec._key(), evidence, answerer)] = profile


def evidence_for(profile, stream_id: str) -> list:
    """Evidence extractors for one stream: fresh per-stream state around the profile's loaded models."""
    make = getattr(profile, "evidence_for", None)
    if callable(make):
        return list(make(stream_id))
    return [ex.fresh() if hasattr(ex, "fresh") else ex for ex in (profile.evidence or [])]
