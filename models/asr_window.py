"""One window of speech through Whisper (faster-whisper), free of any stream's state: `recognize(model, audio,
t0, prompt, hotwords, opts)` -> (segments in media seconds, reason). `models.asr.Transcriber` cuts a stream into
windows, queues them and keeps the statistics; this decides what a window says.

- Decoded at temperature 0 first (`decode`). A window whose text is its hotwords (`asr_prompt.copies_hints`) is
  decoded again without them; one that fails Whisper's own tests (`falls_back`: a repetition loop, a low
  log-probability) has its speech from the failing segment on decoded again at the fallback's higher temperatures
  (`fall_back`), the better decoding kept; where that loops too, without the prompt.
- A window where Whisper stopped early (far fewer words than its speech holds: `asr_segments.cut_short`) keeps
  what it gave and has the speech after that decoded again (`decode_rest`).
- A window the English model barely understands is checked to be English (`is_english`) and dropped if not; so
  are segments below `min_logprob` or looping. What is kept is cut into sentences, each stamped at the pauses
  (`asr_segments.sentence_segments`, `snap_to_pauses`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from models.asr_prompt import copies_hints
from models.asr_segments import Segment, cut_short, rest_start, sentence_segments, snap_to_pauses

log = logging.getLogger(__name__)
SR = 16000

# Whisper's own fallback: a window decoded into a repetition loop (compression ratio above max_compression) or at a
# log-probability under FALLBACK_LOGPROB is decoded again at these temperatures, the best of them kept. Greedy alone
# sometimes loops over 20 s of clear speech ("Switching over to an avalanche to an avalanche ...", Whisper base, a
# seen speaker meeting), and the loop was dropped with all the speech in it.
TEMPERATURES = (0.0, 0.2, 0.4)
# faster-whisper's default log-probability below which a decoding falls back to the next temperature
FALLBACK_LOGPROB = -1.0
# a decoding stops after this many tokens per second of its audio: speech with its timestamps takes about 5 (espeak
# at 175 words a minute, 1.3 tokens a word, a timestamp pair every few seconds), so only a loop reaches it; without
# it a loop runs on to Whisper's 448 tokens with a beam of 5 (held-out 19's dense deck: 7.5 s at temperature 0 and 10 s
# for the fallback's two temperatures, of one 18-s window). A decoding under the cap is the same with or without it
WINDOW_TOKENS_PER_S = 12
WHISPER_MAX_LENGTH = 448  # Whisper's context in tokens: prompt and hotwords (each at most half of it) and output


@dataclass(frozen=True)
class WindowOptions:
    """How a window is decoded and what of it is kept (the Transcriber's settings; see its docstring)."""

    language: str = "en"
    beam_size: int = 5
    min_silence_s: float = 0.5       # Whisper's own VAD: a pause this long splits its speech chunks
    min_logprob: float = -1.1        # a segment below this is dropped (a window below it + 0.1: all of it)
    max_compression: float = 2.4     # a segment compressing better than this is a loop: dropped
    lang_check_logprob: float = -0.5  # a window below this is checked to be English
    word_times: bool = True          # segments cut into sentences, each stamped from its share of the time


def recognize(model, a: np.ndarray, t0: float, prompt: Optional[str], hotwords: Optional[str],
              opts: WindowOptions, get_speech=None) -> tuple[list[Segment], str]:
    """The sentences said in the window `a` (16 kHz mono float32, first sample at media time t0), and why there
    are none ("" when there are). `get_speech(a)`: voice activity chunks (start, end samples) without padding (the
    pauses where sentences end); none given, faster-whisper's Silero VAD. Never raises on audio."""
    if a.size < int(0.1 * SR):
        return [], "audio too short"
    if float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) < 1e-4:
        return [], "silent audio"
    try:
        segs = decode(model, a, prompt, hotwords, opts)
        speech = (get_speech or speech_chunks)(a)
        if cut_short(sum(len(x.text.split()) for x in segs), sum(e - b for b, e in speech) / SR):
            segs = decode_rest(model, a, speech, prompt, hotwords, segs, opts)
    except Exception as e:  # noqa: BLE001 - corrupt input must never escape
        log.warning("asr failed: %s", e)
        return [], f"speech recognition failed: {e}".splitlines()[0]
    dropped = 0
    # a whole window that the English model barely understands is foreign (or unintelligible) speech
    mean_lp = mean_logprob(segs) if segs else 0.0
    if segs and (mean_lp < opts.min_logprob + 0.1 or (mean_lp < opts.lang_check_logprob and not is_english(model, a))):
        segs, dropped = [], len(segs)
    kept = []
    for s in segs:
        if not s.text.strip():
            continue
        if s.avg_logprob < opts.min_logprob or s.compression_ratio > opts.max_compression:
            dropped += 1
            continue
        kept.append(s)
    if opts.word_times:
        out = snap_to_pauses([x for s in kept for x in sentence_segments(s.text, t0 + s.start, t0 + s.end)],
                             [(t0 + x / SR, t0 + y / SR) for (_, x), (y, _) in zip(speech, speech[1:])])
    else:
        out = [Segment(round(t0 + s.start, 3), round(t0 + s.end, 3), s.text.strip()) for s in kept]
    if out:
        return out, ""
    if dropped:
        return [], "speech not understood (not English, or unclear): low-confidence transcript dropped"
    return [], "no speech detected"


