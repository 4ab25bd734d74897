"""Parallel file decoding (stream/decode.py through FileSource) against one decoder, on real encoded files."""
import threading
import time

import av
import numpy as np
import pytest

from stream.decode import Sampler
from stream.keyframes import keyframes_cover, skip_rule
from stream.sources import FileSource, SourceError
from stream.types import AudioChunk, Frame, StreamEvent
from tests.stream.media import break_video_chunks, encode, size_change

FILES = {  # name: encode() settings
    "gop15": dict(gop=15, bframes=0),
    "gop15_b3": dict(gop=15, bframes=3),
    "gop7_b2_open": dict(gop=7, bframes=2, open_gop=True),
    "gop45_b2_30fps": dict(gop=45, bframes=2, fps=30, seconds=5),
    "gap": dict(gop=15, bframes=2, pts_gaps=((40, 20), (70, 3))),  # 1.3 s and 0.2 s without frames
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("decode")
    files = {name: encode(str(d / f"{name}.mp4"), **kw) for name, kw in FILES.items()}
    files["long"] = encode(str(d / "long.mp4"), seconds=20, gop=15, bframes=2)  # 20 segments: more than a window
    return files


def read(path, **kw):
    src = FileSource(path, **kw)
    items = list(src)
    return src, [i for i in items if isinstance(i, Frame)], items


def audio_of(items):
    return np.concatenate([i.samples for i in items if isinstance(i, AudioChunk)])


def assert_same(a, b):
    assert [f.t for f in a] == [f.t for f in b]
    assert all(x.image.shape == y.image.shape and np.array_equal(x.image, y.image) for x, y in zip(a, b))


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("fps", [1.0, 2.0, 8.0, None])
def test_parallel_frames_equal_one_decoders(files, name, fps):
    serial, ref, ref_items = read(files[name], fps=fps, workers=1, exact=True)
    par, got, items = read(files[name], fps=fps, workers=3, exact=True)
    assert len(ref) >= (5 if fps else 60)
    assert_same(got, ref)
    ts = [f.t for f in got]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)  # in order, each frame once
    assert par.stats.frames_decoded == serial.stats.frames_decoded
    assert np.array_equal(audio_of(items), audio_of(ref_items))
    assert not par.stats.notes
    assert any(t.name.startswith("vigil-decode") for t in threading.enumerate()) is False


def test_parallel_really_splits_the_file(files):
    from stream.keyframes import index_keyframes, plan_segments

    with av.open(files["gop15_b3"]) as c:
        vs = c.streams.video[0]
        segs = plan_segments(index_keyframes(vs), vs.time_base, 0.0, 0.0, None, 0.5)
    assert len(segs) == 6 and [s.pos for s in segs[1:]] == [s.end_pos for s in segs[:-1]]
    seen = set()
    orig = FileSource._produce_parallel

    def spy(self, segments, skip):
        seen.add(len(segments))
        return orig(self, segments, skip)

    FileSource._produce_parallel = spy
    try:
        read(files["gop15_b3"], fps=2, workers=3)
    finally:
        FileSource._produce_parallel = orig
    assert seen == {5}  # segments of at least 1 s: keyframes every second, timed by decode time (2 frames early)


def test_start_offset_matches_one_decoder(files):
    _, ref, _ = read(files["gop15_b3"], fps=2, start=2.3, workers=1, exact=True)
    _, got, _ = read(files["gop15_b3"], fps=2, start=2.3, workers=3, exact=True)
    assert_same(got, ref)
    assert got[0].t >= 2.3 - 1e-6 and got[0].t < 2.4


def test_skip_rule_moves_samples_by_less_than_half_an_interval(files):
    path = files["gop45_b2_30fps"]
    full, ref, _ = read(path, fps=1, workers=1, exact=True)
    for workers in (1, 3):
        fast, got, _ = read(path, fps=1, workers=workers)
        assert fast.stats.frames_decoded < 0.8 * full.stats.frames_decoded  # non-reference B-frames not decoded
        assert len(got) == len(ref)
        assert all(abs(a.t - b.t) < 0.5 for a, b in zip(got, ref))
    _, a, _ = read(path, fps=1, workers=1)
    _, b, _ = read(path, fps=1, workers=3)
    assert_same(b, a)  # the skip rule is the same in both paths


def test_keyframes_only_when_they_are_dense_enough(tmp_path):
    path = encode(str(tmp_path / "gop5.mp4"), seconds=4, fps=30, gop=5, bframes=2, audio=False)
    src, got, _ = read(path, fps=2, workers=2)
    assert src.stats.frames_decoded == 24  # 4 s x 6 keyframes a second, nothing else decoded
    _, ref, _ = read(path, fps=2, workers=1, exact=True)
    assert len(got) == len(ref) and all(abs(a.t - b.t) <= 0.25 + 1e-6 for a, b in zip(got, ref))


