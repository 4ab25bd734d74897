"""Recordings with missing, silent, foreign, corrupt or no-picture audio: ingest degrades with a note, never fails.

Each case runs the real CLI with the default (lite) profile on a real encoded file.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures.meeting import contains_answer, tts
from tests.fixtures.video import corrupt_audio, make_audio_only, make_video

SPOKEN = "Good morning everyone. The new warehouse will open in Denver next spring. That is the main news today."


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("degrade")
    speech = np.concatenate([np.zeros(8000, np.float32), tts(SPOKEN), np.zeros(16000, np.float32)])
    german = tts("Guten Morgen zusammen. Das neue Lager wird im nächsten Frühjahr in Hamburg eröffnet.", voice="de")
    return {
        "speech_only": make_audio_only(str(d / "call.m4a"), samples=speech),
        "speech_seconds": speech.size / 16000,
        "noaudio": make_video(str(d / "noaudio.mp4"), seconds=6, audio_hz=None),
        "silent": make_video(str(d / "silent.mp4"), seconds=6, audio_hz=0.0),
        "corrupt": corrupt_audio(make_video(str(d / "tone.mp4"), seconds=6), str(d / "corrupt.mp4")),
        "german": make_audio_only(str(d / "german.m4a"), samples=german),
    }


def test_audio_only_file_becomes_transcript_memories_that_answer(files, tmp_path, cli):
    bank = str(tmp_path / "bank")
    r = cli("ingest", files["speech_only"], "--bank", bank, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "transcript-only" in r.stderr and "Traceback" not in r.stderr
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert info["memories"] >= 3 and info["consistent"]
    covered = info["streams"][0]
    assert covered["last_t"] == pytest.approx(files["speech_seconds"], abs=1.5)

    r = cli("ask", "Where will the new warehouse open?", "--bank", bank, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert contains_answer(out["answer"], "Denver"), out["answer"]
    assert any("denver" in json.dumps(c["evidence"]).lower() for c in out["citations"])


@pytest.mark.parametrize("kind,note", [
    ("noaudio", "no audio track"),
    ("silent", "no transcript"),
    ("corrupt", "corrupt audio track"),
])
def test_video_with_bad_or_missing_audio_still_stores_its_pictures(files, tmp_path, cli, kind, note):
    bank = str(tmp_path / "bank")
    r = cli("ingest", files[kind], "--bank", bank, timeout=300)
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("vigil: note:")]
    assert len(notes) == 1 and note in notes[0], r.stderr
    assert "Traceback" not in r.stderr
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert info["memories"] >= 3 and info["consistent"]
    assert info["streams"][0]["last_t"] == pytest.approx(6.0, abs=1.0)  # the whole video, not cut at the bad audio


def test_non_english_speech_is_dropped_with_a_note_not_a_false_transcript(files, tmp_path, cli):
    bank = str(tmp_path / "bank")
    r = cli("ingest", files["german"], "--bank", bank, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "note: no transcript" in r.stderr and "not English" in r.stderr, r.stderr
    r = cli("ask", "Where will the new warehouse open?", "--bank", bank, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "no evidence" in out["answer"] and "hamburg" not in out["answer"].lower() and not out["citations"]
