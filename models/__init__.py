"""Model adapters: encoders (vision towers, EfficientNet-Lite0), answerers, ASR/OCR, text embedders."""
from .base import Answerer, Encoder, MemoryView, ModelError, auto_device, auto_dtype  # noqa: F401
