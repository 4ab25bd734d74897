"""Fit the lite answerer's line models (models/answer/linepick.py) on banks of seen meeting splits.

    python -m bench.lines dump --workdirs W1,W2 --out lines.json [--splits dev,dev2,...]
    python -m bench.lines fit lines.json

dump: for every bank a `python -m bench.meeting --styles --workdir W` run left (bank-<style>-<split>[-<seed>] beside
<style>_<split>_<seed>.mp4.json), ask each planted fact, 25 absent topics and 10 questions of another split's
attribute about a subject of this meeting (which it never mentions) through models.ask.ask, and keep the features
of the ten best lines (`models.answer.linepick.FEATURES`; label: the line holds the fact's answer).
fit: leave-one-split-out: how often the line model puts an answering line first against the order before it, and
what the answer gate keeps (right facts) and drops (wrong-attribute questions) at MIN_SURE; then both models fitted
on every split, to paste into linepick.py. Never dump a held-out split you report.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def banks(workdirs: list[str], splits: set[str]):
    """(bank dir, truth json, split, style) of each bank the bench left in the workdirs."""
    for wd in workdirs:
        for bd in sorted(Path(wd).glob("bank-*")):
            m = re.fullmatch(r"bank-(\w+)-(\w+?)(?:-(\d+))?", bd.name)
            if not m or (splits and m.group(2) not in splits):
                continue
            js = Path(wd) / f"{m.group(1)}_{m.group(2)}_{m.group(3) or 0}.mp4.json"
            if js.exists():
                yield bd, js, m.group(2), m.group(1)


def line_rows(answerer, question: str, gold: str) -> list[dict]:
    """The features of the answerer's ten best lines for its last answer (`LiteAnswerer.line_features`, the ones
    it ranks by), with their labels."""
    from models.answer.linepick import FEATURES
    from tests.fixtures.meeting import contains_answer

    cands = answerer.last.ranked[:10]
    x = answerer.line_features(question, cands)
    return [dict(zip(FEATURES, map(float, f)), score=s.score,
                 label=int(bool(gold) and contains_answer(s.text, gold)), text=s.text[:90]) for s, f in zip(cands, x)]


def dump(workdirs: list[str], splits: set[str], out: str) -> None:
    from bench.absent import absent_questions, other_attribute_questions
    from memory.bank import MemoryBank
    from models.answer.lite import LiteAnswerer
    from models.ask import ask
    from models.registry import load_profile
    from tests.fixtures.styles import load_truth

    profile = load_profile(None)
    answerer = profile.answerer = LiteAnswerer(llm=None, embedder=profile.text_embedder, min_sure=0.0)
    rows = []
    for bd, js, split, style in banks(workdirs, splits):
        truth = load_truth(js)
        bank = MemoryBank(str(bd), readonly=True)
        qs = [(f.question, f.answer, "fact") for f in truth.facts]
        qs += [(q, "", "absent") for q in sum(absent_questions(split), [])[:25]]
        qs += [(q, "", "foreign") for q in other_attribute_questions(split, truth)]
        for q, gold, kind in qs:
            "".join(ask(bank, profile, q, k=5)[0])
            rows.append(dict(split=split, style=style, kind=kind, q=q, weak=answerer.last.why_weak,
                             cands=line_rows(answerer, q, gold)))
        bank.close()
        print(split, style, len(rows), flush=True)
    Path(out).write_text(json.dumps(rows))


def _sure_x(cands: list[dict]):
    from models.answer.linepick import FEATURES, line_odds

    o = line_odds(np.array([[c[f] for f in FEATURES] for c in cands]))
    order = np.argsort(-o, kind="stable")
    c = cands[order[0]]
    lead = float(o[order[0]] - o[order[1]]) if len(order) > 1 else 5.0
    return c, [float(o[order[0]]), c["predicate"], c["asked"], c["semantic"], c["score"], lead]


def fit(path: str) -> None:
    from sklearn.linear_model import LogisticRegression

    from models.answer.linepick import FEATURES, MIN_SURE

    rows = [r for r in json.loads(Path(path).read_text()) if r["cands"]]
    facts = [r for r in rows if r["kind"] == "fact"]
    splits = sorted({r["split"] for r in rows})
    xy = lambda rs: (np.array([[c[f] for f in FEATURES] for r in rs for c in r["cands"]]),  # noqa: E731
                     np.array([c["label"] for r in rs for c in r["cands"]]))
    before = after = 0
    for held in splits:
        m = LogisticRegression(max_iter=5000).fit(*xy([r for r in facts if r["split"] != held]))
        for r in (r for r in facts if r["split"] == held and any(c["label"] for c in r["cands"])):
            before += r["cands"][0]["label"]
            p = m.predict_proba(np.array([[c[f] for f in FEATURES] for c in r["cands"]]))[:, 1]
            after += r["cands"][int(np.argmax(p))]["label"]
    print(f"line model, leave one split out: answering line first {before} -> {after}")
    lines = LogisticRegression(max_iter=5000).fit(*xy(facts))
    print("WEIGHTS", np.round(lines.coef_[0], 3).tolist(), "BIAS", round(float(lines.intercept_[0]), 3))
    gate = []
    for r in rows:
        if r["kind"] == "absent":
            continue
        c, x = _sure_x(r["cands"])
        if r["kind"] == "fact" and not c["label"]:
            continue
        gate.append((r["split"], x, int(r["kind"] == "fact"), r["weak"] != ""))
    kept = dropped = n_pos = n_neg = 0
    for held in splits:
        tr = [g for g in gate if g[0] != held]
        m = LogisticRegression(max_iter=5000, class_weight="balanced").fit([g[1] for g in tr], [g[2] for g in tr])
        for g in (g for g in gate if g[0] == held):
            ans = m.predict_proba([g[1]])[0, 1] >= MIN_SURE and not g[3]
            n_pos, n_neg = n_pos + g[2], n_neg + (1 - g[2])
            kept, dropped = kept + (ans and g[2]), dropped + (ans and not g[2])
    print(f"gate at {MIN_SURE}, leave one split out: right answers kept {kept}/{n_pos}, "
          f"wrong-attribute questions answered {dropped}/{n_neg}")
    m = LogisticRegression(max_iter=5000, class_weight="balanced").fit([g[1] for g in gate], [g[2] for g in gate])
    print("SURE_WEIGHTS", np.round(m.coef_[0], 3).tolist(), "SURE_BIAS", round(float(m.intercept_[0]), 3))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--workdirs", required=True)
    d.add_argument("--splits", default="")
    d.add_argument("--out", required=True)
    f = sub.add_parser("fit")
    f.add_argument("path")
    a = ap.parse_args(argv)
    if a.cmd == "dump":
        dump(a.workdirs.split(","), set(filter(None, a.splits.split(","))), a.out)
    else:
        fit(a.path)


if __name__ == "__main__":
    main()
