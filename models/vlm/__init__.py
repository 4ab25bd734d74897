"""Real vision-language models through transformers (≥ 5): Qwen2.5-VL / Qwen2-VL, LLaVA-OneVision,
SmolVLM2 / Idefics3. `load_vlm(model)` gives an adapter that is both an Encoder (vision tower +
projector -> TokenGrid in the LLM's input space) and an Answerer (carrier tokens spliced into the
prompt, streamed answer)."""
from .common import VLMAdapter, timestamp_line  # noqa: F401
from .loading import SUPPORTED, load_vlm, resolve_model_dir  # noqa: F401
