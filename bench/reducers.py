"""Benchmark of the token reducers: speed per clip (CPU, CUDA) and fidelity on real EfficientNet-Lite0 features.

    python -m bench.reducers --part speed --device cpu --quick
    python -m bench.reducers --part fidelity --clips 1000 --device cuda
    python -m bench.reducers --part all --write-md          # also rewrites the Reducers section of RESULTS.md

Speed: T=16 frames, N ∈ {196, 729}, D ∈ {896, 1152}, budgets 5/10/15/25% of T·N; synthetic tokens where half
the positions are static (so temporal methods do real work), with saliency and frame keys as a VLM gives
them. CUDA times use events + synchronize after warm-up; the median of the runs is reported.

Fidelity: generated videos (moving shapes on textured backgrounds, one change per clip: an object
appears or the scene cuts), encoded by EfficientNet-Lite0 with its real ImageNet weights (tokens
[T, 49, 1280], saliency = patch feature norm, frame keys = pooled features). Per reducer and budget:
- coverage: mean over the clip's tokens of the cosine to the nearest carrier token;
- clip identification: each clip is rendered twice at interleaved times (even frames = memory, odd frames =
  query, plus pixel noise); a query clip's full tokens search the reduced memories of all clips: a shortlist
  of 20 by the size-weighted mean carrier, re-ranked by late interaction (mean over query tokens of the
  best carrier cosine, in a fixed 256-d random projection). Recall@1.
- temporal localisation: each frame's descriptor is the size-weighted mean of the carriers whose time span
  covers it (frames no carrier covers take the nearest covered frame's); the change is placed at the largest
  jump between consecutive descriptors. Accuracy of the exact frame.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reducers import METHODS, TokenGrid, get_reducer, keep_tokens  # noqa: E402

BUDGETS = (0.05, 0.10, 0.15, 0.25)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------- speed
def speed_grid(T: int, N: int, D: int, device: str, dtype: torch.dtype, seed: int = 0) -> TokenGrid:
    g = torch.Generator().manual_seed(seed)
    h = int(math.isqrt(N))
    base = torch.randn(N, D, generator=g)
    static = torch.rand(N, generator=g) < 0.5
    noise = torch.randn(T, N, D, generator=g) * torch.where(static, 0.05, 1.0)[None, :, None]
    x = base[None] + noise
    sal = torch.softmax(torch.randn(T, N, generator=g) * 2, -1)
    keys = torch.randn(T, 1152, generator=g) + 3 * torch.randn(1, 1152, generator=g)
    return TokenGrid(x.to(device, dtype), (h, N // h), sal.to(device), keys.to(device))


def time_method(name: str, grid: TokenGrid, budget: int, device: str, reps: int, warmup: int) -> float:
    """Median ms per clip."""
    f = get_reducer(name)
    for _ in range(warmup):
        f(grid, budget)
    ts = []
    if device == "cuda":
        torch.cuda.synchronize()
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            f(grid, budget)
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
    else:
        for _ in range(reps):
            t = time.perf_counter()
            f(grid, budget)
            ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def run_speed(devices: list[str], methods: list[str], budgets: list[float], quick: bool, dtypes: dict,
              eager_too: bool = False) -> list[dict]:
    """eager_too: on CUDA also time each method with its CUDA graphs off (VIGIL_CUDA_GRAPHS=0), as device
    "cuda-eager"."""
    if eager_too and "cuda" in devices:
        devices = list(devices) + ["cuda-eager"]
    rows = []
    configs = [(196, 896), (196, 1152), (729, 896), (729, 1152)]
    T = 16
    for label in devices:
        device = "cuda" if label == "cuda-eager" else label
        if label == "cuda-eager":
            os.environ["VIGIL_CUDA_GRAPHS"] = "0"
        cfgs = [(196, 896), (729, 1152)] if (quick and device == "cpu") else configs
        reps, warm = (3, 1) if device == "cpu" else (15, 3)
        for N, D in cfgs:
            grid = speed_grid(T, N, D, device, dtypes[device])
            for b in budgets:
                budget = max(1, round(b * T * N))
                for m in methods:
                    ms = time_method(m, grid, budget, device, reps, warm)
                    rows.append({"device": label, "dtype": str(dtypes[device]).replace("torch.", ""), "T": T, "N": N,
                                 "D": D, "budget_pct": round(b * 100), "budget": budget, "method": m, "ms": round(ms, 3)})
                    print(f"speed {label} N={N} D={D} b={b:.0%} {m:16s} {ms:8.2f} ms", flush=True)
        if label == "cuda-eager":
            os.environ.pop("VIGIL_CUDA_GRAPHS", None)
    return rows


# -------------------------------------------------------------------------------------------- fidelity
def _video_params(rng: np.random.Generator) -> dict:
    def scene():
        return {"c0": rng.integers(0, 256, 3), "c1": rng.integers(0, 256, 3), "angle": rng.uniform(0, np.pi),
                "freq": rng.uniform(2, 12), "tex": rng.uniform(0, 60),
                "shapes": [{"kind": int(rng.integers(0, 2)), "col": rng.integers(0, 256, 3), "r": rng.uniform(14, 40),
                            "p": rng.uniform(40, 184, 2), "v": rng.uniform(-6, 6, 2)} for _ in range(int(rng.integers(1, 4)))]}
    return {"a": scene(), "b": scene()}


_YY, _XX = np.mgrid[0:224, 0:224].astype(np.float32)


def _draw_shape(img: np.ndarray, s: dict, p: np.ndarray) -> None:
    if s["kind"] == 0:
        m = (_YY - p[0]) ** 2 + (_XX - p[1]) ** 2 < s["r"] ** 2
    else:
        m = (np.abs(_YY - p[0]) < s["r"]) & (np.abs(_XX - p[1]) < s["r"] * 0.7)
    img[m] = s["col"]


def render(params: dict, t: float, change: Optional[dict], noise: float, rng: np.random.Generator) -> np.ndarray:
    """One 224×224 RGB frame at time t (in memory-frame units)."""
    sc = params["b"] if (change and change["kind"] == "cut" and t >= change["t"]) else params["a"]
    u = np.cos(sc["angle"]) * _XX + np.sin(sc["angle"]) * _YY
    w = (u / 224.0)[..., None]
    img = sc["c0"][None, None] * (1 - w) + sc["c1"][None, None] * w
    img = img + sc["tex"] * np.sin(u / 224.0 * sc["freq"] * 2 * np.pi)[..., None]
    img = img.astype(np.float32)
    for s in sc["shapes"]:
        p = s["p"] + s["v"] * t
        p = 224 - np.abs((p % 448) - 224)  # bounce
        _draw_shape(img, s, p)
    if change and change["kind"] == "appear" and t >= change["t"]:
        _draw_shape(img, change["shape"], change["shape"]["p"])
    if noise:
        img = img + rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_clips(n_clips: int, T: int, seed: int = 0, per_video: int = 10):
    """n_clips clips of T memory frames + T query frames (interleaved times) and their change frame."""
    rng = np.random.default_rng(seed)
    mem, qry, cuts = [], [], []
    params = None
    for i in range(n_clips):
        if i % per_video == 0:
            params = _video_params(rng)
        t0 = (i % per_video) * T * 1.0
        c = int(rng.integers(2, T - 1))
        kind = "cut" if rng.random() < 0.5 else "appear"
        change = {"t": t0 + c - 0.25, "kind": kind,
                  "shape": {"kind": int(rng.integers(0, 2)), "col": rng.integers(0, 256, 3), "r": rng.uniform(25, 50),
                            "p": rng.uniform(50, 174, 2), "v": np.zeros(2)}}
        mem.append([render(params, t0 + k, change, 0.0, rng) for k in range(T)])
        qry.append([render(params, t0 + k + 0.5, change, 6.0, rng) for k in range(T)])
        cuts.append(c)
    return mem, qry, cuts


_ENCODERS: dict = {}


def fidelity_encoder(features: str, device: str):
    """The encoder whose tokens the fidelity part reduces, built once.

    efficientnet: EfficientNet-Lite0, real ImageNet weights (N=49, D=1280).
    ov05b-random: LLaVA-OV-0.5B's SigLIP-so400m@384 tower + projector + 2x2 pool, full size, RANDOM weights
    (N=196, D=896, saliency = attention received): the tokens an LLM would get, minus the training.
    """
    if features not in _ENCODERS:
        if features == "efficientnet":
            from models.efficientnet import EfficientNetLite0Encoder
            _ENCODERS[features] = EfficientNetLite0Encoder(device=device)
        elif features == "ov05b-random":
            from bench.vlm_gpu import build
            torch.manual_seed(0)
            _ENCODERS[features] = build("ov05b")
        else:
            raise SystemExit(f"unknown --features {features!r}")
    return _ENCODERS[features]


def encode_all(clips: list, device: str, batch: int = 256, features: str = "efficientnet") -> list[TokenGrid]:
    enc = fidelity_encoder(features, device)
    if features != "efficientnet":
        batch = 32
    T = len(clips[0])
    flat = [f for c in clips for f in c]
    toks, sals, keys = [], [], []
    for i in range(0, len(flat), batch):
        g = enc.encode(flat[i:i + batch])
        sal = g.saliency if g.saliency is not None else g.tokens.float().norm(dim=-1)
        toks.append(g.tokens), sals.append(sal), keys.append(g.frame_keys)
    tok, sal, key = torch.cat(toks), torch.cat(sals), torch.cat(keys)
    hw = g.hw
    return [TokenGrid(tok[i * T:(i + 1) * T], hw, sal[i * T:(i + 1) * T], key[i * T:(i + 1) * T], space=enc.space)
            for i in range(len(clips))]


def frame_descriptors(c, T: int) -> torch.Tensor:
    """[T, D] size-weighted mean of the carriers whose time span covers each frame (gaps: nearest covered)."""
    t = torch.arange(T, device=c.tokens.device)
    cover = (c.lo[:, 0][None, :] <= t[:, None]) & (t[:, None] <= c.hi[:, 0][None, :])  # [T, M]
    w = cover.float() * c.size.float()[None, :]
    d = w @ c.tokens.float()
    have = cover.any(1)
    if not bool(have.all()):
        idx = have.nonzero().squeeze(1)
        nearest = idx[(t[:, None] - idx[None, :]).abs().argmin(1)]
        d = d[nearest]
    return F.normalize(d, dim=-1)


def run_fidelity(n_clips: int, T: int, devices: str, methods: list[str], budgets: list[float],
                 shortlist: int = 20, seed: int = 0, features: str = "efficientnet") -> tuple[list[dict], dict]:
    t0 = time.time()
    mem_frames, qry_frames, cuts = make_clips(n_clips, T, seed)
    t_render = time.time() - t0
    t0 = time.time()
    mem = encode_all(mem_frames, devices, features=features)
    qry = encode_all(qry_frames, devices, features=features)
    t_encode = time.time() - t0
    del mem_frames, qry_frames
    dev = devices
    mem = [TokenGrid(g.tokens.to(dev), g.hw, g.saliency.to(dev), g.frame_keys.to(dev)) for g in mem]
    Dm = mem[0].D
    proj = torch.linalg.qr(torch.randn(Dm, 256, generator=torch.Generator().manual_seed(1)))[0].to(dev)
    q_tok = torch.stack([F.normalize(g.tokens.to(dev).reshape(-1, Dm).float() @ proj, dim=-1) for g in qry])  # [C, TN, 256]
    q_mean = F.normalize(torch.stack([g.tokens.to(dev).reshape(-1, Dm).float().mean(0) for g in qry]), dim=-1)
    cuts_t = torch.tensor(cuts, device=dev)
    info = {"clips": n_clips, "T": T, "N": mem[0].N, "D": Dm, "features": features, "render_s": round(t_render, 1),
            "encode_s": round(t_encode, 1), "device": dev}
    rows = []
    plan = [("full", 1.0)] + [(m, b) for b in budgets for m in methods]  # "full": no reduction, the ceiling
    for m, b in plan:
        t1 = time.time()
        budget = max(1, round(b * T * mem[0].N))
        covs, mdesc, cars, loc = [], [], [], []
        for i, g in enumerate(mem):
            if m == "full":
                c = keep_tokens(g, torch.arange(g.T * g.N, device=dev))
            else:
                c, _ = get_reducer(m)(g, budget)
            xt = F.normalize(c.tokens.float(), dim=-1)
            orig = F.normalize(g.tokens.reshape(-1, Dm).float(), dim=-1)
            covs.append(float((orig @ xt.T).amax(1).mean()))
            mdesc.append(F.normalize((c.tokens.float() * c.size.float()[:, None]).sum(0), dim=-1))
            cars.append(F.normalize(c.tokens.float() @ proj, dim=-1))
            fd = frame_descriptors(c, T)
            jump = 1 - (fd[1:] * fd[:-1]).sum(-1)
            loc.append(int(jump.argmax()) + 1)
        md = torch.stack(mdesc)
        sim = q_mean @ md.T  # [C, C]
        top = sim.topk(min(shortlist, n_clips), dim=1).indices
        Mmax = max(x.shape[0] for x in cars)
        pad = torch.zeros(n_clips, Mmax, 256, device=dev)
        valid = torch.zeros(n_clips, Mmax, dtype=torch.bool, device=dev)
        for i, x in enumerate(cars):
            pad[i, :x.shape[0]] = x
            valid[i, :x.shape[0]] = True
        hits = 0
        for i0 in range(0, n_clips, 50):  # late interaction on the shortlist, in blocks of queries
            qi = torch.arange(i0, min(n_clips, i0 + 50), device=dev)
            cand = top[qi]  # [B, S]
            s = torch.einsum("bqd,bsmd->bsqm", q_tok[qi], pad[cand])
            s = s.masked_fill(~valid[cand][:, :, None, :], -2).amax(-1).mean(-1)  # [B, S]
            best = cand.gather(1, s.argmax(1, keepdim=True)).squeeze(1)
            hits += int((best == qi).sum())
        row = {"method": m, "budget_pct": round(b * 100), "budget": budget if m != "full" else T * mem[0].N,
               "coverage": round(statistics.mean(covs), 4), "id_recall": round(hits / n_clips, 4),
               "loc_acc": round(float((torch.tensor(loc, device=dev) == cuts_t).float().mean()), 4),
               "mean_M": round(statistics.mean(x.shape[0] for x in cars), 1), "s": round(time.time() - t1, 1)}
        rows.append(row)
        print("fidelity", json.dumps(row), flush=True)
    return rows, info


# ------------------------------------------------------------------------------------------- reporting
def md_tables(speed: list[dict], fid: list[dict], info: dict) -> str:
    out = []
    if speed:
        for dev in sorted({r["device"] for r in speed}):
            rs = [r for r in speed if r["device"] == dev]
            cfgs = sorted({(r["N"], r["D"]) for r in rs})
            bud = sorted({r["budget_pct"] for r in rs})
            out.append(f"\n**Speed, {info.get('machine_' + dev, dev)}** ({rs[0]['dtype']}, T=16; median ms per clip)\n")
            head = "| method | " + " | ".join(f"N={n} D={d} {b}%" for n, d in cfgs for b in bud) + " |"
            out.append(head)
            out.append("|---" * (1 + len(cfgs) * len(bud)) + "|")
            for m in sorted({r["method"] for r in rs}):
                cells = []
                for n, d in cfgs:
                    for b in bud:
                        v = [r["ms"] for r in rs if r["method"] == m and r["N"] == n and r["D"] == d and r["budget_pct"] == b]
                        cells.append(f"{v[0]:.2f}" if v else "")
                out.append(f"| {m} | " + " | ".join(cells) + " |")
    if fid:
        bud = sorted({r["budget_pct"] for r in fid if r["method"] != "full"})
        out.append(f"\n**Fidelity** ({info.get('clips')} clips, T={info.get('T')}, "
                   f"{'LLaVA-OV-0.5B tower, RANDOM weights' if info.get('features') == 'ov05b-random' else 'EfficientNet-Lite0 real weights'}, "
                   f"N={info.get('N')}, D={info.get('D')}; cells: coverage / id recall@1 / localisation acc)\n")
        fullr = [r for r in fid if r["method"] == "full"]
        if fullr:
            f0 = fullr[0]
            out.append(f"No reduction (all {f0['budget']} tokens): coverage {f0['coverage']:.3f}, id recall {f0['id_recall']:.3f}, "
                       f"localisation {f0['loc_acc']:.3f}.\n")
        out.append("| method | " + " | ".join(f"{b}%" for b in bud) + " |")
        out.append("|---" * (1 + len(bud)) + "|")
        for m in sorted({r["method"] for r in fid if r["method"] != "full"}):
            cells = []
            for b in bud:
                v = [r for r in fid if r["method"] == m and r["budget_pct"] == b]
                cells.append(f"{v[0]['coverage']:.3f} / {v[0]['id_recall']:.3f} / {v[0]['loc_acc']:.2f}" if v else "")
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else cpu
    except OSError:
        pass
    s = f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        s += f"; GPU {torch.cuda.get_device_name(0)}"
    return s


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["speed", "fidelity", "all"], default="all")
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto (speed: cpu and cuda when present)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--budgets", default="5,10,15,25", help="percent of T·N")
    ap.add_argument("--quick", action="store_true", help="CPU speed on 2 of the 4 configs; fidelity default 120 clips")
    ap.add_argument("--clips", type=int, default=None, help="fidelity clips (default 1000, 120 with --quick)")
    ap.add_argument("--frames", type=int, default=8, help="frames per fidelity clip")
    ap.add_argument("--fid-device", default=None, help="device for encoding + reducing in fidelity (default: best)")
    ap.add_argument("--cuda-dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--features", default="efficientnet", choices=["efficientnet", "ov05b-random"],
                    help="fidelity tokens: EfficientNet-Lite0 (real weights) or LLaVA-OV-0.5B's tower (random weights, GPU)")
    ap.add_argument("--eager-too", action="store_true", help="CUDA speed also with the CUDA graphs off")
    ap.add_argument("--out", default=os.path.join(ROOT, "artifacts", "bench_reducers.json"))
    ap.add_argument("--write-md", action="store_true", help="rewrite the Reducers section of bench/RESULTS.md")
    a = ap.parse_args(argv)
    methods = a.methods.split(",")
    budgets = [float(b) / 100 for b in a.budgets.split(",")]
    has_cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if (a.device == "auto" and has_cuda) else (["cpu"] if a.device == "auto" else a.device.split(","))
    info = {"machine": machine(), "machine_cpu": f"CPU ({os.cpu_count()} cores)"}
    if has_cuda:
        info["machine_cuda"] = torch.cuda.get_device_name(0)
    speed, fid = [], []
    if a.part in ("speed", "all"):
        dtypes = {"cpu": torch.float32, "cuda": getattr(torch, a.cuda_dtype)}
        speed = run_speed(devices, methods, budgets, a.quick, dtypes, a.eager_too)
    if a.part in ("fidelity", "all"):
        n = a.clips or (120 if a.quick else 1000)
        fdev = a.fid_device or ("cuda" if has_cuda else "cpu")
        fid, finfo = run_fidelity(n, a.frames, fdev, methods, budgets, features=a.features)
        info.update(finfo)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"info": info, "speed": speed, "fidelity": fid}, f, indent=1)
    md = md_tables(speed, fid, info)
    print(md)
    if a.write_md:
        write_section(md, info)


def write_section(md: str, info: dict, path: str = os.path.join(ROOT, "bench", "RESULTS.md")) -> None:
    """Replace the text between the reducers markers (creating the file / the section when missing)."""
    start, end = "<!-- reducers:start -->", "<!-- reducers:end -->"
    body = f"{start}\n## Reducers\n\nMachine: {info['machine']}.\n{md}{end}"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    if start in old and end in old:
        new = old[:old.index(start)] + body + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + body + "\n"
    with open(path, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
