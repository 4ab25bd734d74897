"""Whisper's hints that mislead: a window written as its hotwords is decoded again without them, and one that
fails Whisper's own tests at temperature 0 is decoded again with its temperature fallback (bundled Whisper base,
espeak speech and a seen meeting's window)."""
import os
from dataclasses import replace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.asr import Transcriber
from models.asr_window import TEMPERATURES, WINDOW_TOKENS_PER_S, max_new_tokens, whisper
from models.asr_prompt import copies_hints
from tests.fixtures.meeting import have_espeak, load_audio, tts

SR = 16000
HOT = "May Fans Ceiling Cabinet Key"


@pytest.mark.parametrize("texts, hot, want", [
    ([" May Fans Ceiling Cabinet"], HOT, True),                         # held-out 14's window, as Whisper wrote it
    ([" Next up is Bagatelle.", " May fans, ceiling, cabinet!"], HOT, True),  # any segment; case and commas aside
    ([" Next up is Bagatelle Light Switches."], HOT, False),            # speech that uses no hint
    ([" Ceiling fans."], HOT, False),                                    # a title said aloud: too short to tell
    ([" The key cabinet and the ceiling fans."], HOT, False),            # 4 of 7 words: speech about them
    ([" May Fans Ceiling Cabinet"], None, False),                        # no hotwords given
    ([" May Fans Ceiling Cabinet"], "", False),
    ([], HOT, False),
])
def test_copies_hints(texts, hot, want):
    assert copies_hints(texts, hot) is want


@pytest.fixture(scope="module")
def asr():
    return Transcriber()


SAID = ["Fabian will refill the soap dispensers by Monday.", "The brewery is in Madrid.",
        "The anniversary is on August 22."]


def _speech():
    z = np.zeros(int(0.4 * SR), np.float32)
    return np.concatenate([np.concatenate([z, tts(s, "en-us", 155)]) for s in SAID] + [z])


