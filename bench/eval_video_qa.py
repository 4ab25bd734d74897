"""Video QA benchmarks through the product's own path: ingest each video into a memory bank, then ask.

    python bench/eval_video_qa.py --annotations videomme/test.json --videos videomme/data --limit 200
    python bench/eval_video_qa.py --bench mlvu --annotations MLVU/json --videos MLVU/video \
        --model Qwen/Qwen2.5-VL-3B-Instruct --retrieval google/siglip-so400m-patch14-384 --k 16 --json

It reads the benchmarks' annotation files as published (.json, .jsonl, or .parquet with pyarrow; a directory
means every such file in it): Video-MME, MLVU, LongVideoBench, StreamingBench, OVO-Bench (`--bench`, or
detected from the rows' fields; lmms-eval task names work too: videomme, mlvu_dev, longvideobench_val_v, ...).

Per video: `stream.sources.open_source` + `stream.pipeline.IngestPipeline` into a bank, exactly as `app.py
ingest` does (its own `ingest_into`, progress bar included), with the chosen profile, fps, clip length, reducer
and budget. Banks are cached under --cache (default ~/.cache/vigil/eval-banks), keyed by the video file and those
settings, so a re-run only asks. Per question: `models.ask.ask` (the one ask path of the CLI and the UI) with the
options in the question, the answer streamed to its end. Streaming benchmarks (StreamingBench, OVO-Bench) ask at
the question's timestamp with `until=`, so retrieval sees only memories that had ended by then; every citation is
checked against it (`leaks` counts violations and must stay 0).

Scoring as each benchmark publishes it: Video-MME accuracy overall and per duration (short/medium/long);
MLVU M-Avg (the mean of per-task accuracies); LongVideoBench accuracy overall and per duration group;
StreamingBench accuracy overall and per task; OVO-Bench per-task accuracy, the mean over tasks per category
(backward, real-time, forward: REC counts, SSR/CRR yes/no at each probe time) and the mean of the categories.
The answer's letter is read leniently (`extract_letter`: "B", "(B)", "Answer: B", "B. text", or the option's
own text). Also reported: mean visual (carrier) tokens in the prompt, p50/p90 time to first token (from the ask
call: retrieval, carrier loading and prefill included) and ingest speed (media seconds per wall second).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import inspect
import json
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BENCHES = ("videomme", "mlvu", "longvideobench", "streamingbench", "ovobench")
TITLES = {"videomme": "Video-MME", "mlvu": "MLVU", "longvideobench": "LongVideoBench",
          "streamingbench": "StreamingBench", "ovobench": "OVO-Bench"}
ALIASES = {"video-mme": "videomme", "video_mme": "videomme", "lvb": "longvideobench", "ovo": "ovobench",
           "ovo-bench": "ovobench", "ovo_bench": "ovobench", "streaming-bench": "streamingbench"}
OVO_CATEGORIES = {"backward": ("EPM", "ASI", "HLD"), "realtime": ("STU", "OJR", "ATR", "ACR", "OCR", "FPD"),
                  "forward": ("REC", "SSR", "CRR")}
LETTERS = "ABCDEFGHIJ"
VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
# OVO-Bench's forward tasks ask the same kind of question at several probe times (our wording of its prompts)
OVO_REC = ("Count how many times the people in the video have performed this action so far; one complete motion "
           "counts once. {q}\nAnswer with a single number only.")
OVO_SSR = ("This is a tutorial made of several steps. One of its steps is: {q}\nIs the person performing this step "
           "right now, at the end of the video so far? Answer only Yes or No.")
OVO_CRR = ("Question about the latest moments of the video: {q}\nDo the frames seen so far, especially the latest "
           "ones, hold enough information to answer it now? Answer only Yes or No.")


class EvalError(Exception):
    """A problem the user can fix (missing video, unreadable annotation file, bad flags): one line, exit 1."""


@dataclass
class Item:
    """One question as asked: `prompt` is the text given to ask(); `answer` the expected letter (mc), Yes/No
    (yesno) or number (count); `at` the media second a streaming question is asked at (None: after the video)."""

    bench: str
    id: str
    video: str
    question: str
    options: list = field(default_factory=list)
    answer: str = ""
    kind: str = "mc"
    at: Optional[float] = None
    task: str = ""
    groups: dict = field(default_factory=dict)
    prompt: str = ""

    def __post_init__(self):
        if not self.prompt:
            self.prompt = mc_prompt(self.question, self.options) if self.kind == "mc" else self.question


# ---- annotation files --------------------------------------------------------------------------

_LABEL = re.compile(r"^\s*[\(\[]?([A-J])[\)\]\.:：]\s*(.*)$", re.S)


def option_text(opt) -> str:
    """'B. a red car' / '(B) a red car' / 'B) a red car' -> 'a red car' (bare texts are kept)."""
    s = str(opt).strip()
    m = _LABEL.match(s)
    return m.group(2).strip() if m else s


def mc_prompt(question: str, options: Sequence[str]) -> str:
    if not options:
        return f"{question}\n{MC_INSTRUCTION}"
    lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    return f"{question}\n{lines}\n{MC_INSTRUCTION}"


def split_inline_options(text: str) -> tuple[str, list[str]]:
    """A question with its options inline (MLVU): 'Q?\\n(A) x\\n(B) y' -> ('Q?', ['x', 'y']). Options must run
    A, B, C... in order; ([], unchanged) when there are fewer than two."""
    lines = str(text).splitlines()
    opts, first = [], None
    for i, line in enumerate(lines):
        m = _LABEL.match(line)
        if m and m.group(1) == LETTERS[len(opts)]:
            first = i if first is None else first
            opts.append(m.group(2).strip())
        elif opts and line.strip() and not line.strip().lower().startswith(("answer", "best option", "options")):
            opts[-1] += " " + line.strip()  # an option wrapped onto the next line
    if len(opts) >= 2:
        stem = "\n".join(lines[:first]).strip()
        stem = re.sub(r"\s*(options|choices)\s*:?\s*$", "", stem, flags=re.I)
        return stem, opts
    parts = re.split(r"\(([A-J])\)\s*", str(text))  # 'Q? (A) x (B) y' on one line
    if len(parts) >= 5 and [p for p in parts[1::2]] == list(LETTERS[:len(parts[1::2])]):
        return parts[0].strip(), [p.strip() for p in parts[2::2]]
    return str(text).strip(), []


def hms_seconds(v) -> float:
    """'HH:MM:SS(.s)' / 'MM:SS' / seconds -> seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    parts = str(v).strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(v)
    out = 0.0
    for p in parts:
        out = out * 60 + float(p)
    return out


