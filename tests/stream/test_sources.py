"""Sources on real encoded files: timestamps, seeking, pacing, audio alignment, queues."""
import threading
import time

import numpy as np
import pytest

from stream.clipper import Clipper
from stream.queues import Closed, FrameQueue
from stream.sources import FileSource, PushSource, Sampler, SourceError, open_source, webcam_url
from stream.types import AudioChunk, Frame


def frames_of(src):
    return [x for x in src if isinstance(x, Frame)]


def test_file_source_samples_at_target_fps_with_media_time(media):
    frames = frames_of(FileSource(media["video"], fps=2))
    ts = [f.t for f in frames]
    assert len(frames) == 24
    assert ts[0] == pytest.approx(0.0, abs=0.07)
    assert np.allclose(np.diff(ts), 0.5, atol=0.07)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8


def test_file_source_decodes_every_frame_without_fps(media):
    src = FileSource(media["noaudio"])
    frames = frames_of(src)
    assert len(frames) == 6 * 15
    assert src.stats.dropped == 0


def test_seek_starts_at_the_requested_time(media):
    frames = frames_of(FileSource(media["video"], fps=1, start=7.3))
    assert frames[0].t >= 7.3 - 1e-6 and frames[0].t < 7.5
    assert frames[-1].t > 11


def test_realtime_pacing_follows_the_media_clock(media):
    t0 = time.monotonic()
    frames = frames_of(FileSource(media["noaudio"], fps=2, realtime=True, start=3.0))
    elapsed = time.monotonic() - t0
    span = frames[-1].t - frames[0].t
    assert elapsed >= span * 0.9 and elapsed < span + 2.0


def test_skim_decodes_keyframes_only(media):
    from tests.fixtures.video import make_video
    import tempfile, os
    p = os.path.join(tempfile.mkdtemp(), "gop.mp4")
    make_video(p, seconds=6, gop=15, audio_hz=None)
    full = FileSource(p)
    n_full = len(frames_of(full))
    skim = FileSource(p, skim=True)
    n_skim = len(frames_of(skim))
    assert 3 <= n_skim <= n_full / 5


def test_audio_is_16k_mono_and_covers_the_media(media):
    src = FileSource(media["video"], fps=1)
    chunks = [x for x in src if isinstance(x, AudioChunk)]
    audio = np.concatenate([c.samples for c in chunks])
    assert chunks[0].rate == 16000 and audio.dtype == np.float32
    assert len(audio) / 16000 == pytest.approx(12.0, abs=0.2)
    # a 440 Hz tone survives resampling: its spectrum peaks there
    spec = np.abs(np.fft.rfft(audio[16000:32000]))
    assert abs(np.argmax(spec) - 440) <= 3


@pytest.mark.parametrize("kind,message", [
    ("empty", "empty"), ("text", "cannot read"), ("truncated", "cannot read"),
    ("missing", "no such file")])
def test_bad_files_fail_with_a_clear_reason(media, kind, message):
    path = media.get(kind, "/nonexistent/video.mp4")
    with pytest.raises(SourceError, match=message):
        list(FileSource(path))


def test_unsupported_url_scheme():
    with pytest.raises(SourceError, match="unsupported source"):
        open_source("http://example.invalid/x.mp4")


def test_webcam_spec_maps_to_v4l2_on_linux():
    url, fmt, opts = webcam_url("webcam:2")
    assert (url, fmt) == ("/dev/video2", "v4l2")
    assert webcam_url("/dev/video5")[0] == "/dev/video5"


def test_missing_webcam_is_a_clear_error():
    with pytest.raises(SourceError, match="no webcam"):
        open_source("webcam:97")


def test_drop_oldest_queue_counts_and_keeps_latest():
    q = FrameQueue(3, drop_oldest=True)
    for i in range(10):
        assert q.put(i)
    assert q.dropped == 7
    assert [q.get(0.1) for _ in range(3)] == [7, 8, 9]


def test_blocking_queue_applies_back_pressure_and_drops_nothing():
    q = FrameQueue(2, drop_oldest=False)
    got = []

    def consume():
        time.sleep(0.3)
        while True:
            try:
                got.append(q.get(1))
            except (Closed, TimeoutError):
                return

    th = threading.Thread(target=consume)
    th.start()
    t0 = time.monotonic()
    for i in range(6):
        q.put(i)
    blocked = time.monotonic() - t0
    q.close()
    th.join()
    assert got == list(range(6)) and q.dropped == 0
    assert blocked >= 0.25  # the producer waited for the slow consumer


