"""Group commit in the ingest pipeline (stream/pipeline.py): clips are stored in batches (one transaction each), a
memory counts as acknowledged when its batch commits and what follows a stored memory (watches, late evidence)
runs after that commit; kill -9 mid-ingest loses nothing acknowledged; a picture that changes size mid-stream
starts a new clip and ingestion goes on. Real PyAV files, the real bank on disk, a tiny random LLaVA-OV built in
code and loaded through load_vlm (CPU), the encoder worker forced on so tokens come back in batches."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from memory.bank import MemoryBank
from models.vlm import load_vlm
from stream.batcher import EncoderWorker
from stream.clipper import Clipper
from stream.pipeline import IngestConfig, IngestPipeline
from stream.sources import FileSource, PushSource
from stream.types import Frame
from tests.fixtures.video import make_video
from tests.models import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ov"))
    tiny.BUILDERS["llava_onevision"](d)
    return d


@pytest.fixture(scope="module")
def adapter(model_dir):
    return load_vlm(model_dir, device="cpu")


def committed(bank_dir: str) -> set[int]:
    """Memory ids a reader sees in the bank's SQLite (its own connection: committed rows only)."""
    db = sqlite3.connect(f"file:{os.path.join(bank_dir, 'bank.sqlite')}?mode=ro", uri=True, timeout=5)
    try:
        return {r[0] for r in db.execute("SELECT id FROM memories")}
    finally:
        db.close()


def test_clips_are_committed_in_groups_and_hooks_run_after_the_commit(adapter, tmp_path):
    video = make_video(str(tmp_path / "v.mp4"), seconds=20, fps=10, size=(96, 64), scenes=(7.0, 13.0))
    bank_dir = str(tmp_path / "bank")
    seen: list[tuple[int, bool, float]] = []
    with MemoryBank(bank_dir) as bank:
        worker = EncoderWorker(adapter, batch=True, max_frames=64, linger=0.2)
        pipe = IngestPipeline(FileSource(video, fps=4.0), bank, adapter, stream_id="cam", worker=worker,
                              config=IngestConfig(fps=4.0, budget=4, reducer="pool2d"), commit_max=64)
        pipe.on_clip = lambda mid, clip: seen.append((mid, mid in committed(bank_dir), clip.t0))
        adds = []
        add_many = bank.add_many
        bank.add_many = lambda items: adds.append(len(items)) or add_many(items)
        stats = pipe.run()
        stored = bank.list(stream="cam")
    assert stats.state == "finished" and stats.memories == len(stored) >= 10
    assert sum(adds) == len(stored) and len(adds) < len(stored) and max(adds) > 1   # groups, not one per clip
    assert pipe.commits == len(adds)
    assert [s[0] for s in seen] == sorted(m.id for m in stored)                     # every memory, in order
    assert all(ok for _, ok, _ in seen)                                              # each after its commit
    assert [s[2] for s in seen] == sorted(s[2] for s in seen)
    assert stored[-1].t1 == pytest.approx(20.0, abs=0.3)                            # nothing left in a buffer


def test_audio_is_decoded_only_when_speech_recognition_listens(adapter, tmp_path):
    from models.evidence import AsrEvidence

    class Ears(AsrEvidence):   # the real extractor's bookkeeping around a transcriber that records what it heard
        def __init__(self):
            heard = self.heard = []

            class T:
                reason = ""

                def insert(self, audio, t0):
                    heard.append((t0, audio.size))

                def process(self):
                    return []

                def finish(self):
                    return []
            super().__init__(T())

    video = make_video(str(tmp_path / "v.mp4"), seconds=6, fps=10, size=(96, 64))   # a 440 Hz AAC tone
    for evidence in ([], [Ears()]):
        with MemoryBank(str(tmp_path / f"bank{len(evidence)}")) as bank:
            src = FileSource(video, fps=2.0)
            assert src.has_audio
            pipe = IngestPipeline(src, bank, adapter, stream_id="cam", evidence=evidence,
                                  worker=EncoderWorker(adapter, batch=True),
                                  config=IngestConfig(fps=2.0, budget=4, reducer="pool2d"))
            stats = pipe.run()
        assert stats.state == "finished" and stats.memories >= 3
        assert src.has_audio is bool(evidence)
        if evidence:
            assert sum(n for _, n in evidence[0].heard) == pytest.approx(6 * 16000, rel=0.05)


@pytest.mark.parametrize("realtime, window", [(False, 22.0), (True, 0.0)])
def test_speech_of_a_file_is_recognized_in_full_windows(adapter, tmp_path, realtime, window):
    """A file ingested as fast as it decodes gives Whisper ~22-s windows (throughput); the same file replayed as if
    live keeps the latency-first cut at the first pause."""
    from models.asr import Transcriber
    from models.evidence import AsrEvidence

    video = make_video(str(tmp_path / "v.mp4"), seconds=2, fps=10, size=(96, 64))
    ears = AsrEvidence(Transcriber())
    with MemoryBank(str(tmp_path / "bank")) as bank:
        IngestPipeline(FileSource(video, fps=2.0, realtime=realtime), bank, adapter, stream_id="cam",
                       evidence=[ears], config=IngestConfig(fps=2.0, budget=4, reducer="pool2d"))
    assert ears.asr.window_s == window


