"""Watches and alerts, measured through the product path (Engine.start -> ingest -> watch worker -> alerts).

    python bench/alerts.py                 # all three parts (about 15 minutes on the 2-core VM)
    python bench/alerts.py --parts pr,delay --hour-minutes 20

1. pr: precision and recall per kind of watch on generated recordings with planted events and near-miss
   distractors (a similar phrase, a similar slide, pictures without people, a person passing vs lingering, a
   lighting change vs a moving object).
   Event-level: a planted interval with at least one alert overlapping it is found; an alert overlapping no
   planted interval of its watch is false.
2. hour: false alerts per hour of every watch on recordings with no planted event (a meeting: slides and speech,
   no budget, no Q3 slide, no person; a still camera with sensor noise and daylight drift).
3. delay: a live RTSP camera (GStreamer's RTSP server on 127.0.0.1 serving a recording in real time) with a
   motion watch and a webhook receiver: seconds from the end of the clip that holds the moment (and from the
   moment's first frame) to the webhook's arrival. Target on the 2-core VM (lite): <= clip length + 1 s.

Prints Markdown for bench/RESULTS.md. Media is generated (espeak-ng, PIL) plus OpenCV's sample pictures
(Debian's opencv-doc: a person in messi5.jpg, a face in Megamind.avi; baboon, fruits and home as pictures with
no people).
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fixtures.meeting import FILLER, SR, render_slide, tts  # noqa: E402
from tests.fixtures.styles import _mux, _place  # noqa: E402
from tests.fixtures.watch_media import face_photo  # noqa: E402

DATA = "/usr/share/doc/opencv-doc/examples/data"
SIZE = (640, 360)
SEG = 12.0          # seconds per event segment; each event is followed by a neutral segment as long
COOLDOWN = 10.0     # < the 24 s between two events: every planted event can alert

WATCHES = {  # key -> (text, add_watch kwargs)
    "speech": ("tell me when someone mentions the budget", {}),
    "screen": ("when the slide shows the Q3 results", {}),
    "image": ("the Q3 slide", {"image": "q3a"}),
    "people": ("alert me when a person appears", {}),
    "linger": ("alert me when someone lingers", {}),
    "motion": ("movement at the loading dock", {"stream": "dock"}),
}
SAID = ["We need to talk about the budget for next year.", "Is the budget approved yet?",
        "The marketing budget grew by ten percent.", "Let us review the budget numbers together."]
SAID_NEAR = ["My budgie learned a new song.", "We cannot budge the launch date.", "Please bring a bucket of water.",
             "The gadget arrived this morning."]
NEUTRAL = [("Agenda", ["Welcome", "Updates", "Open questions"]),
           ("Team Update", ["Office move: Denver", "New hires: 4"]),
           ("Hiring Plan", ["Engineers: 34", "Team lead: Maria"]), ("Roadmap", ["Beta in May", "Launch in June"]),
           ("Customer Growth", ["Customers: 62", "Churn: 3 percent"]), ("Operations", ["Two new sites", "On call"])]
NEUTRAL_SAID = FILLER + ["The new office opens in Denver.", "We hired four engineers this month.",
                         "The beta starts in May.", "Support tickets went down again."]


def picture(name: str) -> np.ndarray:
    from PIL import Image

    if name == "face":
        return face_photo(SIZE)
    if name == "face2":  # a cartoon face (Megamind.avi, frame 100)
        import av

        with av.open(os.path.join(DATA, "Megamind.avi")) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i == 100:
                    im = Image.fromarray(f.to_ndarray(format="rgb24"))
                    break
    else:
        im = Image.open(os.path.join(DATA, name)).convert("RGB")
    im = im.resize(SIZE)
    return np.asarray(im)


def slide(title, lines, seed=0):
    return render_slide(title, lines, SIZE, "quarterly review", seed=seed)


def q3(kind: str) -> np.ndarray:
    return {"q3a": slide("Q3 Results", ["Revenue: 45 million dollars", "Customers: 62"], 1),
            "q3b": slide("Q3 Results", ["Revenue: 52 million dollars", "Margin: 21 percent"], 1),
            "q2": slide("Q2 Results", ["Revenue: 41 million dollars", "Customers: 58"], 1),
            "q3road": slide("Q3 Roadmap", ["Beta in July", "Launch in September"], 1),
            "archive": slide("Results Archive", ["2023 and 2024", "Ask finance for older"], 1)}[kind]


def planted_meeting(path: str, seed: int = 0) -> dict:
    """Events (each SEG s, then a neutral SEG s): truth = {watch key: [(t0, t1), ...]}."""
    events = ([("say", s, ["speech"]) for s in SAID] + [("say", s, []) for s in SAID_NEAR]
              + [("show", "q3a", ["screen", "image"]), ("show", "q3b", ["screen"]), ("show", "q2", []),
                 ("show", "q3road", []), ("show", "archive", []), ("show", "q3a", ["screen", "image"])]
              + [("pic", "face", ["people", "linger"]), ("pic", "face2", ["people", "linger"]),
                 ("pass", "face", ["people"]), ("pass", "face2", ["people"]), ("pic", "baboon.jpg", []),
                 ("pic", "fruits.jpg", []), ("pic", "home.jpg", [])])
    rng = random.Random(seed)
    rng.shuffle(events)
    duration = SEG * 2 * len(events) + SEG
    track = np.zeros(int(duration * SR), np.float32)
    frames, truth, near = [], {k: [] for k in WATCHES}, []
    t = SEG
    frames.append((0.0, slide(*NEUTRAL[0], seed=0)))
    for i, (what, x, hits) in enumerate(events):
        if what == "say":
            frames.append((t, slide(*NEUTRAL[(i + 1) % len(NEUTRAL)], seed=i % 4)))
            wav = tts(x)
            _place(track, t + 1.0, wav)
            span = (t + 1.0, t + 1.0 + len(wav) / SR)
        elif what == "pass":  # a person passing: 3 s in view
            frames.append((t, picture(x)))
            frames.append((t + 3.0, slide(*NEUTRAL[(i + 1) % len(NEUTRAL)], seed=i % 4)))
            span = (t, t + 3.0)
        else:
            frames.append((t, q3(x) if what == "show" else picture(x)))
            span = (t, t + SEG)
        for k in hits:
            truth[k].append(span)
        if not hits:
            near.append((what, x, span))
        t += SEG
        frames.append((t, slide(*NEUTRAL[(i + 3) % len(NEUTRAL)], seed=(i + 1) % 4)))
        _place(track, t + 2.0, tts(rng.choice(NEUTRAL_SAID)))
        t += SEG

    def frame(tt):
        cur = frames[0][1]
        for t0, img in frames:
            if tt >= t0:
                cur = img
        return cur

    _mux(path, duration, frame, track, SIZE, 2)
    return {"truth": truth, "near": near, "duration": duration}


def dock_frame(t: float, rng: np.random.Generator, box=None, light: float = 0.0, size=(320, 240)) -> np.ndarray:
    W, H = size
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.empty((H, W, 3), np.float32)
    img[..., 0] = 120 + ((xx // 20 + yy // 20) % 2) * 40
    img[..., 1] = 110 + (yy * 60 // H)
    img[..., 2] = 100
    img += light
    if box is not None:
        s = H // 3
        x = int(box * (W - s))
        img[H // 2 - s // 2:H // 2 + s // 2, x:x + s] = (20, 20, 30)
    img += rng.normal(0, 3.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def planted_dock(path: str, seed: int = 0, events=(("box", True), ("light", False), ("box", True), ("light", False),
                                                 ("box", True))) -> dict:
    events = list(events)
    duration = SEG * 2 * len(events) + SEG
    truth = []
    near = []
    rng = np.random.default_rng(seed)

    def state(t):
        k = int((t - SEG) // (2 * SEG))
        if t < SEG or k >= len(events) or (t - SEG) % (2 * SEG) >= SEG:
            return None, 0.0
        u = ((t - SEG) % (2 * SEG)) / SEG
        if events[k][0] == "box":
            return (u if 0.2 <= u <= 0.7 else None) and (u - 0.2) / 0.5, 0.0
        return None, 35.0 * min(1.0, u / 0.25)   # the light comes up over 3 s and stays

    for k, (what, real) in enumerate(events):
        t0 = SEG + 2 * SEG * k
        (truth if real else near).append((t0 + 0.2 * SEG, t0 + 0.7 * SEG) if real else (t0, t0 + SEG))
    _mux(path, duration, lambda t: dock_frame(t, rng, *state(t)), np.zeros(int(duration * SR), np.float32),
         (320, 240), 5)
    return {"truth": {"motion": truth}, "near": near, "duration": duration}


def quiet_meeting(path: str, minutes: float, seed: int = 1) -> float:
    """No planted event: neutral slides every 45 s, a neutral sentence every ~7 s."""
    rng = random.Random(seed)
    duration = minutes * 60.0
    track = np.zeros(int(duration * SR), np.float32)
    cache: dict = {}
    t = 1.0
    while t < duration - 6:
        s = rng.choice(NEUTRAL_SAID)
        if s not in cache:
            cache[s] = tts(s)
        _place(track, t, cache[s])
        t += len(cache[s]) / SR + rng.uniform(1.5, 4.0)
    slides = [slide(ti, li, seed=i % 4) for i, (ti, li) in enumerate(NEUTRAL)]
    _mux(path, duration, lambda tt: slides[int(tt // 45) % len(slides)], track, SIZE, 1)
    return duration


def quiet_dock(path: str, minutes: float, seed: int = 2) -> float:
    rng = np.random.default_rng(seed)
    duration = minutes * 60.0
    _mux(path, duration, lambda t: dock_frame(t, rng, None, 10.0 * np.sin(t / 600.0)),
         np.zeros(int(duration * SR), np.float32), (320, 240), 1)
    return duration


# ---- running ------------------------------------------------------------------------------------------

def add_watches(eng, media_dir: str) -> dict:
    from PIL import Image

    ids = {}
    for k, (text, kw) in WATCHES.items():
        kw = dict(kw)
        if "image" in kw:
            p = os.path.join(media_dir, kw["image"] + ".png")
            Image.fromarray(q3(kw["image"])).save(p)
            kw["image"] = p
        ids[k] = eng.add_watch(text, cooldown=COOLDOWN, **kw)["id"]
    return ids


def ingest(eng, path: str, stream: str) -> float:
    t0 = time.perf_counter()
    eng.start(path, stream=stream)
    info = eng.wait(stream)
    assert info.state == "finished", info
    eng.drain_alerts(120)
    return time.perf_counter() - t0


def score(alerts: list, ids: dict, truths: dict) -> dict:
    out = {}
    for k, wid in ids.items():
        mine = [a for a in alerts if a["watch_id"] == wid]
        spans = truths.get(k, [])
        found = sum(1 for s in spans if any(a["start"] < s[1] and a["end"] > s[0] for a in mine))
        false = [a for a in mine if not any(a["start"] < s[1] and a["end"] > s[0] for s in spans)]
        out[k] = {"planted": len(spans), "found": found, "alerts": len(mine), "false": len(false),
                  "false_at": [(round(a["start"], 1), a["evidence"][:60]) for a in false]}
    return out


def part_pr(tmp: str) -> dict:
    from engine import Engine

    m = planted_meeting(os.path.join(tmp, "planted.mp4"))
    d = planted_dock(os.path.join(tmp, "dock.mp4"))
    with Engine(os.path.join(tmp, "bank-pr")) as eng:
        ids = add_watches(eng, tmp)
        secs = ingest(eng, os.path.join(tmp, "planted.mp4"), "meeting") + ingest(eng, os.path.join(tmp, "dock.mp4"),
                                                                               "dock")
        alerts = eng.alerts(limit=None)
        stats = eng.alert_stats()
    truths = {**m["truth"], **d["truth"]}
    # the speech watch's matcher on what was said (the script), apart from what speech recognition heard
    from engine.watches import DEFAULT_THRESHOLD, TextMatcher, parse_text
    from models.text_embed import TextEmbedder

    matcher, topic = TextMatcher(TextEmbedder()), parse_text(WATCHES["speech"][0])[0]
    ref = {"planted": [matcher.score(topic, [("speech", x)])[0] for x in SAID],
           "near": [matcher.score(topic, [("speech", x)])[0] for x in SAID_NEAR],
           "threshold": DEFAULT_THRESHOLD["speech"]}
    return {"scores": score(alerts, ids, truths), "stats": stats, "seconds": secs,
            "media_s": m["duration"] + d["duration"], "near": m["near"] + d["near"], "reference": ref}


def part_hour(tmp: str, minutes: float) -> dict:
    from engine import Engine

    t = time.perf_counter()
    dm = quiet_meeting(os.path.join(tmp, "quiet.mp4"), minutes)
    dd = quiet_dock(os.path.join(tmp, "dock-quiet.mp4"), minutes)
    gen = time.perf_counter() - t
    with Engine(os.path.join(tmp, "bank-hour")) as eng:
        ids = add_watches(eng, tmp)
        s1 = ingest(eng, os.path.join(tmp, "quiet.mp4"), "meeting")
        s2 = ingest(eng, os.path.join(tmp, "dock-quiet.mp4"), "dock")
        alerts = eng.alerts(limit=None)
        stats = eng.alert_stats()
    sc = score(alerts, ids, {})
    return {"scores": sc, "stats": stats, "hours": {"meeting": dm / 3600, "dock": dd / 3600},
            "seconds": {"generate": gen, "meeting": s1, "dock": s2}}


SERVER = """
import sys, gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
s = GstRtspServer.RTSPServer(); s.set_address("127.0.0.1"); s.set_service(sys.argv[1])
f = GstRtspServer.RTSPMediaFactory()
f.set_launch("( filesrc location=%s ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
             % sys.argv[2])