def letter_of(answer, options: Sequence[str]) -> str:
    """An answer given as a letter ('B', '(B)', 'B. text'), an index or an option's text -> its letter."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 0 <= answer < len(options):
            return LETTERS[answer]
        raise ValueError(f"answer index {answer} out of range of {len(options)} options")
    s = str(answer).strip()
    m = re.fullmatch(r"[\(\[]?([A-Ja-j])[\)\]\.]?", s) or _LABEL.match(s)
    if m:
        return m.group(1).upper()
    norm = [_norm(o) for o in options]
    if _norm(s) in norm:
        return LETTERS[norm.index(_norm(s))]
    raise ValueError(f"answer {answer!r} is neither a letter nor one of the options")


class _Row:
    """A row with a name for error messages."""

    def __init__(self, row: dict, where: str, bench: str):
        self.row, self.where, self.bench = row, where, bench

    def need(self, *keys):
        for k in keys:
            if k in self.row and self.row[k] is not None:
                return self.row[k]
        want = " or ".join(repr(k) for k in keys)
        raise EvalError(f"{self.where}: a {TITLES[self.bench]} row needs the field {want}; this one has "
                        f"{', '.join(sorted(self.row)) or 'none'}")

    def get(self, *keys, default=None):
        for k in keys:
            if k in self.row and self.row[k] is not None:
                return self.row[k]
        return default

    def fail(self, why: str):
        raise EvalError(f"{self.where}: {why}")


def _options_list(r: _Row, v) -> list[str]:
    if isinstance(v, str):  # a JSON-encoded list, as some exports store it
        try:
            v = json.loads(v)
        except ValueError:
            r.fail(f"options {v[:60]!r} is not a list")
    try:
        v = list(v)
    except TypeError:
        r.fail("options is not a list")
    return [option_text(o) for o in v]


def parse_videomme(r: _Row) -> list[Item]:
    opts = _options_list(r, r.need("options"))
    qid = str(r.get("question_id", default=r.where))
    try:
        ans = letter_of(r.need("answer"), opts)
    except ValueError as e:
        r.fail(str(e))
    groups = {"duration": str(r.get("duration", default="")), "domain": str(r.get("domain", default=""))}
    return [Item("videomme", qid, str(r.need("videoID", "video_id", "video")), str(r.need("question")), opts, ans,
                 task=str(r.get("task_type", default="")), groups={k: v for k, v in groups.items() if v})]


def parse_mlvu(r: _Row) -> list[Item]:
    question = str(r.need("question"))
    if r.get("candidates") is not None:
        opts = _options_list(r, r.get("candidates"))
    else:
        question, opts = split_inline_options(question)
        if not opts:
            r.fail("found no options: MLVU rows carry them inline ('(A) …' lines) or in 'candidates'")
    try:
        ans = letter_of(r.need("answer"), opts)
    except ValueError as e:
        r.fail(str(e))
    video = str(r.need("video_name", "video", "video_path"))
    qid = str(r.get("question_id", "id", default=f"{os.path.basename(video)}#{r.where.rsplit(' ', 1)[-1]}"))
    return [Item("mlvu", qid, video, question, opts, ans, task=str(r.need("task_type", "question_type")))]


def parse_longvideobench(r: _Row) -> list[Item]:
    if r.get("candidates") is not None:
        opts = _options_list(r, r.get("candidates"))
    else:
        opts = [str(r.row[f"option{i}"]) for i in range(10) if f"option{i}" in r.row]
        if not opts:
            r.fail("found no options: LongVideoBench rows carry option0…option4 (or candidates)")
    opts = [o for o in opts if o.strip() and o.strip().upper() != "N/A"]
    c = r.need("correct_choice")
    try:
        ans = letter_of(int(c) if str(c).strip().isdigit() else c, opts)
    except ValueError as e:
        r.fail(str(e))
    groups = {"duration_group": str(r.get("duration_group", default="")),
              "level": str(r.get("level", default=""))}
    return [Item("longvideobench", str(r.get("id", default=r.where)), str(r.need("video_path", "video_id")),
                 str(r.need("question")), opts, ans, task=str(r.get("question_category", default="")),
                 groups={k: v for k, v in groups.items() if v})]


def parse_streamingbench(r: _Row) -> list[Item]:
    video = str(r.need("video_path", "video"))
    qs = r.need("questions")
    if not isinstance(qs, list):
        r.fail("'questions' is not a list")
    out = []
    for j, q in enumerate(qs):
        sub = _Row(q, f"{r.where} question {j + 1}", "streamingbench")
        opts = _options_list(sub, sub.need("options"))
        try:
            at = hms_seconds(sub.need("time_stamp", "timestamp", "time"))
            ans = letter_of(sub.need("answer"), opts)
        except ValueError as e:
            sub.fail(f"bad time_stamp or answer: {e}")
        qid = str(q.get("id") or f"{video}#{j + 1}")
        groups = {"required_ability": str(q.get("required_ability") or "")}
        out.append(Item("streamingbench", qid, video, str(sub.need("question")), opts, ans, at=at,
                        task=str(q.get("task_type") or ""), groups={k: v for k, v in groups.items() if v}))
    return out


def parse_ovobench(r: _Row) -> list[Item]:
    task = str(r.need("task")).upper()
    video = str(r.need("video"))
    qid = str(r.need("id"))
    cat = next((c for c, ts in OVO_CATEGORIES.items() if task in ts), "")
    if not cat:
        r.fail(f"unknown OVO-Bench task {task!r} (known: {', '.join(t for ts in OVO_CATEGORIES.values() for t in ts)})")
    if cat != "forward":
        opts = _options_list(r, r.need("options"))
        try:
            ans = letter_of(int(r.need("gt")), opts)
            at = float(r.need("realtime"))
        except (ValueError, TypeError) as e:
            r.fail(f"bad gt or realtime: {e}")
        return [Item("ovobench", qid, video, str(r.need("question")), opts, ans, at=at, task=task,
                     groups={"category": cat})]
    probes = r.need("test_info")
    if not isinstance(probes, list) or not probes:
        r.fail("'test_info' is not a non-empty list of probes")
    out = []
    for j, p in enumerate(probes):
        sub = _Row(p, f"{r.where} probe {j + 1}", "ovobench")
        try:
            at = float(sub.need("realtime"))
        except (TypeError, ValueError):
            sub.fail("bad realtime")
        if task == "REC":
            q = f"How many times did they {r.need('activity')}?"
            prompt, kind, ans = OVO_REC.format(q=q), "count", str(int(sub.need("count")))
        elif task == "SSR":
            q = str(sub.need("step"))
            prompt, kind, ans = OVO_SSR.format(q=q), "yesno", "Yes" if int(sub.need("type")) == 1 else "No"
        else:  # CRR
            q = str(r.need("question"))
            prompt, kind, ans = OVO_CRR.format(q=q), "yesno", "Yes" if int(sub.need("type")) == 1 else "No"
        out.append(Item("ovobench", f"{qid}#{j}", video, q, [], ans, kind=kind, at=at, task=task,
                        groups={"category": cat}, prompt=prompt))
    return out


PARSERS = {"videomme": parse_videomme, "mlvu": parse_mlvu, "longvideobench": parse_longvideobench,
           "streamingbench": parse_streamingbench, "ovobench": parse_ovobench}


def detect_bench(row: dict) -> Optional[str]:
    """Which benchmark a row comes from, by its fields (None: unknown)."""
    keys = set(row)
    if "questions" in keys and ("video_path" in keys or "video" in keys):
        return "streamingbench"
    if "videoID" in keys or ("question_id" in keys and "duration" in keys and "options" in keys):
        return "videomme"
    if "correct_choice" in keys:
        return "longvideobench"
    if "task" in keys and ("gt" in keys or "test_info" in keys or "realtime" in keys):
        return "ovobench"
    if "video_name" in keys or "question_type" in keys or ("task_type" in keys and "candidates" in keys):
        return "mlvu"
    return None


def bench_name(name: str) -> str:
    n = name.strip().lower()
    n = ALIASES.get(n, n)
    for b in BENCHES:  # lmms-eval task names: videomme_w_subtitle, mlvu_dev, longvideobench_val_v, ovo_backward ...
        if n == b or n.startswith(b + "_") or (b == "ovobench" and n.startswith("ovo_")):
            return b
    raise EvalError(f"unknown benchmark {name!r}: use one of {', '.join(BENCHES)}")


def annotation_files(paths: Iterable[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(f for ext in ("json", "jsonl", "parquet") for f in glob.glob(os.path.join(p, f"*.{ext}")))
            if not found:
                raise EvalError(f"no annotation files (.json, .jsonl, .parquet) in {p!r}")
            out += found
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise EvalError(f"no such annotation file: {p!r}")
    return out


def read_rows(path: str) -> list[dict]:
    """The rows of one annotation file (a JSON list, a JSON object holding one list or keyed rows, JSON lines, or
    parquet)."""
    name = os.path.basename(path)
    try:
        if path.endswith(".parquet"):
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise EvalError(f"{name}: reading parquet needs pyarrow (pip install pyarrow)") from None
            try:
                return pq.read_table(path).to_pylist()
            except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
                raise EvalError(f"{name}: not a readable parquet file ({str(e).splitlines()[0]})") from None
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise EvalError(f"{name}: not a text (JSON) file") from None
    except OSError as e:
        raise EvalError(f"cannot read {path!r}: {e.strerror or e}") from None
    if not text.strip():
        raise EvalError(f"{name}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if path.endswith(".jsonl") or text.lstrip().startswith("{"):
            rows = []
            for i, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e2:
                        raise EvalError(f"{name}: line {i} is not valid JSON ({e2.msg})") from None
            data = rows
        else:
            raise EvalError(f"{name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
        elif data and all(isinstance(v, dict) for v in data.values()):
            data = [dict(v, id=v.get("id", k)) for k, v in data.items()]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise EvalError(f"{name}: expected a list of question objects")
    if not data:
        raise EvalError(f"{name}: holds no questions")
    return data


def load_annotations(paths: Iterable[str], bench: Optional[str] = None) -> tuple[str, list[Item]]:
    """(benchmark, questions in file order) from annotation files as published."""
    bench = bench_name(bench) if bench else None
    items: list[Item] = []
    for path in annotation_files(paths):
        rows = read_rows(path)
        name = os.path.basename(path)
        found = detect_bench(rows[0])
        b = bench or found
        if b is None:
            raise EvalError(f"{name}: cannot tell which benchmark these rows are from (fields: "
                            f"{', '.join(sorted(rows[0]))}); pass --bench {{{','.join(BENCHES)}}}")
        if bench is None:
            bench = b
        elif found is not None and found != bench:
            raise EvalError(f"{name}: these look like {TITLES[found]} rows, not {TITLES[bench]}")
        for i, row in enumerate(rows, 1):
            items += PARSERS[bench](_Row(row, f"{name} row {i}", bench))
    return bench, items


class VideoIndex:
    """Finds a benchmark's video file under the --videos directory: the path as written, then with leading
    folders dropped ('./videos/sample_1/video.mp4' under DIR/sample_1/...), with a video extension added
    (Video-MME's videoID), and last by its unique file name anywhere below."""

    def __init__(self, root: str):
        self.root = root
        self._names: Optional[dict] = None

    def _walk(self) -> dict:
        if self._names is None:
            self._names = {}
            for d, _, files in os.walk(self.root):
                for f in files:
                    for key in (f, os.path.splitext(f)[0]):
                        self._names.setdefault(key, []).append(os.path.join(d, f))
        return self._names

    def find(self, name: str) -> Optional[str]:
        if os.path.isabs(name) and os.path.isfile(name):
            return name
        parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
        for i in range(len(parts)):
            p = os.path.join(self.root, *parts[i:])
            for cand in (p,) + (tuple(p + e for e in VIDEO_EXTS) if not os.path.splitext(p)[1] else ()):
                if os.path.isfile(cand):
                    return cand
        if not parts:
            return None
        hits = self._walk().get(parts[-1], [])
        hits = [h for h in hits if os.path.splitext(h)[1].lower() in VIDEO_EXTS or h.endswith(parts[-1])]
        return hits[0] if len(hits) == 1 else None


# ---- reading answers ---------------------------------------------------------------------------

def _norm(s: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", str(s).lower()))


def extract_letter(text: str, options: Sequence[str] = ()) -> str:
    """The option letter an answer picks, or "" when it picks none (or several). Reads 'B', '(B)', 'b.',
    '**B**', 'Answer: B', 'The answer is (B)', 'B. a red car', 'I think it is D', and answers that give the
    option's own text instead of its letter ('a red car'). Letters beyond the options are ignored."""
    valid = LETTERS[:len(options)] if options else LETTERS[:8]
    t = re.sub(r"[*_`#]+", "", str(text or "")).strip().strip("\"'").strip()
    if not t:
        return ""

    def ok(c: str) -> str:
        c = c.upper()
        return c if c in valid else ""

    m = re.fullmatch(r"[\(\[]?([A-Ja-j])[\)\]\.:,]?", t)  # the whole answer is a letter
    if m:
        return ok(m.group(1))
    # "answer is B", "Answer: (C)", "option D", "correct choice: B." (a capital, not the article "a")
    m = re.search(r"(?i:answer|option|choice)\s*(?:(?i:is|would be|should be)\s*)?[:\-]?\s*"
                  r"(?:[\(\[]([A-Ja-j])[\)\]]|([A-J])(?![A-Za-z]))", t)
    if m and ok(m.group(1) or m.group(2)):
        c = (m.group(1) or m.group(2)).upper()
        after = t[m.end():]
        article = c in ("A", "I") and re.match(r"\s+[a-z]", after)  # "the answer is a dog"
        if m.group(1) or not article or _starts_option(after, options, c):
            return c
    m = _LABEL.match(t) or re.match(r"([A-J])\s*\n", t)  # "B. a red car", "(B) a red car", "B) ...", "B\n..."
    if m and ok(m.group(1)):
        return m.group(1)
    m = re.match(r"([A-J])\s+(.+)", t)  # "B a red car"
    if m and ok(m.group(1)) and _starts_option(" " + m.group(2), options, m.group(1)):
        return m.group(1)
    par = {c for c in re.findall(r"[\(\[]([A-J])[\)\]]", t) if ok(c)}
    if len(par) == 1:
        return par.pop()
    by_text = _by_option_text(t, options)
    if by_text:
        return by_text
    # lone capitals: "I think it's D." ("A" and "I" followed by a word are the article and the pronoun)
    lone = set()
    for mm in re.finditer(r"(?<![A-Za-z0-9'])([A-J])(?![A-Za-z0-9'])", t):
        c = mm.group(1)
        if c in ("A", "I") and re.match(r"\s+(?!(?:or|and|nor)\b)[a-z]", t[mm.end():]):
            continue
        if ok(c):
            lone.add(c)
    return lone.pop() if len(lone) == 1 else ""


def _starts_option(after: str, options: Sequence[str], letter: str) -> bool:
    i = LETTERS.index(letter)
    if i >= len(options):
        return False
    o = _norm(options[i])
    return bool(o) and _norm(after).startswith(o)


def _by_option_text(t: str, options: Sequence[str]) -> str:
    """The one option whose text the answer contains (the longest when one option's text holds another's)."""
    nt = f" {_norm(t)} "
    hits = [i for i, o in enumerate(options) if _norm(o) and f" {_norm(o)} " in nt]
    hits = [i for i in hits if not any(j != i and _norm(options[i]) in _norm(options[j]) for j in hits)]
    return LETTERS[hits[0]] if len(hits) == 1 else ""


def extract_yesno(text: str) -> str:
    m = re.search(r"\b(yes|no)\b", str(text or ""), re.I)
    return m.group(1).capitalize() if m else ""


_NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                             "thirteen fourteen fifteen sixteen seventeen eighteen nineteen "
                                             "twenty".split())}


