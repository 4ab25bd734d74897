"""How well a sentence model tells the line that answers from the others, on the lines `bench.lines dump` kept
(a diagnosis of the answerer's meaning features, not a product figure).

    python -m bench.meaning lines.json [--model DIR_OR_ID ...]
    python -m bench.meaning lines.json --calibrate     # the all-mpnet-base-v2 -> MiniLM cosine map (text_embed.py)

For every planted fact with an answering line among its ten candidates: is the answering line the one most alike to
the question (cosine of the two sentence vectors)? And how well does the answering line's cosine stand apart from the
best cosine of a question the meeting cannot answer (absent topics, another split's attribute): the probability that
a random answering line scores above a random unanswerable question's best line (ROC AUC). The bundled MiniLM-L6 is
always measured; each --model (a sentence-transformers directory, or a hub id where a hub is reachable) beside it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def separation(encode, rows: list[dict]) -> dict:
    """{"first": answering lines most alike to their question, "facts": facts with one, "auc": ...} for one model
    (`encode(texts) -> [n, d]` L2-normalised)."""
    first = facts = 0
    right, wrong = [], []
    for r in rows:
        texts = [c["text"].split(" — ", 1)[-1] for c in r["cands"]]
        v = np.asarray(encode([r["q"]] + texts), np.float32)
        cos = v[1:] @ v[0]
        if r["kind"] == "fact":
            good = [i for i, c in enumerate(r["cands"]) if c["label"]]
            if good:
                facts += 1
                first += int(np.argmax(cos)) in good
                right.append(float(cos[good].max()))
        else:
            wrong.append(float(cos.max()))
    a, b = np.array(right), np.array(wrong)
    auc = float((a[:, None] > b[None, :]).mean()) if a.size and b.size else float("nan")
    return {"first": first, "facts": facts, "auc": round(auc, 3)}


def calibration(rows: list[dict], encode_from, encode_to, points: int = 60) -> tuple[list[float], list[float]]:
    """A monotone map of one model's cosines onto another's: both models' cosines over the same pairs (each question
    and each of its candidate lines, and the two with the question's names and numbers left out, as the predicate
    is compared), matched quantile for quantile; denser where the answerer's thresholds are (the upper tail)."""
    from models.text.relevance import names_in, predicate_text

    pairs = []
    for r in rows:
        names = names_in(r["q"])
        for c in r["cands"]:
            line = c["text"].split(" — ", 1)[-1]
            pairs += [(r["q"], line), (predicate_text(r["q"], names), predicate_text(line, names))]
    texts = sorted({t for p in pairs for t in p})
    at = {t: i for i, t in enumerate(texts)}
    cos = []
    for enc in (encode_from, encode_to):
        v = np.asarray(enc(texts), np.float32)
        cos.append(np.array([float(v[at[a]] @ v[at[b]]) for a, b in pairs]))
    q = np.unique(np.concatenate([np.linspace(0, 0.8, points // 3), np.linspace(0.8, 1, points - points // 3)]))
    xs, ys = np.quantile(cos[0], q), np.quantile(cos[1], q)
    keep = np.concatenate([[True], np.diff(xs) > 1e-6])
    xs, ys = np.concatenate([[-1.0], xs[keep], [1.0]]), np.concatenate([[-1.0], ys[keep], [1.0]])
    print(f"{len(pairs)} pairs; quantiles 50/90/99 %: from {np.quantile(cos[0], [.5, .9, .99]).round(3).tolist()} "
          f"to {np.quantile(cos[1], [.5, .9, .99]).round(3).tolist()}", flush=True)
    return [round(float(x), 4) for x in xs], [round(float(y), 4) for y in ys]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", help="a `python -m bench.lines dump` output")
    ap.add_argument("--model", action="append", default=[], help="a sentence-transformers model dir or id")
    ap.add_argument("--calibrate", action="store_true",
                    help="print the all-mpnet-base-v2 -> MiniLM cosine map for models/text_embed.py")
    a = ap.parse_args(argv)
    rows = [r for r in json.loads(Path(a.path).read_text()) if r.get("cands")]
    from models.text_embed import TextEmbedder, mpnet_model_dir

    if a.calibrate:
        xs, ys = calibration(rows, TextEmbedder(mpnet_model_dir(), space="mpnet-base").encode, TextEmbedder().encode)
        print("MPNET_CALIBRATION = (", tuple(xs), ",", tuple(ys), ")")
        return

    models = {"minilm-l6 (bundled)": TextEmbedder().encode}
    for m in a.model:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(m, device="cpu")
        models[m] = lambda t, st=st: st.encode(list(t), normalize_embeddings=True, batch_size=32)
    for name, enc in models.items():
        r = separation(enc, rows)
        print(f"{name}: answering line most alike {r['first']}/{r['facts']}, "
              f"answerable vs unanswerable AUC {r['auc']}", flush=True)


if __name__ == "__main__":
    main()