def test_a_live_memory_is_searchable_within_a_second(adapter, tmp_path):
    """A live stream's clip is committed as soon as it is ready (nothing waits for a group to fill)."""
    bank_dir = str(tmp_path / "bank")
    src = PushSource(keep=4, stream_id="cam")
    frames = [np.asarray(f) for f in tiny.frames(T=8, H=64, W=80, seed=2)]
    with MemoryBank(bank_dir) as bank:
        worker = EncoderWorker(adapter, batch=True, linger=0.05)
        pipe = IngestPipeline(src, bank, adapter, stream_id="cam", worker=worker,
                              config=IngestConfig(fps=2.0, clip_seconds=1.0, budget=4, scene_cut=None)).start()
        for i in range(2):
            src.push(frames[i], t=0.5 * i)
        time.sleep(0.5)
        assert not committed(bank_dir)  # the clip [0, 1) is still open
        t = time.monotonic()
        src.push(frames[2], t=1.0)     # closes it; [1.0, ...) opens
        while not committed(bank_dir) and time.monotonic() - t < 5:
            time.sleep(0.02)
        latency = time.monotonic() - t
        src.close()
        pipe.stop()
        assert committed(bank_dir) and latency < 1.0, latency
        assert pipe.stats.memories == bank.count() == 2


def test_a_picture_that_changes_size_starts_a_new_clip(adapter, tmp_path):
    c = Clipper(2.0, scene_cut=None)
    small, big = np.zeros((64, 80, 3), np.uint8), np.zeros((72, 96, 3), np.uint8)
    for i, img in enumerate([small, small, big, big]):
        c.insert(Frame(img, 0.25 * i, 0.0))
    clips = c.finish()
    assert [len(k.frames) for k in clips] == [2, 2] and clips[0].t1 == pytest.approx(0.5)
    # through the pipeline: ingestion goes on, both sizes are stored, and it says what happened
    src = PushSource(keep=16, stream_id="cam")
    frames = [np.asarray(f) for f in tiny.frames(T=4, H=64, W=80)] + \
        [np.asarray(f) for f in tiny.frames(T=4, H=72, W=96, seed=1)]
    for i, f in enumerate(frames):
        src.push(f, t=0.5 * i)
    src.close()
    with MemoryBank(str(tmp_path / "bank")) as bank:
        pipe = IngestPipeline(src, bank, adapter, stream_id="cam", worker=EncoderWorker(adapter, batch=True),
                              config=IngestConfig(fps=2.0, clip_seconds=4.0, budget=4, scene_cut=None))
        stats = pipe.run()
        spans = [(m.t0, m.t1) for m in bank.list(stream="cam")]
    assert stats.state == "finished" and len(spans) == 2 and spans[1][0] == pytest.approx(2.0)
    assert any("changed size (80x64 to 96x72 at 2.0 s)" in n for n in stats.notes), stats.notes


KILL_SCRIPT = r"""
import sys
from memory.bank import MemoryBank
from models.vlm import load_vlm
from stream.batcher import EncoderWorker
from stream.pipeline import IngestConfig, IngestPipeline
from stream.sources import FileSource

ad = load_vlm(sys.argv[1], device="cpu")
bank = MemoryBank(sys.argv[3])
pipe = IngestPipeline(FileSource(sys.argv[2], fps=4.0, realtime=True), bank, ad, stream_id="cam",
                      worker=EncoderWorker(ad, batch=True, linger=0.3), commit_max=4, commit_wait=1.0,
                      config=IngestConfig(fps=4.0, clip_seconds=0.5, budget=4, scene_cut=None))
pipe.on_clip = lambda mid, clip: print("ACK", mid, flush=True)
pipe.run()
"""


def test_kill_9_mid_ingest_loses_nothing_acknowledged(model_dir, tmp_path):
    video = make_video(str(tmp_path / "v.mp4"), seconds=30, fps=10, size=(96, 64), audio_hz=None)
    bank_dir = str(tmp_path / "bank")
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, model_dir, video, bank_dir], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked: list[int] = []
    try:
        deadline = time.time() + 120
        while len(acked) < 10 and time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith("ACK "):
                acked.append(int(line.split()[1]))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    assert len(acked) >= 10, p.stderr.read()[-2000:]
    with MemoryBank(bank_dir) as bank:           # reopening for writing repairs what the kill left half-written
        assert bank.check()["ok"]
        have = {m.id for m in bank.list()}
        assert set(acked) <= have
        assert all(bank.carrier(i) is not None and bank.carrier(i).tokens.shape[0] > 0 for i in acked)
        assert 0 < bank.count() < 60             # it was killed mid-file