def extract_count(text: str) -> str:
    m = re.search(r"\d+", str(text or ""))
    if m:
        return str(int(m.group(0)))
    for w in re.findall(r"[a-z]+", str(text or "").lower()):
        if w in _NUMBER_WORDS:
            return str(_NUMBER_WORDS[w])
    return ""


def read_answer(item: Item, text: str) -> str:
    if item.kind == "yesno":
        return extract_yesno(text)
    if item.kind == "count":
        return extract_count(text)
    return extract_letter(text, item.options)


# ---- scores --------------------------------------------------------------------------------------

def _acc(xs: Sequence) -> Optional[float]:
    return sum(1 for x in xs if x) / len(xs) if xs else None


def _table(records: Sequence[dict], key) -> dict:
    groups: dict = {}
    for r in records:
        groups.setdefault(key(r), []).append(bool(r["correct"]))
    return {g: {"n": len(v), "accuracy": _acc(v)} for g, v in sorted(groups.items()) if g not in ("", None)}


def aggregate(bench: str, records: Sequence[dict]) -> dict:
    """The benchmark's published scores from per-question records ({"task", "groups", "correct"}):

    score: Video-MME, LongVideoBench, StreamingBench: accuracy over all questions; MLVU: M-Avg, the mean of the
    per-task accuracies; OVO-Bench: the mean of the backward, real-time and forward averages, each the mean of
    its tasks' accuracies (forward tasks count every probe). Also: accuracy (over all questions), n, by_task and
    one table per group field (Video-MME: duration, domain; LongVideoBench: duration_group; StreamingBench:
    required_ability); OVO-Bench's categories are in by_category_avg."""
    out = {"bench": bench, "n": len(records), "accuracy": _acc([r["correct"] for r in records]),
           "by_task": _table(records, lambda r: r.get("task", ""))}
    gkeys = sorted({k for r in records for k in (r.get("groups") or {})})
    for g in gkeys:
        out[f"by_{g}"] = _table(records, lambda r, g=g: (r.get("groups") or {}).get(g, ""))
    tasks = {t: v["accuracy"] for t, v in out["by_task"].items()}
    if bench == "mlvu":
        out["score"] = statistics.mean(tasks.values()) if tasks else None
        out["score_is"] = "M-Avg: mean of per-task accuracies"
    elif bench == "ovobench":
        cats = {}
        for c, ts in OVO_CATEGORIES.items():
            have = [tasks[t] for t in ts if t in tasks]
            if have:
                cats[c] = statistics.mean(have)
        out["by_category_avg"] = cats
        out.pop("by_category", None)  # the published category figure is the mean over tasks, not over questions
        out["score"] = statistics.mean(cats.values()) if cats else None
        out["score_is"] = "mean of the category averages (backward, real-time, forward), each a mean over tasks"
    else:
        out["score"] = out["accuracy"]
        out["score_is"] = "accuracy over all questions"
    return out


