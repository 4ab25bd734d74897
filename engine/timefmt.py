"""Media time as the faces print it (standard library only)."""
from __future__ import annotations


def hms(t: float) -> str:
    """Seconds -> HH:MM:SS (media time)."""
    t = max(0.0, float(t))
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}"
