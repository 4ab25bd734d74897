"""End to end through the CLI with a tiny random Qwen2.5-VL saved to a directory: ingest a generated
video with --model DIR, then ask (query by example image, since a VLM without a SigLIP/CLIP
retrieval model has no text key space) and check the streamed answer and citations."""
from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.models import tiny


def test_ingest_then_ask_with_tiny_vlm(tmp_path):
    from PIL import Image
    from tests.fixtures.video import make_video
    video = make_video(str(tmp_path / "v.mp4"), seconds=6, size=(160, 120))
    mdir = tiny.tiny_qwen25(str(tmp_path / "m"))
    bank = str(tmp_path / "bank")
    r = run_cli("ingest", video, "--bank", bank, "--model", mdir, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    img = str(tmp_path / "q.png")
    Image.fromarray(tiny.frames(1, 120, 160)[0]).save(img)
    r = run_cli("ask", "--bank", bank, "what happened?", "--model", mdir, "--image", img, "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["answer"] and len(out["citations"]) >= 1
    assert all(c["end"] > c["start"] for c in out["citations"])


def test_ingest_then_ask_by_text_with_a_retrieval_model(tmp_path):
    """--retrieval SigLIP: clip keys at ingest, text keys at ask, so a VLM bank answers a typed question."""
    from tests.fixtures.video import make_video
    video = make_video(str(tmp_path / "v.mp4"), seconds=6, size=(160, 120))
    mdir = tiny.tiny_qwen25(str(tmp_path / "m"))
    rdir = tiny.tiny_retrieval(str(tmp_path / "r"))
    bank = str(tmp_path / "bank")
    r = run_cli("ingest", video, "--bank", bank, "--model", mdir, "--retrieval", rdir, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(run_cli("info", "--bank", bank, "--json").stdout)
    assert any(s.startswith("siglip:") for s in info["key_spaces"])

    r = run_cli("ask", "--bank", bank, "what happened?", "--model", mdir, "--retrieval", rdir, "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["answer"] and len(out["citations"]) >= 1

    r = run_cli("ask", "--bank", bank, "what happened?", "--model", mdir, timeout=300)  # forgot --retrieval
    assert r.returncode == 1 and "--retrieval" in r.stderr and "Traceback" not in r.stderr


def test_vlm_with_text_evidence_finds_a_slide_fact_by_text(tmp_path):
    """--text-evidence: a VLM bank also gets the transcript and slide text (bundled Whisper/RapidOCR) with MiniLM
    keys, so a typed question retrieves the slide's moment without any SigLIP/CLIP."""
    from tests.fixtures.meeting import contains_answer, make_meeting
    truth = make_meeting(tmp_path / "meeting.mp4", duration_s=36, n_slides=2, size=(640, 360), seed=3)
    mdir = tiny.tiny_qwen25(str(tmp_path / "m"))
    bank = str(tmp_path / "bank")
    r = run_cli("ingest", truth.path, "--bank", bank, "--model", mdir, "--text-evidence", "--device", "cpu",
                timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(run_cli("info", "--bank", bank, "--json").stdout)
    assert any(s.startswith("text:") for s in info["key_spaces"]), info["key_spaces"]

    fact = truth.slide_facts[0]
    r = run_cli("ask", "--bank", bank, fact.question, "--model", mdir, "--text-evidence", "--device", "cpu",
                "--k", "1", "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (top,) = json.loads(r.stdout.strip().splitlines()[-1])["citations"]
    # slide text is stored once per slide (deduplicated), so only text retrieval lands on the one memory holding it
    assert contains_answer(json.dumps(top["evidence"]), fact.answer), (fact, top)
    assert top["start"] < fact.t1 and top["end"] > fact.t0