def percentile(xs: Sequence[float], q: float) -> Optional[float]:
    if not xs:
        return None
    s = sorted(xs)
    i = (len(s) - 1) * q
    lo, hi = int(i), min(int(i) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


# ---- banks: ingest once per video and settings ------------------------------------------------------

def default_cache() -> str:
    return os.path.join(os.environ.get("VIGIL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vigil"),
                        "eval-banks")


def bank_dir_for(cache: str, video: str, settings: dict) -> str:
    st = os.stat(video)
    key = json.dumps({"video": os.path.realpath(video), "size": st.st_size, "mtime": round(st.st_mtime, 3),
                      "settings": settings, "v": 1}, sort_keys=True)
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(video))[:60]
    return os.path.join(cache, f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}")


META = "eval_ingest"


def bank_covers(bank_dir: str, until: Optional[float]) -> bool:
    """True when bank_dir holds a finished ingest that covers media up to `until` (None: the whole file)."""
    if not os.path.isdir(bank_dir):
        return False
    from memory.bank import MemoryBank

    try:
        with MemoryBank(bank_dir, readonly=True) as b:
            meta = b.get_meta(META)
    except Exception:  # noqa: BLE001 - a broken cache entry is rebuilt
        return False
    if not meta:
        return False
    have = meta.get("until")
    return have is None or (until is not None and have >= until)


