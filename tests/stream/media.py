"""Encoded test files for the decoders: GOP / B-frame / open-GOP settings, a damaged sample table, a size change."""
from __future__ import annotations

import os
import struct
from fractions import Fraction
from typing import Optional

import av
import numpy as np

from tests.fixtures.video import scene_frame


def encode(path: str, seconds: float = 6.0, fps: int = 15, size: tuple[int, int] = (320, 240), gop: int = 15,
           bframes: int = 0, open_gop: bool = False, audio: bool = True, fmt: Optional[str] = None,
           pts_gaps: tuple = ()) -> str:
    """H.264 (libx264 veryfast) with `bframes` B-frames per run, keyframes every `gop` frames (scene cuts off, so
    the keyframes are where asked), optionally open GOPs, an AAC tone. pts_gaps: (frame index, frames skipped)."""
    w, h = size
    with av.open(path, "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}" + (":open-gop=1" if open_gop else "")
        vs.options = {"preset": "veryfast", "x264-params": params}
        vs.codec_context.time_base = Fraction(1, fps)
        pts = 0
        for i in range(int(seconds * fps)):
            pts += sum(n for at, n in pts_gaps if at == i)
            frame = av.VideoFrame.from_ndarray(scene_frame(i, fps, w, h, i // (2 * fps)), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, fps)
            pts += 1
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    if audio:
        _add_tone(path, seconds)
    return path


def _add_tone(path: str, seconds: float) -> None:
    """Remux `path` with a 440 Hz AAC track interleaved by time."""
    tmp = path + ".v.mp4"
    os.replace(path, tmp)
    with av.open(tmp) as inp, av.open(path, "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("aac", rate=16000, layout="mono")
        packets = []
        for p in inp.demux(vin):
            if p.dts is not None:
                packets.append((float(p.dts * p.time_base), 0, p))
        apts = 0
        while apts < seconds * 16000:
            tt = np.arange(apts, apts + 1024) / 16000
            af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32)[None],
                                            format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, apts, Fraction(1, 16000)
            for p in aout.encode(af):
                packets.append((float(p.dts * p.time_base), 1, p))
            apts += 1024
        for p in aout.encode():
            packets.append((float(p.dts * p.time_base), 1, p))
        for _, kind, p in sorted(packets, key=lambda x: (x[0], x[1])):
            p.stream = vout if kind == 0 else aout
            out.mux(p)
    os.remove(tmp)


def break_video_chunks(src: str, dst: str, t0: float, t1: float) -> tuple[float, float]:
    """Copy an MP4 whose sample table points the video chunks starting in [t0, t1) past the end of the file: the
    demuxer finds no data there (one decoder stops at the first; nothing says why). Returns the first and last
    presentation time of the video samples that were in those chunks."""
    raw = bytearray(open(src, "rb").read())
    with av.open(src) as c:
        vs = c.streams.video[0]
        samples = sorted((p.pos, float(p.pts * vs.time_base)) for p in c.demux(vs) if p.size and p.pts is not None)
    i = raw.find(b"stco")
    n = struct.unpack(">I", raw[i + 8:i + 12])[0]
    offsets = [struct.unpack(">I", raw[i + 12 + 4 * k:i + 16 + 4 * k])[0] for k in range(n)]
    first = dict(samples)
    lost: list[float] = []
    for k, off in enumerate(offsets):
        if off in first and t0 <= first[off] < t1:
            raw[i + 12 + 4 * k:i + 16 + 4 * k] = struct.pack(">I", len(raw) + 10_000_000)
            end = min([o for o in offsets if o > off] + [len(raw)])
            lost += [t for pos, t in samples if off <= pos < end]
    assert lost, "no video chunk starts in that stretch"
    open(dst, "wb").write(bytes(raw))
    return min(lost), max(lost)


def size_change(path: str, tmpdir: str, seconds: float = 4.0, fps: int = 15) -> str:
    """An MP4 whose H.264 stream changes from 320x240 to 480x272 half-way (two encodes joined in one stream)."""
    parts = []
    for k, size in enumerate([(320, 240), (480, 272)]):
        p = f"{tmpdir}/part{k}.ts"
        encode(p, seconds=seconds / 2, fps=fps, size=size, gop=fps, bframes=2, audio=False, fmt="mpegts")
        parts.append(open(p, "rb").read())
    joined = f"{tmpdir}/joined.ts"
    open(joined, "wb").write(b"".join(parts))
    with av.open(joined) as inp, av.open(path, "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        last, shift = None, 0
        for p in inp.demux(vin):
            if p.dts is None:
                continue
            if last is not None and p.dts + shift <= last:  # the second part's clock starts again
                shift = last - p.dts + int(1 / fps / p.time_base)
            p.pts, p.dts = p.pts + shift, p.dts + shift
            last = p.dts
            p.stream = vout
            out.mux(p)
    return path