s.get_mount_points().add_factory("/dock", f)
assert s.attach(None) != 0
print("READY", flush=True)
GLib.MainLoop().run()
"""


def part_delay(tmp: str, runs: int = 3) -> dict:
    from engine import Engine
    from tests.conftest import free_port

    path = os.path.join(tmp, "live-dock.mp4")
    truth = planted_dock(path, events=(("box", True), ("box", True)))["truth"]["motion"]
    got: list = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("content-length") or 0)
            got.append((time.time(), json.loads(self.rfile.read(n))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    rx = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    port = free_port()
    py = shutil.which("python3", path="/usr/bin") or "/usr/bin/python3"
    srv = subprocess.Popen([py, "-c", SERVER, str(port), path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    rows = []
    try:
        assert "READY" in srv.stdout.readline()
        with Engine(os.path.join(tmp, "bank-live")) as eng:
            eng.add_watch(WATCHES["motion"][0], stream="dock", cooldown=COOLDOWN)
            eng.add_webhook(f"http://127.0.0.1:{rx.server_address[1]}/hook")
            eng.warm_up().join()   # models loaded before the camera connects: no frame waits for them
            for run in range(runs):
                got.clear()
                before = max([m.id for m in eng.bank.list(stream="dock")] or [0])
                w_start = time.time()   # the server starts the recording when the camera is opened (PLAY)
                eng.start(f"rtsp://127.0.0.1:{port}/dock", stream="dock", probe=True)
                deadline = time.time() + truth[-1][1] + 8.0   # stop before the recording ends (no reconnect)
                while time.time() < deadline:
                    time.sleep(0.2)
                eng.stop("dock")
                eng.drain_alerts(10)
                mems = {m.id: m for m in eng.bank.list(stream="dock") if m.id > before}
                for when, body in got:
                    a = eng.alert(body["id"])
                    m = mems[a["memory_id"]]
                    f0 = m.wall - w_start                      # the alerted clip in the recording's time
                    f1 = f0 + (m.t1 - m.t0)
                    ev = next((s for s in truth if f0 < s[1] + 1.5 and f1 > s[0] - 1.5), None)
                    rows.append({"run": run, "from_clip_end": when - (m.wall + (m.t1 - m.t0)),
                                 "from_clip_start": when - m.wall, "file_start": round(f0, 2),
                                 "file_end": round(f1, 2), "planted": ev,
                                 "from_moment": None if ev is None else when - (w_start + ev[0])})
    finally:
        srv.kill()
        srv.wait(5)
        rx.shutdown()
    return {"rows": rows, "planted_per_run": len(truth), "runs": runs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="pr,hour,delay")
    ap.add_argument("--hour-minutes", type=float, default=60.0, help="length of the no-event recordings")
    ap.add_argument("--runs", type=int, default=2, help="live RTSP runs for the delay")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args()
    parts = args.parts.split(",")
    tmp = tempfile.mkdtemp(prefix="vigil-alerts-bench-")
    import torch

    res: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                 "load_before": os.getloadavg()[0]}
    if "pr" in parts:
        res["pr"] = part_pr(tmp)
    if "hour" in parts:
        res["hour"] = part_hour(tmp, args.hour_minutes)
    if "delay" in parts:
        res["delay"] = part_delay(tmp, args.runs)
    res["load_after"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    print(markdown(res))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def markdown(res: dict) -> str:
    out = [f"Machine: {res['machine']} (load average {res['load_before']:.1f} before, {res['load_after']:.1f} "
           f"after: a shared machine). Lite profile (offline bundled weights), 1 fps, 2 s clips, cooldown "
           f"{COOLDOWN:g} s, default thresholds."]
    if "pr" in res:
        pr = res["pr"]
        out += ["", f"**Planted events and near misses** ({pr['media_s'] / 60:.1f} min of media, ingested with the "
                f"watches in {pr['seconds']:.0f} s; {pr['stats']['checked']} memories checked, "
                f"{pr['stats']['dropped']} dropped):", "",
                "| watch | kind | planted | found | alerts | false alerts | precision | recall |",
                "|---|---|---|---|---|---|---|---|"]
        for k, s in pr["scores"].items():
            true_alerts = s["alerts"] - s["false"]
            prec = true_alerts / s["alerts"] if s["alerts"] else float("nan")
            rec = s["found"] / s["planted"] if s["planted"] else float("nan")
            out.append(f"| {WATCHES[k][0]} | {k} | {s['planted']} | {s['found']} | {s['alerts']} | {s['false']} | "
                       f"{prec:.2f} | {rec:.2f} |")
        ref = pr.get("reference")
        if ref:
            hit = sum(v >= ref["threshold"] for v in ref["planted"])
            miss = sum(v >= ref["threshold"] for v in ref["near"])
            out.append(f"| {WATCHES['speech'][0]}, on the script instead of the transcript | speech (matcher only) | "
                       f"{len(ref['planted'])} | {hit} | {hit + miss} | {miss} | "
                       f"{hit / max(1, hit + miss):.2f} | {hit / len(ref['planted']):.2f} |")
        fa = [f"{k}: {s['false_at']}" for k, s in pr["scores"].items() if s["false"]]
        if fa:
            out += ["", "False alerts: " + "; ".join(fa)]
    if "hour" in res:
        h = res["hour"]
        out += ["", f"**No planted event** (a meeting of {h['hours']['meeting'] * 60:.0f} min and a still camera of "
                f"{h['hours']['dock'] * 60:.0f} min; ingest {h['seconds']['meeting']:.0f} s and "
                f"{h['seconds']['dock']:.0f} s; {h['stats']['checked']} memories checked, {h['stats']['dropped']} "
                "dropped):", "", "| watch | kind | alerts | false alerts per hour |", "|---|---|---|---|"]
        for k, s in h["scores"].items():
            hours = h["hours"]["dock"] if k == "motion" else h["hours"]["meeting"]
            out.append(f"| {WATCHES[k][0]} | {k} | {s['alerts']} | {s['alerts'] / hours:.1f} |")
    if "delay" in res:
        d = res["delay"]
        rows = d["rows"]
        if rows:
            ce = np.array([r["from_clip_end"] for r in rows])
            cs = np.array([r["from_clip_start"] for r in rows])
            false = sum(1 for r in rows if r["planted"] is None)
            found = len({(r["run"], tuple(r["planted"])) for r in rows if r["planted"] is not None})
            out += ["", f"**Delay on a live RTSP camera** (GStreamer RTSP server on 127.0.0.1 serving a recording in "
                    f"real time; a box crosses the view {d['planted_per_run']} times per run, {d['runs']} runs; motion "
                    f"watch; webhook on 127.0.0.1): {found} of {d['planted_per_run'] * d['runs']} crossings alerted, "
                    f"{false} alerts outside one.", "",
                    "| seconds to the webhook's arrival | median | max |", "|---|---|---|",
                    f"| from the end of the alerted clip (its last frame) | {np.median(ce):.2f} | {ce.max():.2f} |",
                    f"| from the start of the alerted clip | {np.median(cs):.2f} | {cs.max():.2f} |"]
            mo = np.array([r["from_moment"] for r in rows if r.get("from_moment") is not None])
            if mo.size:
                out.append(f"| from the moment the box enters the view | {np.median(mo):.2f} | {mo.max():.2f} |")
        else:
            out += ["", "**Delay**: no alert arrived."]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