# ---- the run ---------------------------------------------------------------------------------------

@dataclass
class Settings:
    model: Optional[str] = None
    retrieval: Optional[str] = None
    text_evidence: bool = False
    fps: float = 1.0
    clip_seconds: float = 2.0
    reducer: str = "pool2d"
    budget: int = 32
    scene_cut: Optional[float] = 0.25
    k: int = 8
    max_new_tokens: int = 16

    def ingest_key(self) -> dict:
        def ident(x):
            return os.path.realpath(x) if x and os.path.isdir(x) else x
        return {"model": ident(self.model) or "lite", "retrieval": ident(self.retrieval),
                "text_evidence": self.text_evidence, "fps": self.fps, "clip_seconds": self.clip_seconds,
                "reducer": self.reducer, "budget": self.budget, "scene_cut": self.scene_cut}


def answer_options(profile, max_new_tokens: int) -> dict:
    """Generation options the profile's answerer takes (the VLM: max_new_tokens; the lite answerer: none)."""
    fn = getattr(profile.answerer, "answer", None)
    if fn is None:
        return {}
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD or p.name == "max_new_tokens" for p in params):
        return {"max_new_tokens": max_new_tokens}
    return {}


def ingest_video(bank_dir: str, video: str, profile, s: Settings, until: Optional[float]) -> dict:
    """Ingest `video` into a fresh bank at bank_dir through app.py's ingest_into (the product's own ingest, with
    its progress bar); up to `until` media seconds when given. Marks the bank finished. Returns speed figures."""
    import app
    from memory.bank import MemoryBank
    from stream.pipeline import IngestConfig
    from stream.sources import SourceError, open_source

    if os.path.isdir(bank_dir):
        shutil.rmtree(bank_dir)  # an interrupted or shorter earlier ingest
    stream_id = os.path.basename(video)
    try:
        source = open_source(video, fps=s.fps, stream_id=stream_id)
    except SourceError as e:
        raise EvalError(f"cannot open video {video!r}: {e}") from None
    cfg = IngestConfig(fps=s.fps, clip_seconds=s.clip_seconds, reducer=s.reducer, budget=s.budget,
                       scene_cut=s.scene_cut, duration=until)
    os.makedirs(os.path.dirname(bank_dir), exist_ok=True)
    t0 = time.perf_counter()
    bank = MemoryBank(bank_dir)
    try:
        try:
            stats, interrupted = app.ingest_into(bank, source, profile, stream_id, cfg, video)
        except app.CliError as e:
            raise EvalError(f"ingesting {video!r}: {e}") from None
        if interrupted:
            raise KeyboardInterrupt
        wall = time.perf_counter() - t0
        info = {"media_s": float(stats.last_t), "wall_s": wall, "memories": int(stats.memories)}
        bank.set_meta(META, {"until": until, "settings": s.ingest_key(), **info})
    finally:
        bank.close()
    return info