def _spy(asr, force, sizes=None):
    """Record each faster-whisper call's hotwords and temperatures (and into `sizes` its audio's samples);
    `force(kw, segs, x)` may change what it returns (the second decoding is real)."""
    real, calls = asr.model.transcribe, []

    def transcribe(x, *args, **kw):
        segs, info = real(x, *args, **kw)
        calls.append((kw.get("hotwords"), tuple(kw["temperature"])))
        if sizes is not None:
            sizes.append(x.size)
        return force(kw, list(segs), x), info

    asr.model.transcribe = transcribe
    return calls


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_a_window_written_as_its_hotwords_is_decoded_again_without_them(asr):
    """The first decoding (temperature 0, with hotwords) is forced to come out as the hotwords over the whole
    window, as Whisper base did on a seen meeting; the window is decoded again without them and keeps its speech."""
    a = _speech()

    def copied(kw, segs, x):
        return [replace(segs[0], text=" May Fans Ceiling Cabinet", end=x.size / SR)] if kw.get("hotwords") else segs

    calls = _spy(asr, copied)
    try:
        text = " ".join(s.text for s in asr._transcribe(a, 30.0, None, HOT))
    finally:
        del asr.model.transcribe
    assert calls == [(HOT, (0.0,)), (None, TEMPERATURES)], calls
    low = text.lower()
    assert "soap dispensers" in low and "madrid" in low and "22" in low and "ceiling" not in low, text


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_a_window_that_fails_at_temperature_0_falls_back(asr):
    """A first decoding below Whisper's log-probability test is decoded again with the temperature fallback (and
    the hotwords); one that passes is decoded once."""
    a = _speech()
    calls = _spy(asr, lambda kw, segs, x: [replace(s, avg_logprob=-1.5) for s in segs]
                 if kw["temperature"] == [0.0] else segs)
    try:
        text = " ".join(s.text for s in asr._transcribe(a, 0.0, None, "Madrid"))
    finally:
        del asr.model.transcribe
    assert calls == [("Madrid", (0.0,)), ("Madrid", TEMPERATURES[1:])], calls  # never temperature 0 again
    assert "madrid" in text.lower(), text
    calls = _spy(asr, lambda kw, segs, x: segs)
    try:
        text = " ".join(s.text for s in asr._transcribe(a, 0.0, None, "Madrid"))
    finally:
        del asr.model.transcribe
    assert calls == [("Madrid", (0.0,))] and "dispensers" in text, (calls, text)


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_the_fallback_decodes_only_the_speech_from_the_failing_segment(asr):
    """Only the last sentence fails at temperature 0: the sentences before it are kept as decoded, and only the
    audio after them is decoded again, at the fallback's temperatures, never at 0 again."""
    a = _speech()

    def last_fails(kw, segs, x):
        if kw["temperature"] != [0.0] or x.size != a.size or len(segs) < 2:
            return segs
        return segs[:-1] + [replace(segs[-1], avg_logprob=-1.5)]

    sizes: list[int] = []
    calls = _spy(asr, last_fails, sizes)
    try:
        segs = asr._transcribe(a, 0.0, None, None)
    finally:
        del asr.model.transcribe
    text = " ".join(s.text for s in segs).lower()
    assert calls == [(None, (0.0,)), (None, TEMPERATURES[1:])], calls
    assert sizes[0] == a.size and sizes[1] < a.size / 2, sizes  # the last sentence's audio, not the window
    assert "soap dispensers" in text and "madrid" in text and "22" in text, text
    assert segs == sorted(segs, key=lambda s: s.t0) and segs[-1].t0 > 3.0, segs  # stamped in the window


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_a_fallback_worse_than_the_first_decoding_is_not_kept(asr):
    """Whisper keeps the best of its tries: a fallback decoding less likely than the one at temperature 0 (forced
    here) leaves the first decoding's words."""
    from models import asr_window

    a = _speech()
    first = asr_window.whisper(asr.model, a, None, None, (0.0,), asr.window_options())
    calls = _spy(asr, lambda kw, segs, x: [replace(s, avg_logprob=-1.05) for s in segs] if kw["temperature"] == [0.0]
                 else [replace(s, text=" Nonsense.", avg_logprob=-3.0) for s in segs])
    try:
        text = " ".join(s.text for s in asr._transcribe(a, 0.0, None, None))
    finally:
        del asr.model.transcribe
    assert len(calls) == 2 and "nonsense" not in text.lower(), (calls, text)
    assert [s.text for s in first] and "madrid" in " ".join(s.text for s in first).lower()


def test_a_seen_window_keeps_its_speech(asr, tmp_path):
    """Held-out 14's template meeting (espeak en-gb-x-rp+f3), the 20-s window from 39.1 s with the prompt and the
    hotwords the pipeline gave it: Whisper base wrote "May Fans Ceiling Cabinet" for its last 10 s, then sampled
    the same at higher temperatures (7.7-19.4 s of CPU), and the speech was lost. Now the window keeps the
    action item and the anniversary said in it."""
    from tests.fixtures.styles import cached_style

    truth = cached_style("template", "heldout14", seed=0, root=str(tmp_path))
    a = load_audio(truth.path)[int(39.136 * SR):int((39.136 + 20.336) * SR)]
    prompt = ("Galleon Shoe Shelves. Voltage:46volts. Gardener: Anastasia. Hollowmere crew check-in · 2. "
              "Bagatelle Light Switches. Voltage: 96 volts. Ro0ms: 69. Hollowmere crew check-in · 3.")
    calls = _spy(asr, lambda kw, segs, x: segs)
    try:
        text = " ".join(s.text for s in asr._transcribe(a, 39.136, prompt, HOT))
    finally:
        del asr.model.transcribe
    assert "August 22" in text and "Fabian" in text and "soap dispensers" in text, text
    assert "Ceiling Cabinet" not in text, text
    assert len(calls) <= 2 and calls[0] == (HOT, (0.0,)), calls  # never the fallback's sampling of the hints


