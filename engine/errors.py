"""The engine's one error type. Every user-facing failure (bad input, unknown stream, a bank held by another
writer, a model that cannot load, a source that cannot be read) reaches the CLI, the UI and the API as an
EngineError with a one-line message and a `kind` the API maps to an HTTP status."""
from __future__ import annotations

import sys
from contextlib import contextmanager

KINDS = ("invalid", "not_found", "conflict", "unavailable", "failed")

# errors raised by the parts below the engine, each one line for the user already (module, class name)
_PART_ERRORS = (("memory.bank", "BankError"), ("models.base", "ModelError"), ("stream.sources", "SourceError"),
                ("models.ask", "AskError"), ("reducers.base", "ReducerInputError"))


class EngineError(RuntimeError):
    """A failure the user can act on: `str(e)` is one line; `kind` is one of KINDS
    (invalid: 400/422, not_found: 404, conflict: 409, unavailable: 503, failed: the source or a model failed)."""

    def __init__(self, message: object, kind: str = "invalid"):
        text = " ".join(str(message).split()) or "error"
        super().__init__(text)
        self.kind = kind if kind in KINDS else "invalid"


def part_errors() -> tuple:
    """The parts' error classes that are imported already (a class not imported cannot have been raised)."""
    out = []
    for mod, name in _PART_ERRORS:
        m = sys.modules.get(mod)
        if m is not None and hasattr(m, name):
            out.append(getattr(m, name))
    return tuple(out)


def kind_of(e: BaseException) -> str:
    """The kind of a part's error, from its message (the parts raise one class each)."""
    msg = str(e)
    if "being written by" in msg or "already running" in msg:
        return "conflict"
    if msg.startswith("no memory bank") or "no such file" in msg:
        return "not_found"
    return "invalid"


@contextmanager
def as_engine_errors(kind: str = ""):
    """Turn the parts' one-line errors into EngineError (kind from the message unless given)."""
    try:
        yield
    except EngineError:
        raise
    except Exception as e:  # noqa: BLE001 - only the parts' own error types are converted
        types = part_errors()
        if types and isinstance(e, types):
            raise EngineError(str(e), kind or kind_of(e)) from None
        raise
