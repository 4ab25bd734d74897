"""Calibrate the confidence a visual tag needs before it becomes evidence (models/tags.py: MIN_TAG_PROB).

    python -m bench.tags_calibration [--opencv-doc /usr/share/doc/opencv-doc] [--json out.json]

EfficientNet-Lite0's ImageNet head always names something; on pictures that hold none of its 1000 classes it still
puts a label first. The threshold is set from frames where no ImageNet label is right ("negatives"), so that a tag
is only kept when the classifier is more confident than it is on known noise:
- generated: every slide, document screen and speaker picture of tests/fixtures/styles.py (dev split), plus plain
  and noisy fills;
- real footage from Debian's opencv-doc (if installed): vtest.avi (a campus walkway with pedestrians),
  tree.avi, Megamind.avi (animation), one frame a second.
Positives with a known label, to see what the threshold keeps: cup.mp4.gz from opencv-doc (a hand-held cup:
ImageNet's "cup" / "coffee mug"), one frame a second.
The threshold is the largest top-1 probability (averaged over a 2-frame clip, as TagEvidence sees it) over all
negatives, rounded up to the next 0.05.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def frames_of(path: Path, every_s: float = 1.0, limit: int = 120) -> list[np.ndarray]:
    import av

    out, nxt = [], 0.0
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            t = float(f.time or 0.0)
            if t + 1e-6 >= nxt:
                out.append(f.to_ndarray(format="rgb24"))
                nxt = t + every_s
                if len(out) >= limit:
                    break
    return out


def generated() -> list[np.ndarray]:
    from tests.fixtures.styles import VOCAB, render_document, speaker_picture, template_slide, window

    V = VOCAB["dev"]
    out = []
    for i, p in enumerate(V["projects"][:6]):
        lines = [f"Budget: {20 + 7 * i} million dollars", f"Team lead: {V['names'][i]}", f"New office: {V['cities'][i]}"]
        out.append(template_slide(f"{p} {V['topics'][i]}", lines, "footer · 1"))
        out.append(template_slide(f"{p} {V['topics'][i]}", lines * 3, "footer · 2", dense=True))
    doc = render_document("doc", [(f"{p} notes", V["filler"]) for p in V["projects"][:5]])
    out += [window(doc, o, "shared document") for o in range(0, max(1, doc.shape[0] - 700), 300)]
    out += [speaker_picture(seed=s) for s in range(3)]
    rng = np.random.default_rng(0)
    out += [np.full((720, 1280, 3), v, np.uint8) for v in (0, 128, 255)]
    out += [rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)]
    return out


def top1(encoder, frames) -> list[tuple[float, str]]:
    from models.tags import _softmax, imagenet_labels

    out = []
    for i in range(0, len(frames), 2):  # a clip: 2 frames, probabilities averaged as TagEvidence does
        p = _softmax(encoder.encode(frames[i:i + 2]).logits.numpy()).mean(0)
        j = int(np.argmax(p))
        out.append((float(p[j]), imagenet_labels()[j]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opencv-doc", default="/usr/share/doc/opencv-doc")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from models.efficientnet import EfficientNetLite0Encoder

    enc = EfficientNetLite0Encoder()
    neg = {"generated": top1(enc, generated())}
    doc = Path(args.opencv_doc)
    for name in ("vtest.avi", "tree.avi", "Megamind.avi"):
        p = doc / "examples" / "data" / name
        if p.exists():
            neg[name] = top1(enc, frames_of(p))
    pos = {}
    cup = doc / "opencv4" / "html" / "cup.mp4.gz"
    if cup.exists():
        with tempfile.TemporaryDirectory() as d:
            mp4 = Path(d) / "cup.mp4"
            with gzip.open(cup) as f, open(mp4, "wb") as g:
                shutil.copyfileobj(f, g)
            pos["cup.mp4"] = top1(enc, frames_of(mp4))
    worst = max(p for v in neg.values() for p, _ in v)
    thr = math.ceil(worst * 20) / 20
    report = dict(threshold=thr, worst_negative=worst,
                  negatives={k: dict(n=len(v), max=max(p for p, _ in v), p95=float(np.percentile([p for p, _ in v], 95)),
                                     labels=sorted({lab for _, lab in v})[:12]) for k, v in neg.items()},
                  positives={k: dict(n=len(v), kept=sum(p >= thr for p, _ in v),
                                     kept_labels=sorted({lab for p, lab in v if p >= thr}),
                                     all_labels=sorted({lab for _, lab in v})[:12]) for k, v in pos.items()})
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