def test_a_window_its_prompt_holds_in_a_loop_keeps_its_speech(asr, tmp_path):
    """Held-out 17's template meeting (espeak en-gb-x-gbclan+m2), the 20-s window from 100.0 s with the prompt the
    pipeline gave it before the OCR read bullets as "。": Whisper base looped over the whole window at temperature 0
    and again at 0.2/0.4, and the window was dropped with two facts and an action item. Decoded once more without
    the prompt (the hotwords kept), it keeps them."""
    from tests.fixtures.styles import cached_style

    truth = cached_style("template", "heldout17", seed=0, root=str(tmp_path))
    a = load_audio(truth.path)[int(100.016 * SR):int((100.016 + 19.98) * SR)]
    prompt = ("Narwhal Doorstop Wedges. 。 Beekeeper: Dorian. 。 Sawmill: Katowice. Fernhollow midweek assembly · 6.")
    hot = "Wolfram Pins Drawing Pegs Clothes Honoria Eustace Brushes Dustpan Lille Bands Rubber Crumbs Toaster"
    prompts: list = []
    caps: list = []
    lengths: list = []
    real = asr.model.transcribe

    def transcribe(x, *args, **kw):
        segs, info = real(x, *args, **kw)
        segs = list(segs)
        prompts.append((kw.get("initial_prompt"), tuple(kw["temperature"]),
                        any(s.compression_ratio > 2.4 for s in segs)))
        caps.append(kw.get("max_new_tokens"))
        lengths.append(sum(len(s.tokens) for s in segs))
        return segs, info

    asr.model.transcribe = transcribe
    try:
        text = " ".join(s.text for s in asr._transcribe(a, 100.016, prompt, hot))
    finally:
        del asr.model.transcribe
    assert "97" in text and "79 members" in text and "drawing pins" in text, (text, prompts)
    assert prompts[0] == (prompt, (0.0,), True), prompts  # the loop this window fell into
    # each decoding stopped at WINDOW_TOKENS_PER_S tokens a second of audio: the loop ran to the cap, not to 448
    assert caps[0] == int(np.ceil(a.size / SR * WINDOW_TOKENS_PER_S)) and all(c and c <= caps[0] for c in caps), caps
    assert lengths[0] <= caps[0] and all(n <= c for n, c in zip(lengths, caps)), (lengths, caps)
    if prompts[1][2]:  # the fallback looped too (it does with this seed): once more, without the prompt
        assert prompts[1][:2] == (prompt, TEMPERATURES[1:]) and prompts[2] == (None, (0.0,), False), prompts


def test_the_fallback_keeps_the_first_decoding_when_no_speech_is_left_or_the_retry_loops(monkeypatch):
    """Pure checks of `fall_back` with a stand-in recognizer: under 0.1 s left after the last passing segment, the
    failing decoding is kept and nothing is decoded; a retry that loops never replaces it; a retry more likely
    than it does."""
    from models import asr_window
    from models.asr_window import WindowOptions, fall_back

    from dataclasses import dataclass

    @dataclass
    class Seg:  # faster-whisper's Segment is a dataclass too
        start: float
        end: float
        avg_logprob: float
        compression_ratio: float = 1.2
        text: str = " x"

    failed = [Seg(0.5, 1.95, -1.5)]
    calls = []
    monkeypatch.setattr(asr_window, "whisper", lambda model, a, *rest: calls.append(a.size) or [])
    assert fall_back(None, np.zeros(2 * SR, np.float32), None, None, failed, 1.95, WindowOptions()) is failed
    assert calls == []
    for retry, kept in (([Seg(0.0, 1.0, -0.3, 3.0)], "failed"), ([Seg(0.0, 1.0, -0.3)], "retry"),
                        ([Seg(0.0, 1.0, -2.0)], "failed"), ([], "failed")):
        monkeypatch.setattr(asr_window, "whisper", lambda model, a, *rest, r=retry: calls.append(a.size) or r)
        got = fall_back(None, np.zeros(4 * SR, np.float32), None, None, failed, 1.0, WindowOptions())
        assert (got is failed) == (kept == "failed"), (retry, got)
        if kept == "retry":
            assert got[0].start == 1.0 and got[0].end == 2.0  # stamped in the window, after the passing speech
    assert calls == [3 * SR] * 4  # only the audio after the last passing segment