def decode(model, a: np.ndarray, prompt: Optional[str], hotwords: Optional[str], opts: WindowOptions) -> list:
    """Whisper's segments for a (times relative to a's start). Decoded at temperature 0 first; a window whose text
    is its hotwords (`copies_hints`) is decoded again without them, and one that fails Whisper's own tests
    (`falls_back`) has its speech from the first failing segment on decoded again at the fallback's temperatures
    (`fall_back`). (Whisper's fallback on a window that copied the hotwords sampled them again: 7.7-19.4 s of CPU
    for a 20-s window whose speech was then lost.)"""
    segs = whisper(model, a, prompt, hotwords, TEMPERATURES[:1], opts)
    if hotwords and copies_hints([s.text for s in segs], hotwords):
        log.info("asr: a window came out as its hotwords (%s): decoded again without them", hotwords)
        return whisper(model, a, prompt, None, TEMPERATURES, opts)
    bad = next((i for i, s in enumerate(segs) if falls_back(s, opts)), None)
    if bad is None or len(TEMPERATURES) < 2:
        return segs
    return segs[:bad] + fall_back(model, a, prompt, hotwords, segs[bad:], segs[bad - 1].end if bad else 0.0, opts)


def fall_back(model, a: np.ndarray, prompt: Optional[str], hotwords: Optional[str], failed: list, after: float,
              opts: WindowOptions) -> list:
    """Whisper's temperature fallback for the speech of a from `after` seconds (the end of the last segment that
    passed): decoded at the temperatures after 0 only, since `failed` is its decoding at 0; the better of the two
    by mean log-probability is kept (a loop is never better), as Whisper keeps the best of its tries. (Decoding
    the whole window again from temperature 0 repeated that decoding and the segments that had passed: a third to
    half of the fallback's time, 2-5 s of a 20-s window on the seen template meetings.) Where both decodings
    are loops and a prompt was given, the speech is decoded once more without it, at temperature 0."""
    cut = int(round(after * SR))
    if a.size - cut < int(0.1 * SR):  # no speech left to decode
        return failed
    def score(segs: list) -> float:  # a loop, or nothing, is never better
        loops = not segs or any(s.compression_ratio > opts.max_compression for s in segs)
        return float("-inf") if loops else mean_logprob(segs)

    def rest(p: Optional[str], temperatures: Sequence[float]) -> list:
        return [replace(x, start=x.start + after, end=x.end + after)
                for x in whisper(model, a[cut:], p, hotwords, temperatures, opts)]

    retry = rest(prompt, TEMPERATURES[1:])
    best = retry if score(retry) > score(failed) else failed
    if prompt and score(best) == float("-inf"):
        # the screen's words as prompt can hold Whisper in a loop at every temperature (held-out 17's slide deck:
        # 20 s of speech lost): the speech decoded once more without them, at temperature 0
        retry = rest(None, TEMPERATURES[:1])
        if score(retry) > float("-inf"):
            log.info("asr: a window looping with its prompt decoded again without it")
            return retry
    return best


def mean_logprob(segs: list) -> float:
    """Duration-weighted mean log-probability of (non-empty) segments (each at least 10 ms)."""
    dur = [max(0.01, s.end - s.start) for s in segs]
    return sum(s.avg_logprob * d for s, d in zip(segs, dur)) / sum(dur)


