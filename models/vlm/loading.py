"""`load_vlm(model)`: a hub id or a local directory -> the family adapter.

- A local directory is used as is. A hub id is looked up in the local Hugging Face cache first;
  when it is missing and the hub is offline (HF_HUB_OFFLINE=1 / TRANSFORMERS_OFFLINE=1, or no
  network), the user gets: "X is not in the local cache; run once online or pass a local directory".
  Online, it is fetched once (config, weights, tokenizer and processor files) and cached.
- The family comes from `config.model_type`; anything else is refused with one line naming the
  supported families.
- Device and dtype are automatic (CUDA bf16, else CPU fp32) unless named.
- `trust_remote_code` stays off unless asked for.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from models.base import ModelError, auto_device, auto_dtype

from .common import VLMAdapter

SUPPORTED = {
    "qwen2_5_vl": "Qwen2.5-VL",
    "qwen2_vl": "Qwen2-VL",
    "llava_onevision": "LLaVA-OneVision",
    "smolvlm": "SmolVLM2",
    "idefics3": "Idefics3/SmolVLM",
}


def supported_line() -> str:
    return ", ".join(f"{v} ({k})" for k, v in SUPPORTED.items())


def _classes(model_type: str):
    import transformers as tf
    from .llava_ov import LlavaOneVisionAdapter
    from .qwen import QwenVLAdapter
    from .smolvlm import SmolVLMAdapter
    table = {
        "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", QwenVLAdapter),
        "qwen2_vl": ("Qwen2VLForConditionalGeneration", QwenVLAdapter),
        "llava_onevision": ("LlavaOnevisionForConditionalGeneration", LlavaOneVisionAdapter),
        "smolvlm": ("SmolVLMForConditionalGeneration", SmolVLMAdapter),
        "idefics3": ("Idefics3ForConditionalGeneration", SmolVLMAdapter),
    }
    name, adapter = table[model_type]
    return getattr(tf, name), adapter


def _offline() -> bool:
    try:
        from huggingface_hub import constants
        if constants.HF_HUB_OFFLINE:
            return True
    except Exception:  # noqa: BLE001
        pass
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_model_dir(model: str, trust_remote_code: bool = False) -> str:
    """Local directory of `model` (a directory, or a hub id in the cache / fetched when online)."""
    if not model or not isinstance(model, str):
        raise ModelError("no model given: pass a hub id (e.g. Qwen/Qwen2.5-VL-3B-Instruct) or a local directory")
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"{model} has no config.json; pass a directory saved with save_pretrained or a hub id")
        return path
    if os.path.exists(path):
        raise ModelError(f"{model} is a file; pass a model directory or a hub id")
    if path.startswith(("/", "./", "../", "~")) or model.count("/") > 1:
        raise ModelError(f"{model}: no such directory")
    missing = f"{model} is not in the local cache; run once online or pass a local directory"
    from huggingface_hub import snapshot_download
    try:
        return snapshot_download(model, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (any flavour of "not found locally")
        pass
    if _offline():
        raise ModelError(missing)
    patterns = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken", "*.py" if trust_remote_code else "*.json"]
    try:
        return snapshot_download(model, allow_patterns=patterns)
    except Exception as e:  # noqa: BLE001
        name = type(e).__name__
        if "NotFound" in name or "Repository" in name or "401" in str(e) or "404" in str(e):
            raise ModelError(f"{model} was not found on the hub ({name}); check the id or pass a local directory") from None
        raise ModelError(missing) from None


def check_model(model: str) -> str:
    """Is `model` something load_vlm can load, judged without loading or downloading it? A local directory or a
    cached hub id must hold a config.json of a supported family; an id not cached must exist on the hub (online)
    or is refused (offline). Returns the family's name; raises ModelError with one line."""
    import json

    def family(model_dir: str) -> str:
        try:
            with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise ModelError(f"{model}: cannot read its config.json ({type(e).__name__})") from None
        mt = cfg.get("model_type")
        if mt in SUPPORTED:
            return SUPPORTED[mt]
        arch = ",".join(cfg.get("architectures") or []) or str(mt)
        if "vision_config" not in cfg and arch.endswith(("ForCausalLM", "LMHeadModel")):
            raise ModelError(f"{model} is a text-only language model ({arch}); a vision-language model is needed, "
                             f"one of: {supported_line()}")
        raise ModelError(f"{model}: unsupported architecture {arch!r}; supported: {supported_line()}")

    path = os.path.expanduser(model or "")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"{model} has no config.json; pass a directory saved with save_pretrained or a hub id")
        return family(path)
    if not model or os.path.exists(path):
        raise ModelError(f"{model or '(empty)'} is not a model directory or a hub id")
    if path.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or " " in model.strip():
        raise ModelError(f"{model}: no such model directory")
    from huggingface_hub import snapshot_download

    try:
        return family(snapshot_download(model, local_files_only=True))
    except ModelError:
        raise
    except Exception:  # noqa: BLE001 - not cached
        pass
    if _offline():
        raise ModelError(f"{model} is not in the local model cache (and the hub is offline): run once online or "
                         "pass a local directory")
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(model, timeout=10)
    except Exception as e:  # noqa: BLE001
        name = type(e).__name__
        if "NotFound" in name or "Repository" in name or "404" in str(e) or "401" in str(e):
            raise ModelError(f"{model} was not found on the hub; check the id or pass a local directory") from None
        raise ModelError(f"cannot check {model} on the hub ({name}); pass a local directory") from None
    return model


