"""Where a video file can be split and what its decoder may skip, from the container's index.

Splitting. The container's index (MP4/MOV sample tables, Matroska cues) lists the keyframes with their byte
positions. Consecutive keyframes are grouped into segments of whole GOPs. A segment starts at its keyframe's
packet and owns the frames whose presentation time lies in [its keyframe's pts, the next segment's keyframe's pts);
frames of an open GOP that come out before the keyframe's pts (leading pictures) belong to the segment before,
which feeds the next keyframe and those pictures before draining its decoder. Files without an index (MPEG-TS, raw
H.264...) and realtime replay use one decoder (FileSource's serial path).

Skipping (`skip_rule`; FileSource(exact=True) turns it off, in the serial path too):
  - skim: keyframes only;
  - keyframes only ("NONKEY") when every sampling slot has a keyframe at most half an interval after its start
    (`keyframes_cover`, from the index): each sample is then the first keyframe of its slot, at most half an
    interval after the frame the full decode keeps (a 1 s GOP sampled at 1 fps: the same frames);
  - non-reference frames not decoded ("NONREF") when a sample interval spans at least NONREF_MIN_FRAMES frames:
    nothing references them and encoders emit them in short runs (x264: at most `bframes`, default 3, in a row),
    so a sample moves by at most such a run, under half an interval;
  - otherwise every frame is decoded;
  - and in every case but `exact`, the rest of a GOP is not decoded once it holds no frame the sampler keeps
    (`GopTail`): after a frame at t, every later frame before the next keyframe lies in t's slot, already served,
    exactly when the next slot starts at or after that keyframe (1 fps over 2 s GOPs: each GOP is decoded up to
    its second sample, about half of it). The kept frames are a full decode's.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Optional

NONREF_MIN_FRAMES = 8    # a sample interval must span this many frames before non-reference frames are skipped
SEGMENT_FRAMES = 32      # kept frames a segment aims at (whole GOPs: a long GOP makes a longer segment)
MIN_SEGMENT_S = 1.0


def pts_seconds(pts: int, time_base) -> float:
    """A timestamp in seconds, correctly rounded (integer arithmetic, no Fraction per frame)."""
    return pts * time_base.numerator / time_base.denominator


def skip_rule(fps: Optional[float], frame_rate: Optional[float], keys_cover: bool = False, skim: bool = False,
              exact: bool = False) -> str:
    """The decoder's skip_frame setting for this sampling (see the module's doc). keys_cover: `keyframes_cover`."""
    if skim:
        return "NONKEY"
    if exact or not fps:
        return "DEFAULT"
    if keys_cover:
        return "NONKEY"
    if frame_rate and frame_rate / fps >= NONREF_MIN_FRAMES:
        return "NONREF"
    return "DEFAULT"


def keyframes_cover(key_times: list[float], fps: Optional[float], start: float, end: Optional[float]) -> bool:
    """True when every sampling slot [start + i/fps, ...) before `end` has a keyframe at most half an interval after
    its start: decoding keyframes only then moves no sample by more than that (a camera's 1 s GOP at 1 fps: by 0)."""
    if not fps or not key_times or end is None:
        return False
    period, half = 1.0 / fps, 0.5 / fps
    i, k = 0, 0
    while (s := start + i * period) < end - half:
        while k < len(key_times) and key_times[k] < s - 1e-6:
            k += 1
        if k == len(key_times) or key_times[k] - s > half + 1e-6:
            return False
        i += 1
    return True


@dataclass(frozen=True)
class Segment:
    index: int
    seek: Optional[int]  # timestamp (stream time base) to seek to; None: read from the file's start
    pos: int             # byte position of the keyframe packet it starts with; -1: whatever the seek reaches
    end_pos: int         # byte position of the next segment's keyframe packet; -1: to the end of the file
    t0: float            # media seconds where it starts (from the index: approximate, for notes)


def index_keyframes(stream) -> list[tuple[int, int]]:
    """(timestamp, byte position) of the keyframes in the container's index; [] when it has none."""
    try:
        entries = stream.index_entries
        return [(e.timestamp, e.pos) for e in entries if e.is_keyframe and e.pos >= 0]
    except Exception:  # an old PyAV or a demuxer without an index
        return []


def key_delay(path: str) -> int:
    """pts - dts of the file's first video packet (stream time base): how far its decode times run ahead."""
    import av

    try:
        with av.open(path, mode="r") as c:
            for p in c.demux(c.streams.video[0]):
                if p.size == 0:
                    break
                if p.pts is not None and p.dts is not None:
                    return max(0, p.pts - p.dts)
    except (av.FFmpegError, OSError, IndexError):  # unknown: seeking falls back to decode times
        pass
    return 0


def key_times(keys: list[tuple[int, int]], time_base, delay: int, t_offset: float) -> list[float]:
    """Media seconds of the index's keyframes (its timestamps are decode times: `delay` moves them to pts)."""
    return [pts_seconds(ts + delay, time_base) - t_offset for ts, _ in keys]


def plan_segments(keys: list[tuple[int, int]], time_base, t_offset: float, start: float, start_seek: Optional[int],
                  span: float) -> list[Segment]:
    """Whole-GOP segments of at least `span` seconds; the first reads from `start_seek` (None: the file's start)."""
    bounds = []  # (seek timestamp, pos, t0) of each later segment's first keyframe
    last_t = start
    for ts, pos in keys:
        t = float(ts * time_base) - t_offset
        if t > start + 1e-6 and t - last_t >= span - 1e-6:
            bounds.append((ts, pos, t))
            last_t = t
    starts = [(start_seek, -1, start)] + bounds
    return [Segment(i, seek, pos, starts[i + 1][1] if i + 1 < len(starts) else -1, t0)
            for i, (seek, pos, t0) in enumerate(starts)]


def segment_span(duration: Optional[float], start: float, workers: int, fps: Optional[float],
                 frame_rate: Optional[float]) -> float:
    """Seconds a segment aims at: enough segments to keep the workers busy, few enough kept frames to buffer."""
    rate = fps or frame_rate or 30.0
    span = SEGMENT_FRAMES / rate
    if duration:
        span = min(span, max(0.0, duration - start) / (4 * workers))
    return max(MIN_SEGMENT_S, span)


class GopTail:
    """Drops the video packets of a GOP's tail that hold no frame the sampler keeps (see the module's doc).

    `keys`: media seconds of the keyframes (the index's, moved to presentation times), sorted; `sampler`: the
    decoder's (stream.decode.Sampler: `slot`, `anchor`, `period`). After each decoded frame the reader calls
    `after(t)`; before decoding a video packet it asks `skip(is_keyframe, t)`. Skipping ends at the next keyframe
    packet. A keyframe found later than the index said (the skip may have passed over a frame that would have
    been kept) turns skipping off for the rest of the file and is counted in `late_keys`."""

    def __init__(self, keys: list[float], sampler):
        self.keys, self.sampler = keys, sampler
        self.on = len(keys) > 1
        self.skipping = False
        self.expect = 0.0
        self.fed = float("-inf")  # latest keyframe packet handed to the decoder (frames come out later than packets)
        self.skipped = 0      # packets not decoded
        self.late_keys = 0

    def after(self, t: float) -> None:
        """A frame at t was decoded (and kept or not by the sampler, which has seen it)."""
        if not self.on or self.skipping or self.sampler.anchor is None:
            return
        i = bisect.bisect_right(self.keys, t + 1e-6)
        if i == len(self.keys) or self.keys[i] <= self.fed + 1e-6:
            return  # the last GOP runs to the end of the file (decoded: the stream's end time is the file's), or
            #         the decoder already has the next keyframe (this frame came out late)
        s = self.sampler
        next_slot = s.anchor + (s.slot(t) + 1) * s.period
        if next_slot >= self.keys[i] - 1e-6:
            self.skipping, self.expect = True, self.keys[i]

    def skip_packet(self, packet, time_base, t_offset: float) -> bool:
        """`skip` for a PyAV packet (its presentation time is only worked out for keyframes, the ones it is read of)."""
        key = packet.is_keyframe
        return self.skip(key, pts_seconds(packet.pts, time_base) - t_offset if key and packet.pts is not None else None)

    def skip(self, is_keyframe: bool, t: Optional[float]) -> bool:
        """True: do not decode this video packet (presentation time t, None when unknown)."""
        if not is_keyframe:
            if self.skipping:
                self.skipped += 1
            return self.skipping
        if self.skipping and t is not None and t > self.expect + 1e-3:
            self.on, self.late_keys = False, self.late_keys + 1
        self.skipping = False
        if t is not None:
            self.fed = max(self.fed, t)
        return False