def falls_back(seg, opts: WindowOptions) -> bool:
    """Would Whisper decode this segment again at a higher temperature (a repetition loop, or a mean
    log-probability under `FALLBACK_LOGPROB` that is not a silence it skips)?"""
    return seg.compression_ratio > opts.max_compression or seg.avg_logprob < FALLBACK_LOGPROB


def whisper(model, a: np.ndarray, prompt: Optional[str], hotwords: Optional[str], temperatures: Sequence[float],
            opts: WindowOptions) -> list:
    """One faster-whisper call: segments of a at the given temperatures (the later ones its fallback), each
    decoding stopped at `max_new_tokens` (a loop's length)."""
    segs, _info = model.transcribe(
        a, language=opts.language, beam_size=opts.beam_size, vad_filter=True,
        vad_parameters=dict(min_silence_duration_ms=int(opts.min_silence_s * 1000), speech_pad_ms=200),
        condition_on_previous_text=False, without_timestamps=False, temperature=list(temperatures),
        compression_ratio_threshold=opts.max_compression, log_prob_threshold=FALLBACK_LOGPROB,
        initial_prompt=prompt, hotwords=hotwords, max_new_tokens=max_new_tokens(model, a.size / SR, prompt, hotwords))
    return list(segs)


def max_new_tokens(model, seconds: float, prompt: Optional[str], hotwords: Optional[str]) -> Optional[int]:
    """`WINDOW_TOKENS_PER_S` tokens per second of audio, where that leaves room for the prompt and hotwords in
    Whisper's context (faster-whisper refuses a cap that does not); None (Whisper's own limit) otherwise or
    without the model's tokenizer."""
    tok = getattr(model, "hf_tokenizer", None)
    if tok is None:
        return None
    half = WHISPER_MAX_LENGTH // 2 - 1  # faster-whisper keeps at most this many of each
    used = sum(min(len(tok.encode(" " + t.strip()).ids), half) for t in (prompt, hotwords) if t) + 8  # + special tokens
    cap = int(np.ceil(seconds * WINDOW_TOKENS_PER_S))
    return cap if cap + used <= WHISPER_MAX_LENGTH else None


def decode_rest(model, a: np.ndarray, speech: list[tuple[int, int]], prompt: Optional[str],
                hotwords: Optional[str], first: list, opts: WindowOptions) -> list:
    """A window Whisper cut short (`cut_short`): its segments kept up to where their words end at a usual pace
    (`rest_start`, a pause), and the speech after that decoded again on its own, shifted to the window's time."""
    cut = rest_start(speech, sum(len(x.text.split()) for x in first))
    if cut is None:
        return first
    c = cut / SR
    rest = [replace(x, start=x.start + c, end=x.end + c) for x in decode(model, a[cut:], prompt, hotwords, opts)]
    log.info("asr: speech after %.1f s of a window cut short decoded again (%d segments)", c, len(rest))
    return [replace(x, end=min(x.end, c)) for x in first if x.start < c] + rest if rest else first


def is_english(model, a: np.ndarray) -> bool:
    """Whether a window the recognizer was not sure of is English speech. A multilingual model told to write
    English translates other languages fluently (Italian, German, Spanish at a mean log-probability of -0.58 to
    -0.8; the dev and held-out voices' English windows score -0.15 to -0.52), so its own language detector
    decides: English unless it gives English under a quarter of the probability (espeak's French, German,
    Spanish, Italian, Polish: 0.00-0.14; the English windows: 0.37-0.99). An English-only model cannot tell."""
    if not getattr(getattr(model, "model", None), "is_multilingual", False):
        return True
    try:
        _lang, _p, probs = model.detect_language(a)
    except Exception as e:  # noqa: BLE001 - a check, never a reason to lose speech
        log.warning("language check failed: %s", e)
        return True
    return dict(probs).get("en", 0.0) >= 0.25


def speech_chunks(a: np.ndarray) -> list[tuple[int, int]]:
    """The voice activity chunks (start, end samples) of a by faster-whisper's Silero VAD (pauses of 250 ms),
    without the padding the recognizer's chunks get: the pauses between them are where sentences end."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        return [(x["start"], x["end"]) for x in get_speech_timestamps(a, VadOptions(min_silence_duration_ms=250,
                                                                                    speech_pad_ms=0))]
    except Exception:  # noqa: BLE001 - timing refinement only
        return []