def needed_until(items: Sequence[Item], clip_seconds: float) -> Optional[float]:
    """How far a video must be ingested for its questions: all of it, unless every question is a streaming one
    (then up to the last question's time plus two clips, so every clip that ended by then is exactly the clip a
    full ingest stores)."""
    if any(i.at is None for i in items):
        return None
    return max(i.at for i in items) + 2 * clip_seconds


def plan_banks(items: Sequence[Item], videos: dict, s: Settings, cache: str) -> list[tuple]:
    """Per video: (video, path, its questions in asking order, bank dir, ingest until, bank already covers it)."""
    by_video: dict[str, list[Item]] = {}
    for it in items:
        by_video.setdefault(it.video, []).append(it)
    plan = []
    for vid, its in by_video.items():
        path = videos[vid]
        until = needed_until(its, s.clip_seconds)
        bdir = bank_dir_for(cache, path, s.ingest_key())
        plan.append((vid, path, sorted(its, key=lambda i: (i.at is None, i.at or 0.0)), bdir, until,
                     bank_covers(bdir, until)))
    return plan


def load_eval_profile(s: Settings, evidence: bool, device: Optional[str] = None, trust_remote_code: bool = False):
    """The profile the product would load for these settings (evidence=False when every bank is cached: no
    speech/OCR models are needed to ask)."""
    from models.base import ModelError
    from models.registry import load_profile

    try:
        return load_profile(s.model, trust_remote_code=trust_remote_code, device=device, retrieval=s.retrieval,
                            text_evidence=s.text_evidence, evidence=evidence)
    except ModelError as e:
        raise EvalError(str(e)) from None