def test_push_source_keeps_only_the_latest_frame():
    src = PushSource(keep=1)
    for i in range(5):
        src.push(np.full((8, 8, 3), i, np.uint8))
    src.close()
    frames = list(src)
    assert len(frames) == 1 and frames[0].image[0, 0, 0] == 4
    assert src.stats.dropped == 4
    with pytest.raises(SourceError):
        src.push(np.zeros((8, 8), np.float32))


def test_sampler_does_not_burst_after_a_gap():
    s = Sampler(1.0)
    ts = [0, 0.5, 1.0, 1.5, 2.0, 10.0, 10.2, 10.5, 11.0]
    kept = [t for t in ts if s.want(t)]
    assert kept == [0, 1.0, 2.0, 10.0, 11.0]


def test_clipper_cuts_at_scene_changes_and_aligns_audio(media):
    c = Clipper(clip_seconds=2.0, scene_cut=0.25, wait_audio=True)
    clips = []
    for item in FileSource(media["video"], fps=2):
        c.insert(item)
        clips += c.process()
    clips += c.finish(end=12.0)
    bounds = [(round(k.t0, 1), round(k.t1, 1)) for k in clips]
    assert any(abs(k.t0 - 4.0) < 0.3 for k in clips) and any(abs(k.t0 - 8.0) < 0.3 for k in clips)
    for k in clips:
        assert k.t1 - k.t0 <= 2.0 + 1e-6, bounds
        assert k.audio is not None and abs(len(k.audio) / 16000 - (k.t1 - k.t0)) < 0.05
    assert clips[0].keyframe[0] is True
    assert clips[-1].t1 == pytest.approx(12.0)


def test_audio_only_file_gives_audio_on_the_media_clock(media):
    src = FileSource(media["audio_only"], fps=1)
    assert src.audio_only and src.has_audio and src.duration == pytest.approx(2.0, abs=0.1)
    items = list(src)
    assert not [i for i in items if isinstance(i, Frame)]
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    assert chunks[0].t == pytest.approx(0.0, abs=0.05)
    assert sum(c.samples.size for c in chunks) / 16000 == pytest.approx(2.0, abs=0.1)


def test_corrupt_audio_track_is_counted_and_the_video_still_decodes(media, tmp_path):
    from tests.fixtures.video import corrupt_audio

    bad = corrupt_audio(media["video"], str(tmp_path / "bad_audio.mp4"))
    good_frames = frames_of(FileSource(media["video"], fps=2))
    src = FileSource(bad, fps=2)
    frames = frames_of(src)
    assert [f.t for f in frames] == [f.t for f in good_frames]
    assert src.stats.audio_errors > 0


def test_clipper_cuts_audio_only_clips_on_the_audio_clock():
    c = Clipper(clip_seconds=2.0, audio_only=True)
    clips = []
    for i in range(10):  # 5 s of audio in 0.5 s chunks
        c.insert(AudioChunk(np.full(8000, i, np.float32), t=i * 0.5))
        clips += c.process()
    assert [(k.t0, k.t1) for k in clips] == [(0.0, 2.0), (2.0, 4.0)]
    clips += c.finish()
    assert [(k.t0, k.t1) for k in clips][-1] == (4.0, 5.0)
    assert all(not k.frames and k.audio.size == round((k.t1 - k.t0) * 16000) for k in clips)
    assert clips[1].audio[0] == 4 and clips[2].audio[-1] == 9  # each clip holds its own stretch of audio


@pytest.mark.parametrize("fps, jitter", [(1.0, 0.0), (1.0, 0.04), (2.0, 0.03), (8.0, 0.0), (8.0, 0.01)])
def test_clips_hold_clip_seconds_of_jittered_camera_frames(fps, jitter):
    """A live camera's frames arrive a little early or late: a clip still holds clip_seconds of samples (at 1 fps
    two frames, not three because the third frame was stamped 1.97 s after the first)."""
    rng = np.random.default_rng(0)
    c = Clipper(clip_seconds=2.0, scene_cut=None)
    img = np.zeros((8, 8, 3), np.uint8)
    n = int(20 * fps)
    for i in range(n):
        c.insert(Frame(t=i / fps + float(rng.uniform(-jitter, jitter)), wall=0.0, image=img))
    clips = c.process() + c.finish(end=n / fps)
    per = int(round(2.0 * fps))
    assert [len(k.frames) for k in clips] == [per] * (n // per)
    assert all(abs(k.t0 - 2.0 * j) <= jitter + 1e-9 for j, k in enumerate(clips))
