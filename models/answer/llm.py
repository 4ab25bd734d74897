"""The bundled small LLM for answering and minutes, loaded once per process."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_LLM_CACHE: dict = {}


def default_llm():
    """The bundled small LLM (VIGIL_LLM=name picks a candidate, VIGIL_LLM=none turns it off), loaded once per
    process; None when it is off or cannot load (answers are then extractive)."""
    from models.llm import DEFAULT_LLM, TextLLM, available

    name = (os.environ.get("VIGIL_LLM") or DEFAULT_LLM).strip()
    if name.lower() in ("none", "off", "0", "extractive"):
        return None
    if name not in _LLM_CACHE:
        llm = None
        if name in available():
            try:
                llm = TextLLM(name)
            except Exception as e:  # noqa: BLE001 - answering still works without it
                log.warning("LLM %s could not load (%s); answers are extractive", name, e)
        else:
            log.warning("LLM %s is not installed; answers are extractive", name)
        _LLM_CACHE[name] = llm
    return _LLM_CACHE[name]