def test_skip_rule():
    assert skip_rule(1.0, 30.0) == "NONREF"
    assert skip_rule(8.0, 30.0) == "DEFAULT"   # 8 fps: an interval spans under 8 frames
    assert skip_rule(1.0, 30.0, keys_cover=True) == "NONKEY"
    assert skip_rule(1.0, 30.0, keys_cover=True, exact=True) == "DEFAULT"
    assert skip_rule(None, 30.0) == "DEFAULT" and skip_rule(None, 30.0, skim=True) == "NONKEY"
    keys = [0.0, 1.0, 2.0, 3.0]
    assert keyframes_cover(keys, 1.0, 0.0, 4.0)           # a keyframe at every slot's start
    assert keyframes_cover(keys, 2.0, 0.0, 4.0) is False  # slots at .5, 1.5 ... wait a whole interval
    assert keyframes_cover([0.0, 2.0], 1.0, 0.0, 4.0) is False
    assert keyframes_cover(keys, 1.0, 0.0, 9.0) is False  # the tail after the last keyframe
    assert keyframes_cover([0.0, 0.4, 0.8, 1.2, 1.6], 1.0, 0.0, 2.0)


def test_one_second_gop_at_one_fps_decodes_keyframes_only_and_keeps_the_same_frames(tmp_path):
    path = encode(str(tmp_path / "gop30.mp4"), seconds=5, fps=30, gop=30, bframes=2, audio=False)
    _, ref, _ = read(path, fps=1, workers=1, exact=True)
    for workers in (1, 3):
        src, got, _ = read(path, fps=1, workers=workers)
        assert src.stats.frames_decoded == 5
        assert_same(got, ref)


def test_sampler_slots_are_pure_in_time_and_predecessor():
    s = Sampler(2.0, anchor=0.0)
    kept = [t for t in [0.0, 0.2, 0.4, 0.5, 0.9, 1.0, 3.7, 3.8, 4.0] if s.want(t)]
    assert kept == [0.0, 0.5, 1.0, 3.7, 4.0]


def test_corrupt_middle_is_noted_and_decoding_goes_on(files, tmp_path):
    good, bad = files["gop15_b3"], str(tmp_path / "bad.mp4")
    lost0, lost1 = break_video_chunks(good, bad, 2.0, 3.0)
    _, ref, _ = read(good, fps=2, workers=1, exact=True)
    _, serial, _ = read(bad, fps=2, workers=1, exact=True)
    assert serial[-1].t < lost0 + 0.5  # one decoder stops at the damage, silently
    src, got, items = read(bad, fps=2, workers=3, exact=True)
    before = [f for f in ref if f.t < lost0 - 1.0]  # up to the damage (its GOP's frames may reference it)
    assert before and assert_same(got[:len(before)], before) is None  # nothing before the damage is lost
    resumed = min(k for k in range(6) if k > lost1)  # keyframes every second
    after = [f for f in ref if f.t >= resumed]
    assert after and assert_same([f for f in got if f.t >= resumed], after) is None  # decoding went on
    assert 1 <= len(src.stats.notes) <= 2
    assert all("could not be decoded" in n and "decoding went on" in n for n in src.stats.notes)
    errors = [i for i in items if isinstance(i, StreamEvent) and i.kind == "error"]
    assert [e.detail for e in errors] == src.stats.notes
    assert isinstance(items[-1], StreamEvent) and items[-1].kind == "eof"


def test_size_change_mid_stream_is_noted(tmp_path):
    path = size_change(str(tmp_path / "sizes.mp4"), str(tmp_path))
    _, ref, _ = read(path, fps=5, workers=1, exact=True)
    src, got, _ = read(path, fps=5, workers=2, exact=True)
    assert_same(got, ref)
    shapes = [f.image.shape for f in got]
    assert shapes[0] == (240, 320, 3) and shapes[-1] == (272, 480, 3)
    assert sum(a != b for a, b in zip(shapes, shapes[1:])) == 1
    assert src.stats.notes == [n for n in src.stats.notes if "320x240 to 480x272" in n] and len(src.stats.notes) == 1


def decode_threads():
    return [t for t in threading.enumerate() if t.name.startswith(("vigil-decode", "vigil-audio", "vigil-reader"))]


