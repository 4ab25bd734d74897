"""The short MP4 of an alert's moment: decoded from the recording when there is one, else written from a live
stream's sampled frames (engine/alerts.py keeps a ring of them per stream)."""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from typing import Optional

import numpy as np

log = logging.getLogger("vigil.alerts")

PAD_S = 2.0                 # the clip covers the moment and this much before and after


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def write_moment(out_path: str, *, t0: float, t1: float, media_path: Optional[str] = None,
                 frames: Optional[list] = None, pad: float = PAD_S, max_width: int = 640,
                 max_fps: float = 15.0) -> Optional[tuple[float, float]]:
    """Write an MP4 (H.264, with the file's sound when it has some) of media time [t0 - pad, t1 + pad]: decoded
    from the file when there is one, else from `frames` [(t, rgb)] (a live stream's sampled frames). Written to
    a temporary name and renamed. Returns the (start, end) it covers, or None when there was nothing to write."""
    import av

    lo, hi = max(0.0, t0 - pad), t1 + pad
    pics: list[tuple[float, np.ndarray]] = []
    audio = None
    if media_path and os.path.isfile(media_path):
        pics, audio = _read_range(media_path, lo, hi, max_fps)
    if not pics and frames:
        pics = [(t, img) for t, img in frames if lo - 1e-6 <= t <= hi + 1e-6]
    if not pics:
        return None
    h, w = pics[0][1].shape[:2]
    scale = min(1.0, max_width / w)
    W, H = _even(w * scale), _even(h * scale)
    rate = 30
    start = pics[0][0]
    end = max(hi if media_path else t1, pics[-1][0])  # a live stream's frames: held to the moment's end
    if end - pics[-1][0] > 1e-3:  # hold the last picture to the end of the window
        pics.append((end, pics[-1][1]))
    tmp = out_path + ".tmp.mp4"
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with av.open(tmp, "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        ast = None
        if audio is not None and audio.size:
            ast = out.add_stream("aac", rate=16000, layout="mono")
        last_pts = -1
        for t, img in pics:
            pts = int(round((t - start) * rate))
            if pts <= last_pts:
                continue
            last_pts = pts
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[..., :3]), format="rgb24")
            vf = vf.reformat(width=W, height=H, format="yuv420p")
            vf.pts, vf.time_base = pts, Fraction(1, rate)
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if ast is not None:
            for i in range(0, audio.size, 1024):
                buf = audio[i:i + 1024]
                if buf.size < 1024:
                    buf = np.pad(buf, (0, 1024 - buf.size))
                af = av.AudioFrame.from_ndarray(buf[None, :].astype(np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 16000, i, Fraction(1, 16000)
                for pkt in ast.encode(af):
                    out.mux(pkt)
            for pkt in ast.encode(None):
                out.mux(pkt)
    os.replace(tmp, out_path)
    return start, end


def _read_range(path: str, lo: float, hi: float, max_fps: float) -> tuple[list, Optional[np.ndarray]]:
    """Frames (at most max_fps) and 16 kHz mono sound of media time [lo, hi] of a file (t as the ingest's file
    source counts it: from the video stream's start)."""
    import av

    pics: list = []
    audio = None
    with av.open(path) as c:
        if not c.streams.video:
            return [], None
        vs = c.streams.video[0]
        vs.thread_count = 2
        off = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        c.seek(int((lo + off) / vs.time_base), stream=vs, backward=True, any_frame=False)
        next_t = lo
        for f in c.decode(vs):
            if f.time is None:
                continue
            t = float(f.time) - off
            if t > hi + 1e-6:
                break
            if t < lo - 1e-6 or t + 1e-6 < next_t:
                continue
            next_t = t + 1.0 / max_fps
            pics.append((t, f.to_ndarray(format="rgb24")))
    try:
        with av.open(path) as c:
            if c.streams.audio:
                a = c.streams.audio[0]
                c.seek(int((lo + off) / a.time_base), stream=a, backward=True, any_frame=False)
                rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
                parts, first = [], None
                for f in c.decode(a):
                    if f.time is None:
                        continue
                    if float(f.time) - off > hi:
                        break
                    for g in rs.resample(f):
                        if first is None:
                            first = float(f.time) - off
                        parts.append(g.to_ndarray().reshape(-1))
                if parts and pics:
                    s = np.concatenate(parts).astype(np.float32)
                    cut = int(round((pics[0][0] - first) * 16000))
                    s = s[cut:] if cut >= 0 else np.concatenate([np.zeros(-cut, np.float32), s])
                    audio = s[: int(round((hi - pics[0][0]) * 16000))]
    except (av.error.FFmpegError, ValueError) as e:  # the clip keeps its pictures
        log.debug("alert clip without sound: %s", e)
    return pics, audio