def load_vlm(model: str, trust_remote_code: bool = False, device: Optional[str] = None,
             dtype: Optional[torch.dtype] = None, retrieval=None, **adapter_kw) -> VLMAdapter:
    """Load a VLM by hub id or local directory and wrap it in its family adapter.

    retrieval: an optional RetrievalEncoder; when given, encode() fills frame_keys from it
    (key_dim = its dim), else frame keys are the normalized mean of the frame's tokens.
    adapter_kw: family options, e.g. max_pixels=… for Qwen, saliency=False.
    """
    from transformers import AutoConfig, AutoTokenizer

    model_dir = resolve_model_dir(model, trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except ValueError as e:
        msg = str(e).splitlines()[0]
        if "model type" in msg or "model_type" in msg or "trust_remote_code" in msg:
            raise ModelError(f"{model}: unsupported architecture ({msg[:120]}); supported: {supported_line()}") from None
        raise ModelError(f"{model}: cannot read config: {msg}") from None
    except OSError as e:
        raise ModelError(f"{model}: cannot read config: {str(e).splitlines()[0]}") from None
    mt = getattr(config, "model_type", None)
    if mt not in SUPPORTED:
        arch = ",".join(getattr(config, "architectures", None) or []) or mt
        if getattr(config, "vision_config", None) is None and (arch or "").endswith(("ForCausalLM", "LMHeadModel")):
            raise ModelError(f"{model} is a text-only language model ({arch}); --model needs a vision-language "
                             f"model that reads the stored clips, one of: {supported_line()}")
        raise ModelError(f"{model}: unsupported architecture {arch!r} (model_type {mt!r}); supported: {supported_line()}")
    dev = auto_device(device)
    dt = dtype or auto_dtype(dev)
    cls, adapter_cls = _classes(mt)
    try:
        kw = dict(dtype=dt, trust_remote_code=trust_remote_code)
        try:
            net = cls.from_pretrained(model_dir, attn_implementation="sdpa", **kw)
        except (ValueError, ImportError):
            net = cls.from_pretrained(model_dir, **kw)
        net = net.to(dev)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"{model}: could not load weights: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    try:
        tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"{model}: could not load its tokenizer: {str(e).splitlines()[0][:200]}") from None
    name = model if not os.path.isdir(os.path.expanduser(model)) else os.path.basename(os.path.abspath(model))
    return adapter_cls(net, tok, model_dir, dev, dt, name=name, retrieval=retrieval, **adapter_kw)
