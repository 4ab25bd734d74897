"""Sources, sampling, clipping and the ingest pipeline."""
from .types import AudioChunk, Clip, Frame, StreamEvent  # noqa: F401