def evaluate(bench: str, items: Sequence[Item], videos: dict, settings: Settings, *, profile=None,
             cache: Optional[str] = None, device: Optional[str] = None, trust_remote_code: bool = False,
             progress: bool = True, log=None) -> dict:
    """Ingest (or reuse) a bank per video and ask every item through the product path; score them.
    videos: item.video -> file path. profile: a loaded models.registry Profile (default: the one the settings
    name). Returns the report: aggregate()'s scores plus usage, latency, ingest speed and per_question records."""
    from memory.bank import MemoryBank
    from models.ask import AskError, ask

    log = log or (lambda msg: print(msg, file=sys.stderr))
    cache = cache or default_cache()
    s = settings
    plan = plan_banks(items, videos, s, cache)
    if profile is None:
        profile = load_eval_profile(s, not all(p[-1] for p in plan), device, trust_remote_code)
    opts = answer_options(profile, s.max_new_tokens)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=TITLES[bench], unit="q", file=sys.stderr, dynamic_ncols=True)
    records, ingested, interrupted = [], [], False
    cached = 0
    try:
        for vid, path, its, bdir, until, covered in plan:
            if covered:
                cached += 1
            else:
                if bar is not None:
                    bar.set_postfix_str(f"ingesting {os.path.basename(path)}")
                ingested.append(ingest_video(bdir, path, profile, s, until))
            bank = MemoryBank(bdir, readonly=True)
            try:
                if not records and its:  # one untimed ask first: lazy model loads and warm-up stay out of the times
                    ask_one(bank, profile, its[0], s, opts, ask, AskError)
                for it in its:
                    records.append(ask_one(bank, profile, it, s, opts, ask, AskError))
                    if bar is not None:
                        done = [r["correct"] for r in records]
                        bar.set_postfix_str(f"acc {100 * sum(done) / len(done):.1f}%")
                        bar.update(1)
            finally:
                bank.close()
    except KeyboardInterrupt:
        interrupted = True
        log(f"interrupted: scoring the {len(records)} question(s) answered so far")
    finally:
        if bar is not None:
            bar.close()
    report = aggregate(bench, records)
    ttft = [r["ttft_ms"] for r in records if r["ttft_ms"] is not None]
    media = sum(x["media_s"] for x in ingested)
    wall = sum(x["wall_s"] for x in ingested)
    report.update({
        "benchmark": TITLES[bench], "profile": getattr(profile, "name", None) or "lite",
        "settings": asdict(s), "questions": len(items), "asked": len(records), "interrupted": interrupted,
        "unparsed": sum(1 for r in records if not r["pred"]),
        "no_memories": sum(1 for r in records if not r["citations"]),
        "leaks": sum(r["leaks"] for r in records),
        "visual_tokens_mean": statistics.mean(r["usage"]["visual_tokens"] for r in records) if records else None,
        "prompt_tokens_mean": statistics.mean(r["usage"]["prompt_tokens"] for r in records) if records else None,
        "ttft_p50_ms": percentile(ttft, 0.5), "ttft_p90_ms": percentile(ttft, 0.9),
        "answer_p50_ms": percentile([r["answer_ms"] for r in records], 0.5),
        "ingest": {"videos": len(plan), "ingested": len(ingested), "cached": cached, "media_s": media,
                   "wall_s": wall, "x_realtime": media / wall if wall > 0 else None},
        "per_question": records,
    })
    return report


def ask_one(bank, profile, it: Item, s: Settings, opts: dict, ask, AskError) -> dict:
    t0 = time.perf_counter()
    try:
        answer, cites = ask(bank, profile, it.prompt, k=s.k, until=it.at, **opts)
        text = "".join(answer)
    except AskError as e:
        if "can be found by words" not in str(e):
            raise EvalError(f"question {it.id}: {e}") from None
        # the profile cannot search this video's memories by words (no speech, text or confident tags): the
        # product refuses, and so the question counts as unanswered, not as a broken run
        return {"id": it.id, "video": it.video, "task": it.task, "groups": it.groups, "kind": it.kind, "at": it.at,
                "answer": it.answer, "pred": None, "correct": False, "response": str(e)[:300], "citations": [],
                "leaks": 0, "usage": {"prompt_tokens": 0, "visual_tokens": 0, "completion_tokens": 0},
                "ttft_ms": None, "answer_ms": (time.perf_counter() - t0) * 1000}
    t_end = time.perf_counter()
    pred = read_answer(it, text)
    gold = it.answer if it.kind != "mc" else it.answer.upper()
    leaks = sum(1 for c in cites if it.at is not None and c["end"] > it.at + 1e-9)
    return {"id": it.id, "video": it.video, "task": it.task, "groups": it.groups, "kind": it.kind, "at": it.at,
            "answer": it.answer, "pred": pred, "correct": bool(pred) and pred == gold, "response": text[:300],
            "citations": [[round(c["start"], 3), round(c["end"], 3)] for c in cites], "leaks": leaks,
            "usage": answer.usage.as_dict(),
            "ttft_ms": (answer.first_piece - t0) * 1000 if answer.first_piece else None,
            "answer_ms": (t_end - t0) * 1000}


def resolve_videos(items: Sequence[Item], root: str, skip_missing: bool, log) -> tuple[list[Item], dict]:
    index = VideoIndex(root)
    found, missing = {}, {}
    for it in items:
        if it.video in found or it.video in missing:
            continue
        p = index.find(it.video)
        if p is None:
            missing[it.video] = it.id
        else:
            found[it.video] = p
    if missing:
        name, qid = next(iter(missing.items()))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        if not skip_missing:
            raise EvalError(f"video {name!r} of question {qid} not found under {root!r}{more}; "
                            "--videos DIR points at the videos, --skip-missing runs the rest")
        kept = [it for it in items if it.video in found]
        log(f"note: skipping {len(items) - len(kept)} question(s) of {len(missing)} missing video(s), "
            f"e.g. {name!r}")
        items = kept
        if not items:
            raise EvalError(f"none of the videos were found under {root!r}")
    return list(items), found


def pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def summary_lines(r: dict) -> list[str]:
    s = r["settings"]
    lines = [f"{r['benchmark']}: {pct(r['score'])} ({r['score_is']}; {r['asked']} of {r['questions']} questions"
             f"{', interrupted' if r['interrupted'] else ''})",
             f"  profile {r['profile']}, reducer {s['reducer']}, budget {s['budget']} tokens/clip, "
             f"k {s['k']}, fps {s['fps']}, clips {s['clip_seconds']} s"]
    for key in sorted(k for k in r if k.startswith("by_") and k != "by_category_avg"):
        tab = r[key]
        if tab and not (key == "by_task" and len(tab) > 24):
            lines.append(f"  {key[3:]}: " + " | ".join(f"{g} {pct(v['accuracy'])} ({v['n']})" for g, v in tab.items()))
    if r.get("by_category_avg"):
        lines.append("  category averages: " + " | ".join(f"{c} {pct(v)}" for c, v in r["by_category_avg"].items()))
    ttft = "n/a" if r["ttft_p50_ms"] is None else f"{r['ttft_p50_ms']:.0f} ms (p90 {r['ttft_p90_ms']:.0f} ms)"
    vt = "n/a" if r["visual_tokens_mean"] is None else f"{r['visual_tokens_mean']:.1f}"
    lines.append(f"  visual tokens/question {vt}, time to first token p50 {ttft}, "
                 f"unparsed answers {r['unparsed']}, no memories {r['no_memories']}, leaks {r['leaks']}")
    g = r["ingest"]
    speed = (f"{g['media_s']:.0f} s of media in {g['wall_s']:.1f} s ({g['x_realtime']:.1f}x realtime)"
             if g["ingested"] and g["x_realtime"] else "nothing new")
    lines.append(f"  ingest: {g['ingested']} video(s) ingested, {g['cached']} from cache; {speed}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench/eval_video_qa.py", description=__doc__.split("\n")[0])
    ap.add_argument("--annotations", action="append", required=True, metavar="FILE_OR_DIR",
                    help="the benchmark's annotation file(s) as published (repeatable; a directory: all files in it)")
    ap.add_argument("--videos", default=None, help="directory holding the videos (default: the annotations' folder)")
    ap.add_argument("--bench", default=None, help=f"{', '.join(BENCHES)} (default: detected from the rows)")
    ap.add_argument("--model", default=None, help="VLM hub id or directory (default: the offline lite profile)")
    ap.add_argument("--retrieval", default=None, help="SigLIP/CLIP model for clip keys, so questions search by text")
    ap.add_argument("--text-evidence", action="store_true", help="with --model: transcript and slide text too")
    ap.add_argument("--trust-remote-code", action="store_true")
    ap.add_argument("--device", default=None)
    ap.add_argument("--k", type=int, default=8, help="memories retrieved per question (default 8)")
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--reducer", default="pool2d", help="token reducer at ingest (comma-separated: one run each)")
    ap.add_argument("--budget", default="32", help="carrier tokens per clip (comma-separated: one run each)")
    ap.add_argument("--no-scene-cut", action="store_true")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--skip-missing", action="store_true", help="skip questions whose video is missing")
    ap.add_argument("--cache", default=None, help="where ingested banks are kept (default ~/.cache/vigil/eval-banks)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ap.add_argument("--out", default=None, help="also write the JSON report here")
    return ap


def run(argv=None) -> int:
    a = build_parser().parse_args(argv)

    def log(msg):
        print(f"eval: {msg}", file=sys.stderr)

    if a.k <= 0 or a.fps <= 0 or a.clip_seconds <= 0 or (a.limit is not None and a.limit <= 0):
        raise EvalError("--k, --fps, --clip-seconds and --limit must be > 0")
    try:
        budgets = [int(b) for b in a.budget.split(",")]
    except ValueError:
        raise EvalError(f"--budget takes whole numbers of tokens per clip, got {a.budget!r}") from None
    from reducers import get_reducer
    from reducers.base import ReducerInputError

    reducers = [r.strip() for r in a.reducer.split(",") if r.strip()]
    for r in reducers:
        try:
            get_reducer(r)
        except ReducerInputError as e:
            raise EvalError(str(e)) from None
    bench, items = load_annotations(a.annotations, a.bench)
    if a.limit:
        items = items[:a.limit]
    root = a.videos or os.path.dirname(os.path.abspath(annotation_files(a.annotations)[0]))
    if not os.path.isdir(root):
        raise EvalError(f"--videos {root!r} is not a directory")
    items, paths = resolve_videos(items, root, a.skip_missing, log)
    cache = a.cache or default_cache()
    runs = [Settings(model=a.model, retrieval=a.retrieval, text_evidence=a.text_evidence, fps=a.fps,
                     clip_seconds=a.clip_seconds, reducer=reducer, budget=budget,
                     scene_cut=None if a.no_scene_cut else 0.25, k=a.k, max_new_tokens=a.max_new_tokens)
            for reducer in reducers for budget in budgets]
    cached = all(p[-1] for s in runs for p in plan_banks(items, paths, s, cache))
    profile = load_eval_profile(runs[0], not cached, a.device, a.trust_remote_code)  # once for all runs
    reports = []
    for s in runs:
        rep = evaluate(bench, items, paths, s, profile=profile, cache=cache, progress=not a.no_progress, log=log)
        reports.append(rep)
        if not a.json:
            print("\n".join(summary_lines(rep)))
        if rep["interrupted"]:
            break
    out = reports[0] if len(reports) == 1 else {"benchmark": TITLES[bench], "runs": reports}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    if a.json:
        print(json.dumps(out))
    return 130 if reports and reports[-1]["interrupted"] else 0


def main(argv=None) -> int:
    try:
        return run(argv)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
