"""bench/eval_video_qa.py: the benchmarks' own annotation formats, read as published; answers read and scored as
each benchmark scores them; questions asked through the product path (ingest into a bank, then models.ask.ask),
streaming ones at their timestamp with only earlier memories visible. Tiny generated videos, a tiny random
Qwen2.5-VL and SigLIP built in code (random weights answer at chance: mechanics and bookkeeping are checked, not
accuracy), and the offline lite profile."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench import eval_video_qa as ev

OPTS = ["a red car", "a blue car", "a dog", "a man walking a dog"]


@pytest.mark.parametrize("text, options, want", [
    ("B", OPTS, "B"), ("(B)", OPTS, "B"), ("b.", OPTS, "B"), ("[C]", OPTS, "C"), ("**C**", OPTS, "C"),
    ("Answer: C", OPTS, "C"), ("The answer is (D).", OPTS, "D"), ("The answer is B because it is blue.", OPTS, "B"),
    ("Option A", OPTS, "A"), ("A", OPTS, "A"), ("C. a dog", OPTS, "C"), ("B) a blue car", OPTS, "B"),
    ("B\n\nThe car is blue.", OPTS, "B"), ("I think it's D", OPTS, "D"),
    # the option's own text instead of its letter; the article "A" is not option A
    ("a blue car", OPTS, "B"), ("A man walking a dog.", OPTS, "D"), ("The answer is a dog", OPTS, "C"),
    ("red car", ["red", "red car", "blue car"], "B"),
    # nothing, several, or out of range: no letter
    ("", OPTS, ""), ("none of these", OPTS, ""), ("It is either A or B", OPTS, ""), ("E", OPTS, ""),
])
def test_extract_letter(text, options, want):
    assert ev.extract_letter(text, options) == want


def test_yes_no_and_counts():
    assert [ev.extract_yesno(t) for t in ("Yes.", "no", "I would say yes", "maybe")] == ["Yes", "No", "Yes", ""]
    assert [ev.extract_count(t) for t in ("3", "They did it 12 times.", "three", "none")] == ["3", "12", "3", ""]


def _write(path, rows):
    path.write_text(json.dumps(rows))
    return str(path)


def videomme_rows():  # lmms-eval / HF "lmms-lab/Video-MME" rows
    return [{"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
             "url": "https://www.youtube.com/watch?v=vidA", "videoID": "vidA", "question_id": "001-1",
             "task_type": "Counting Problem", "question": "How many squares are shown?",
             "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."], "answer": "A"},
            {"video_id": "002", "duration": "long", "domain": "Sports", "sub_category": "Football",
             "url": "https://www.youtube.com/watch?v=vidB", "videoID": "vidB", "question_id": "002-1",
             "task_type": "Object Recognition", "question": "What colour is the background at the start?",
             "options": ["A. Blue.", "B. Red.", "C. Green.", "D. White."], "answer": "B"}]


def test_annotation_files_as_published(tmp_path):
    # Video-MME
    bench, items = ev.load_annotations([_write(tmp_path / "videomme.json", videomme_rows())])
    assert bench == "videomme" and [i.id for i in items] == ["001-1", "002-1"]
    a = items[0]
    assert a.video == "vidA" and a.options == ["One.", "Two.", "Three.", "Four."] and a.answer == "A"
    assert a.groups["duration"] == "short" and a.task == "Counting Problem" and a.at is None
    assert "A. One.\nB. Two.\nC. Three.\nD. Four." in a.prompt and a.prompt.startswith("How many squares")

    # MLVU: the HF dev rows (options inline, letter answer) and the per-task JSON (candidates, answer text)
    mlvu = [{"video_name": "1_plotQA/movie101_66.mp4", "duration": 246.0, "task_type": "plotQA",
             "question": "What does the man hold?\n(A) a cup\n(B) a phone\n(C) a knife\n(D) a book",
             "answer": "(B)"}]
    bench, items = ev.load_annotations([_write(tmp_path / "mlvu_dev.json", mlvu)])
    assert bench == "mlvu" and items[0].question == "What does the man hold?"
    assert items[0].options == ["a cup", "a phone", "a knife", "a book"] and items[0].answer == "B"
    per_task = tmp_path / "mlvu_json"
    per_task.mkdir()
    _write(per_task / "4_count.json", [{"video": "count_1.mp4", "duration": 300.5, "question": "How many cats?",
                                        "candidates": ["1", "2", "3", "4"], "answer": "3", "question_type": "count"}])
    bench, items = ev.load_annotations([str(per_task)])
    assert bench == "mlvu" and items[0].answer == "C" and items[0].task == "count" and items[0].video == "count_1.mp4"

    # LongVideoBench: option0…option4 with "N/A" pads, correct_choice an index
    lvb = [{"id": "86CxyhFV9MI_0", "video_path": "86CxyhFV9MI.mp4", "duration": 15.2, "duration_group": 15,
            "question": "What is on the table?", "option0": "a vase", "option1": "a lamp", "option2": "a plate",
            "option3": "N/A", "option4": "N/A", "correct_choice": 2, "question_category": "S2E",
            "subtitle_path": "86CxyhFV9MI_en.json", "starting_timestamp_for_subtitles": 0}]
    bench, items = ev.load_annotations([_write(tmp_path / "lvb_val.json", lvb)])
    assert bench == "longvideobench" and items[0].options == ["a vase", "a lamp", "a plate"]
    assert items[0].answer == "C" and items[0].groups["duration_group"] == "15" and items[0].task == "S2E"

    # StreamingBench: questions per video, asked at their time_stamp
    sb = [{"video_path": "./videos/sample_1/video.mp4", "time": 600, "questions": [
        {"task_type": "Object Recognition", "question": "What is the man holding?", "time_stamp": "00:03:10",
         "options": ["A. a cup", "B. a ball", "C. a hat", "D. a pen"], "answer": "B",
         "required_ability": "object recognition"},
        {"task_type": "Counting", "question": "How many people?", "time_stamp": "01:00:01.5",
         "options": ["A. 1", "B. 2", "C. 3", "D. 4"], "answer": "D", "required_ability": "counting"}]}]
    bench, items = ev.load_annotations([_write(tmp_path / "Real_Time_Visual_Understanding.json", sb)])
    assert bench == "streamingbench" and [i.at for i in items] == [190.0, 3601.5]
    assert [i.answer for i in items] == ["B", "D"] and items[0].options == ["a cup", "a ball", "a hat", "a pen"]
    assert items[0].video == "./videos/sample_1/video.mp4" and items[1].task == "Counting"

    # OVO-Bench: backward / real-time questions at `realtime`, forward tasks expanded into their probes
    ovo = [{"id": 1, "task": "EPM", "video": "Ego4D/a.mp4", "question": "Where was the key?",
            "options": ["on the desk", "in the bag", "on the floor"], "gt": 1, "realtime": 61.0},
           {"id": 2, "task": "OCR", "video": "Ego4D/a.mp4", "question": "What is written on the sign?",
            "options": ["EXIT", "STOP"], "gt": 0, "realtime": 30},
           {"id": 3, "task": "REC", "video": "COIN/b.mp4", "activity": "jump",
            "test_info": [{"realtime": 5, "count": 1}, {"realtime": 9, "count": 2}]},
           {"id": 4, "task": "SSR", "video": "COIN/b.mp4",
            "test_info": [{"realtime": 4, "step": "open the lid", "type": 0},
                          {"realtime": 8, "step": "open the lid", "type": 1}]},
           {"id": 5, "task": "CRR", "video": "COIN/b.mp4", "question": "What does she pour?", "ask_time": 2,
            "clue_time": 7, "answer": "Milk.", "test_info": [{"realtime": 2, "type": 0}, {"realtime": 8, "type": 1}]}]
    bench, items = ev.load_annotations([_write(tmp_path / "ovo_bench_new.json", ovo)])
    assert bench == "ovobench"
    by = {i.id: i for i in items}
    assert by["1"].answer == "B" and by["1"].at == 61.0 and by["1"].groups == {"category": "backward"}
    assert by["2"].answer == "A" and by["2"].groups == {"category": "realtime"}
    assert (by["3#0"].kind, by["3#0"].answer, by["3#0"].at) == ("count", "1", 5.0) and by["3#1"].answer == "2"
    assert "How many times did they jump?" in by["3#1"].prompt
    assert [(by[f"4#{j}"].kind, by[f"4#{j}"].answer) for j in (0, 1)] == [("yesno", "No"), ("yesno", "Yes")]
    assert "open the lid" in by["4#0"].prompt and "What does she pour?" in by["5#1"].prompt
    assert by["5#0"].answer == "No" and by["5#1"].answer == "Yes" and by["5#1"].groups == {"category": "forward"}

    # --bench by lmms-eval task name; a file of another benchmark is refused
    assert ev.load_annotations([str(tmp_path / "videomme.json")], "videomme_w_subtitle")[0] == "videomme"
    with pytest.raises(ev.EvalError, match="look like Video-MME rows"):
        ev.load_annotations([str(tmp_path / "videomme.json")], "mlvu_dev")


def test_scores_as_each_benchmark_publishes_them():
    def rows(spec):  # (task, group value, correct)
        return [{"task": t, "groups": g, "correct": c} for t, g, c in spec]

    mlvu = ev.aggregate("mlvu", rows([("plotQA", {}, True), ("plotQA", {}, True), ("count", {}, True),
                                      ("count", {}, False), ("count", {}, False), ("count", {}, False)]))
    assert mlvu["accuracy"] == pytest.approx(3 / 6) and mlvu["score"] == pytest.approx((1.0 + 0.25) / 2)
    assert mlvu["by_task"]["count"] == {"n": 4, "accuracy": 0.25}

    vmme = ev.aggregate("videomme", rows([("OCR", {"duration": "short"}, True), ("OCR", {"duration": "short"}, False),
                                          ("Counting", {"duration": "long"}, True)]))
    assert vmme["score"] == pytest.approx(2 / 3) and vmme["by_duration"]["short"]["accuracy"] == 0.5
    assert vmme["by_duration"]["long"] == {"n": 1, "accuracy": 1.0}

    ovo = ev.aggregate("ovobench", rows(
        [("EPM", {"category": "backward"}, True), ("ASI", {"category": "backward"}, False),
         ("ASI", {"category": "backward"}, False), ("STU", {"category": "realtime"}, True),
         ("STU", {"category": "realtime"}, False), ("REC", {"category": "forward"}, True)]))
    assert ovo["by_category_avg"] == pytest.approx({"backward": 0.5, "realtime": 0.5, "forward": 1.0})
    assert ovo["score"] == pytest.approx(2 / 3) and ovo["accuracy"] == pytest.approx(3 / 6)

    sb = ev.aggregate("streamingbench", rows([("A", {}, True), ("A", {}, True), ("B", {}, False)]))
    assert sb["score"] == pytest.approx(2 / 3) and sb["by_task"]["B"]["accuracy"] == 0.0


def test_ask_until_sees_only_memories_that_ended_by_then(tmp_path):
    """ask(..., until=t): the clip straddling t is never retrieved, even when it is the best match, and k memories
    still come back; t_range alone keeps its overlap meaning."""
    from memory.bank import MemoryBank
    from models.ask import ask
    from models.base import Consumes
    from models.registry import Profile

    rng = np.random.default_rng(0)
    keys = rng.standard_normal((6, 16)).astype(np.float32)
    bank = MemoryBank(str(tmp_path / "b"))
    for i in range(6):  # [0,2] [2,4] ... [10,12]
        bank.add(stream="v", t0=2.0 * i, t1=2.0 * i + 2, wall=0.0, carrier=None, keys={"k": keys[i]})

    class Enc:
        space = key_space = "k"

        def encode_images(self, images):
            return [keys[2] + 0.01 * keys[3]]  # best match: the clip [4, 6]

    class Rec:
        consumes = Consumes(carriers=False, evidence=True)

        def answer(self, question, memories, history=(), usage=None):
            self.seen = [(m.t0, m.t1) for m in memories]
            yield "ok"

    rec = Rec()
    prof = Profile(name="stub", encoder=Enc(), answerer=rec)
    img = np.zeros((8, 8, 3), np.uint8)
    try:
        for until in (5.0, 6.0, 9.0):
            answer, cites = ask(bank, prof, "what happened?", k=2, image=img, until=until)
            "".join(answer)
            assert len(cites) == 2 and all(c["end"] <= until for c in cites), (until, cites)
            assert rec.seen == [(c["start"], c["end"]) for c in cites]
        assert (4.0, 6.0) not in [(c["start"], c["end"]) for c in ask(bank, prof, "q", k=6, image=img, until=5.0)[1]]
        assert (4.0, 6.0) in [(c["start"], c["end"]) for c in ask(bank, prof, "q", k=6, image=img, until=6.0)[1]]
        _, cites = ask(bank, prof, "q", k=6, image=img, t_range=(0.0, 5.0))  # overlap, as before
        assert [(c["start"], c["end"]) for c in cites] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
        answer, cites = ask(bank, prof, "q", k=3, image=img, until=1.0)
        assert cites == [] and "No memory matches" in "".join(answer)
    finally:
        bank.close()


def _one_line_error(capsys, argv):
    assert ev.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_fail_with_one_line(tmp_path, capsys):
    (tmp_path / "broken.json").write_text('[{"videoID": "x",')
    assert "broken.json: not valid JSON" in _one_line_error(capsys, ["--annotations", str(tmp_path / "broken.json")])
    (tmp_path / "empty.json").write_text("")
    assert "empty" in _one_line_error(capsys, ["--annotations", str(tmp_path / "empty.json")])
    assert "no such annotation file" in _one_line_error(capsys, ["--annotations", str(tmp_path / "nope.json")])
    rows = videomme_rows()
    del rows[1]["options"]
    err = _one_line_error(capsys, ["--annotations", _write(tmp_path / "vm.json", rows)])
    assert "vm.json row 2" in err and "'options'" in err
    err = _one_line_error(capsys, ["--annotations", _write(tmp_path / "odd.json", [{"q": "?", "a": "B"}])])
    assert "cannot tell which benchmark" in err and "--bench" in err
    good = _write(tmp_path / "videomme.json", videomme_rows())
    err = _one_line_error(capsys, ["--annotations", good, "--videos", str(tmp_path)])
    assert "video 'vidA' of question 001-1 not found" in err and "(and 1 more)" in err
    assert "unknown benchmark" in _one_line_error(capsys, ["--annotations", good, "--bench", "nope"])
    assert "unknown reducer" in _one_line_error(capsys, ["--annotations", good, "--reducer", "nope"])


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from tests.models import tiny

    d = tmp_path_factory.mktemp("tiny")
    return tiny.tiny_qwen25(str(d / "qwen")), tiny.tiny_retrieval(str(d / "siglip"))


def test_streaming_questions_through_the_product_path_with_a_vlm(tmp_path, tiny_models, capsys, monkeypatch):
    """StreamingBench and OVO-Bench files on generated videos, a tiny Qwen2.5-VL answering from the bank's
    carrier tokens: every question is asked through models.ask.ask at its timestamp, cites only memories that
    ended by then, and puts carrier tokens in the prompt; a second run reuses the cached banks."""
    import models.ask
    from tests.fixtures.video import make_video

    mdir, rdir = tiny_models
    vdir = tmp_path / "videos" / "sample_1"
    vdir.mkdir(parents=True)
    make_video(str(vdir / "video.mp4"), seconds=10, size=(160, 120), scenes=(5.0,), audio_hz=None)
    sb = [{"video_path": "./videos/sample_1/video.mp4", "time": 10, "questions": [
        {"task_type": "Object Recognition", "question": f"What colour is the background? ({n})", "time_stamp": ts,
         "options": ["A. red", "B. green", "C. blue", "D. yellow"], "answer": ans, "required_ability": "colour"}
        for n, (ts, ans) in enumerate((("00:00:03", "A"), ("00:00:05", "A"), ("00:00:09", "B")))]}]
    ann = _write(tmp_path / "Real_Time_Visual_Understanding.json", sb)
    asked = []
    real_ask = models.ask.ask

    def spy(bank, profile, question, **kw):
        asked.append((question, kw.get("until"), kw.get("k")))
        return real_ask(bank, profile, question, **kw)

    monkeypatch.setattr(models.ask, "ask", spy)
    argv = ["--annotations", ann, "--videos", str(tmp_path), "--model", mdir, "--retrieval", rdir, "--device", "cpu",
            "--cache", str(tmp_path / "cache"), "--k", "3", "--budget", "8", "--max-new-tokens", "3", "--json"]
    assert ev.main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["benchmark"] == "StreamingBench" and rep["questions"] == rep["asked"] == 3
    qs = {q["at"]: q for q in rep["per_question"]}
    assert sorted(qs) == [3.0, 5.0, 9.0]
    # every question asked (one untimed warm-up ask first), at its time, with its options in the prompt
    assert [(u, k) for _, u, k in asked[1:]] == [(3.0, 3), (5.0, 3), (9.0, 3)]
    assert all("\nA. red\nB. green\nC. blue\nD. yellow\n" in q for q, _, _ in asked)
    for at, q in qs.items():
        assert q["citations"] and all(end <= at for _, end in q["citations"]), q
        assert q["leaks"] == 0 and q["usage"]["visual_tokens"] > 0 and q["usage"]["prompt_tokens"] > 0
        assert q["pred"] == ev.extract_letter(q["response"], ["red", "green", "blue", "yellow"])
        assert q["correct"] == (q["pred"] == q["answer"])
    assert len(qs[3.0]["citations"]) == 1  # only [0, 2] had ended at 3 s
    assert rep["leaks"] == 0 and rep["visual_tokens_mean"] > 0 and rep["ttft_p50_ms"] > 0
    assert rep["ingest"]["ingested"] == 1 and rep["ingest"]["x_realtime"] > 0
    assert rep["score"] == rep["accuracy"] == sum(q["correct"] for q in rep["per_question"]) / 3

    # again, as an OVO-Bench forward task on the same video: cached bank, probes at their times
    ovo = [{"id": 7, "task": "CRR", "video": "videos/sample_1/video.mp4", "question": "What colour comes next?",
            "test_info": [{"realtime": 4, "type": 0}, {"realtime": 8, "type": 1}]}]
    argv[1] = _write(tmp_path / "ovo.json", ovo)
    asked.clear()
    assert ev.main(argv + ["--limit", "1"]) == 0
    rep2 = json.loads(capsys.readouterr().out)
    assert rep2["benchmark"] == "OVO-Bench" and rep2["asked"] == 1 and rep2["questions"] == 1
    assert rep2["ingest"] == {**rep2["ingest"], "ingested": 0, "cached": 1}
    q = rep2["per_question"][0]
    assert q["at"] == 4.0 and q["kind"] == "yesno" and all(end <= 4.0 for _, end in q["citations"])
    assert asked[-1][1] == 4.0 and "Yes or No" in asked[-1][0]


def test_video_mme_with_the_offline_lite_profile(tmp_path, capsys, monkeypatch):
    """The default profile (bundled weights, no hub), extractive answers: every question gets an answer, scored
    per duration, with latency and ingest speed in the report; no visual tokens (a text-only answerer)."""
    from tests.fixtures.video import make_video

    monkeypatch.setenv("VIGIL_LLM", "none")
    for v in ("vidA", "vidB"):
        make_video(str(tmp_path / f"{v}.mp4"), seconds=4, size=(160, 120), audio_hz=None)
    ann = _write(tmp_path / "videomme.json", videomme_rows())
    assert ev.main(["--annotations", ann, "--cache", str(tmp_path / "cache"), "--json", "--no-progress"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["benchmark"] == "Video-MME" and rep["profile"] == "lite" and rep["asked"] == 2
    assert set(rep["by_duration"]) == {"short", "long"} and rep["ingest"]["ingested"] == 2
    assert all(q["response"] for q in rep["per_question"]) and rep["visual_tokens_mean"] == 0
    assert rep["ingest"]["x_realtime"] > 0
    # silent coloured clips hold no speech, text or confident tag: the lite profile cannot search them by words, so
    # each question is recorded as the product's refusal (unanswered), and the run still reports
    assert all(q["ttft_ms"] is not None or ("found by words" in q["response"] and q["pred"] is None)
               for q in rep["per_question"])