def test_a_decoding_that_loops_at_every_temperature_is_tried_without_the_prompt(monkeypatch):
    """Pure checks of `fall_back`'s last resort: where the first decoding and the fallback both loop and a prompt
    was given, the speech is decoded once more at temperature 0 without the prompt (hotwords kept) and kept unless
    it loops too; without a prompt, or with a fallback that passes, there is no third decoding."""
    from dataclasses import dataclass

    from models import asr_window
    from models.asr_window import WindowOptions, fall_back

    @dataclass
    class Seg:
        start: float
        end: float
        avg_logprob: float
        compression_ratio: float = 1.2
        text: str = " x"

    loop = [Seg(0.0, 3.0, -0.1, 12.0)]
    for prompt, at_02, unprompted, want_calls, kept in (
            ("Slide.", loop, [Seg(0.0, 1.0, -0.4)], 2, "unprompted"),
            ("Slide.", loop, loop, 2, "failed"),                       # loops without it too: nothing better
            ("Slide.", [Seg(0.0, 1.0, -0.6)], None, 1, "retry"),       # the fallback passed: no third decoding
            (None, loop, None, 1, "failed")):                         # no prompt to leave out
        calls = []

        def whisper(model, a, p, hot, temps, opts, at_02=at_02, unprompted=unprompted):
            calls.append((p, hot, tuple(temps)))
            return at_02 if tuple(temps) != (0.0,) else unprompted

        monkeypatch.setattr(asr_window, "whisper", whisper)
        got = fall_back(None, np.zeros(4 * SR, np.float32), prompt, "Hot", loop, 1.0, WindowOptions())
        assert len(calls) == want_calls and calls[0] == (prompt, "Hot", TEMPERATURES[1:]), calls
        if want_calls == 2:
            assert calls[1] == (None, "Hot", (0.0,)), calls
        if kept == "failed":
            assert got is loop
        else:
            assert got[0].start == 1.0 and got[0].compression_ratio < 2.4  # stamped after the passing speech


def test_a_decoding_is_capped_only_where_the_prompt_leaves_room(asr):
    tok = asr.model.hf_tokenizer
    assert max_new_tokens(asr.model, 20.0, "Narwhal Doorstop Wedges.", "Honoria Eustace") == 20 * WINDOW_TOKENS_PER_S
    assert max_new_tokens(asr.model, 20.0, None, None) == 240
    long = " ".join(["Kaleidoscope Armadillo"] * 120)  # each half of Whisper's context full: no room for a cap
    assert len(tok.encode(" " + long).ids) > 223 and max_new_tokens(asr.model, 20.0, long, long) is None
    assert max_new_tokens(object(), 20.0, None, None) is None  # a model without the tokenizer: Whisper's own limit


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_the_cap_does_not_change_a_decoding_under_it(asr):
    """Speech decodes to far fewer tokens than the cap: the same segments with and without it."""
    from models.asr_window import WindowOptions

    a = _speech()
    opts = WindowOptions()
    capped = whisper(asr.model, a, "Fabian soap dispensers.", "Fabian Madrid", (0.0,), opts)
    real = asr.model.transcribe
    asr.model.transcribe = lambda x, *args, **kw: real(x, *args, **{**kw, "max_new_tokens": None})
    try:
        free = whisper(asr.model, a, "Fabian soap dispensers.", "Fabian Madrid", (0.0,), opts)
    finally:
        del asr.model.transcribe
    assert [(s.text, s.start, s.end) for s in capped] == [(s.text, s.start, s.end) for s in free]
    assert "Madrid" in " ".join(s.text for s in capped) and sum(len(s.tokens) for s in capped) < 0.5 * \
        max_new_tokens(asr.model, a.size / SR, "Fabian soap dispensers.", "Fabian Madrid")