@pytest.mark.parametrize("how", ["close", "break", "other_thread"])
def test_close_mid_decode_stops_every_thread_and_frees_containers_in_their_own_thread(files, monkeypatch, how):
    opened, closed, lock = [], [], threading.Lock()
    real_open = av.open

    class Tracked:
        def __init__(self, c):
            self._c = c
            with lock:
                opened.append((self, threading.current_thread().name))

        def __getattr__(self, name):
            return getattr(self._c, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def close(self):
            with lock:
                closed.append((self, threading.current_thread().name))
            self._c.close()

    monkeypatch.setattr(av, "open", lambda *a, **k: Tracked(real_open(*a, **k)))
    src = FileSource(files["long"], fps=8, workers=2, queue_size=2)
    it = iter(src)
    got = [next(it) for _ in range(4)]
    assert any(t.name.startswith("vigil-decode") for t in threading.enumerate())
    if how == "close":
        src.close()
    elif how == "break":
        it.close()  # what a for loop's break / Ctrl-C does to the generator
    else:
        th = threading.Thread(target=src.close)
        th.start()
        th.join(10)
    t0 = time.monotonic()
    while decode_threads() and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not decode_threads()
    assert len(got) == 4
    workers = [(c, name) for c, name in opened if name.startswith(("vigil-decode", "vigil-audio"))]
    assert len(workers) >= 2
    closers = dict((id(c), name) for c, name in closed)
    assert all(closers.get(id(c)) == name for c, name in workers)  # each closed, by the thread that used it


def test_workers_env_override(files, monkeypatch):
    monkeypatch.setenv("VIGIL_DECODE_WORKERS", "1")
    assert FileSource(files["gop15"]).workers == 1
    monkeypatch.setenv("VIGIL_DECODE_WORKERS", "lots")
    with pytest.raises(SourceError, match="VIGIL_DECODE_WORKERS must be a whole number"):
        FileSource(files["gop15"])


def test_file_without_an_index_uses_one_decoder(tmp_path):
    path = encode(str(tmp_path / "x.ts"), seconds=3, gop=15, bframes=2, audio=False, fmt="mpegts")
    src, got, _ = read(path, fps=2, workers=3)
    assert len(got) == 6 and not src.stats.notes


def test_a_tiny_frame_budget_holds_workers_back_without_changing_frames(files, monkeypatch):
    """Kept frames buffered ahead of the merger stay within VIGIL_DECODE_BUFFER_MB (the segment being merged always
    goes on): with a budget of one byte the workers decode one segment at a time and the frames are the same."""
    _, ref, _ = read(files["gop15_b3"], fps=8, workers=1, exact=True)
    monkeypatch.setenv("VIGIL_DECODE_BUFFER_MB", "0.000001")
    src, got, _ = read(files["gop15_b3"], fps=8, workers=3, exact=True)
    assert_same(ref, got)
    assert len(got) > 10


@pytest.mark.parametrize("gop,bframes,open_gop,fps,ratio", [(60, 2, False, 1.0, 0.8), (60, 2, False, 2.0, 0.95),
                                                             (45, 3, False, 1.0, 0.9), (40, 2, True, 1.0, 1.01),
                                                             (60, 0, False, 0.75, 0.8)])
def test_gop_tails_without_kept_frames_are_not_decoded(tmp_path, monkeypatch, gop, bframes, open_gop, fps, ratio):
    """GopTail: the kept frames equal those of the same decoder decoding every GOP to its end, with fewer decoded
    (open GOPs: keyframes later than the index says, which turns skipping off: the same frames, as many decoded)."""
    import stream.keyframes as K

    path = encode(str(tmp_path / "g.mp4"), seconds=12, fps=30, gop=gop, bframes=bframes, open_gop=open_gop)
    for workers in (1, 3):
        with monkeypatch.context() as m:
            m.setattr(K.GopTail, "skip", lambda self, *a: False)
            full, ref, ref_items = read(path, fps=fps, workers=workers)
        src, got, items = read(path, fps=fps, workers=workers)
        assert_same(got, ref)
        assert len(got) >= 8
        assert src.stats.frames_decoded < ratio * full.stats.frames_decoded, (workers, src.stats.frames_decoded,
                                                                        full.stats.frames_decoded)
        assert np.array_equal(audio_of(items), audio_of(ref_items))
        assert not src.stats.notes


class _Slots:
    anchor, period = 0.0, 1.0

    def slot(self, t):
        return int(t // 1.0)


def test_gop_tail_rule():
    from stream.keyframes import GopTail

    g = GopTail([0.0, 2.0, 4.0], _Slots())
    g.skip(True, 0.0)
    g.after(0.5)
    assert not g.skipping          # the slot starting at 1.0 lies before the next keyframe
    g.after(1.0)
    assert g.skipping and g.skip(False, 1.5) and g.skipped == 1
    assert not g.skip(True, 2.0) and not g.skipping
    g.after(1.9)                   # a frame that comes out after the keyframe went in: nothing more to skip
    assert not g.skipping
    g.after(3.0)
    assert g.skipping and not g.skip(True, 4.0)
    g.after(5.0)
    assert not g.skipping          # the last GOP is decoded to the end
    late = GopTail([0.0, 2.0, 4.0], _Slots())
    late.after(1.0)
    assert late.skipping and not late.skip(True, 2.5)   # the keyframe came later than the index said
    assert late.late_keys == 1 and not late.on
    late.after(2.6)
    assert not late.skipping
