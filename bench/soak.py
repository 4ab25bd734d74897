"""Soak and fault benchmark (issue 13 item 5), through the HTTP API as an operator drives it.

    python bench/soak.py --minutes 10 --kills 20 --out soak.json

Everything real: `python app.py serve --bank DIR --media-dir DIR` (uvicorn, a bearer token), four GStreamer RTSP
servers on 127.0.0.1 (tests/fixtures/rtsp_server.py, each with its own test pattern so one camera's memories cannot
pass for another's), streams started with POST /v1/streams, questions with POST /v1/ask.

1. solo: each camera alone in a fresh server for --solo-seconds (the reference for what that stream produces).
2. soak: the four cameras at once plus --askers concurrent askers for --minutes. Reported: the server's resident
   memory after warm-up (growth, target < 5%), ask failures (target 0), ask latency p50/p95, frames in and dropped
   per stream, and per stream whether its memories over the first --solo-seconds match the solo run's: the same
   count and the same (t0, t1) spans within one sampling interval (1/fps: a clip boundary falls on a sampled frame,
   and a live camera's first frame lands anywhere inside the first interval), and every memory's key nearest to a
   key of its own camera's solo memories (no cross-talk between streams).
3. kills: --kills times, the server is started on one bank, the four cameras are started, and after a random
   2-20 s of ingestion the acknowledged memories are read (GET /v1/memories and the counts of GET /v1/streams) and
   the server gets SIGKILL. Then the bank is reopened (repairs run) and checked: every acknowledged memory is
   there with the same stream and span, MemoryBank.check() is ok (key tails, segments and shards agree with
   SQLite), and a search by each acknowledged memory's own key finds it.

--probe 0 records where the soak server's resident memory lives (bench/soak_probe/sitecustomize.py, on its
PYTHONPATH: smaps by kind, malloc arenas and free-but-kept bytes, Python objects by type) into DIR/probe.jsonl;
--probe N adds tracemalloc with N frames; --server-env K=V (e.g. MALLOC_ARENA_MAX=2) tests an allocator setting.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from memory.bank import MemoryBank  # noqa: E402
from tests.api.conftest import start_server, stop_server  # noqa: E402
from tests.conftest import wait_for  # noqa: E402
from tests.conftest import free_port  # noqa: E402

TOKEN = "soak-token"
PATTERNS = ("ball", "smpte", "pinwheel", "circular")  # videotestsrc patterns: four cameras that look different
QUESTIONS = ("what is moving in the picture?", "what was on screen in the last minute?", "is there a ball?",
             "what colours are shown?", "what time does the clock show?", "describe camera {i}",
             "what changed recently?", "summarize what the cameras saw")
RTSP_LAUNCH = """
import sys; sys.path.insert(0, {fixtures!r})
import rtsp_server as r
r.PIPELINE = r.PIPELINE.replace("pattern=ball", "pattern={pattern}")
sys.argv = ["rtsp_server", "{port}", "/cam"]
r.main()
"""


# ---- the real parts ---------------------------------------------------------------------------------------

def start_rtsp(pattern: str) -> tuple[subprocess.Popen, str]:
    """One GStreamer RTSP server (the tests' fixture) serving `pattern`; (process, url) once it listens."""
    port = free_port()
    code = RTSP_LAUNCH.format(fixtures=os.path.join(ROOT, "tests", "fixtures"), pattern=pattern, port=port)
    proc = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    if "READY" not in line:
        proc.kill()
        raise RuntimeError(f"RTSP server for {pattern} did not start: {line!r}")
    return proc, f"rtsp://127.0.0.1:{port}/cam"


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)


def serve(bank: str, media: str, env: dict | None = None) -> tuple[subprocess.Popen, httpx.Client]:
    proc, url = start_server(bank, media, "--no-mcp", token=TOKEN, env=env)  # the /v1 API is what is soaked
    return proc, client(url)


def start_streams(api: httpx.Client, cams: dict[str, str]) -> None:
    for sid, url in cams.items():
        r = api.post("/v1/streams", json={"source": url, "stream": sid})
        if r.status_code != 201:
            raise RuntimeError(f"POST /v1/streams {sid}: {r.status_code} {r.text[:300]}")


def streams(api: httpx.Client) -> dict[str, dict]:
    return {s["stream"]: s for s in api.get("/v1/streams").json()}


def memories(api: httpx.Client, stream: str | None = None) -> list[dict]:
    params = {"limit": 10000, **({"stream": stream} if stream else {})}
    r = api.get("/v1/memories", params=params)
    r.raise_for_status()
    return r.json()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))


def threads_and_bank_fds(pid: int) -> tuple[int, int]:
    """The server's threads, and its open handles on bank.sqlite (one per SQLite connection)."""
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(x.split()[1]) for x in f if x.startswith("Threads:"))
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds += os.readlink(f"/proc/{pid}/fd/{fd}").endswith("bank.sqlite")
        except OSError:
            pass
    return threads, fds


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def spans_of(rows: list[dict], upto: float) -> list[tuple[float, float]]:
    return sorted((float(m["start"]), float(m["end"])) for m in rows if float(m["start"]) < upto)


def unmatched(a: list[tuple[float, float]], b: list[tuple[float, float]], tol: float, upto: float) -> list[float]:
    """Clip boundaries (starts) of `a` before `upto` with no boundary of `b` within `tol`."""
    return [round(x[0], 2) for x in a if x[0] < upto and not any(abs(x[0] - y[0]) <= tol for y in b)]


def gaps(a: list[tuple[float, float]]) -> int:
    return sum(y[0] - x[1] > 0.2 for x, y in zip(a, a[1:]))


def long_clips(a: list[tuple[float, float]], clip_s: float, upto: float) -> int:
    """Clips that absorbed a sampled frame past their nominal length (a boundary frame's time jittered late)."""
    return sum(x[1] - x[0] > clip_s + 0.5 for x in a if x[0] < upto)


def stream_running(api: httpx.Client, sids, need_memories: bool = False) -> bool:
    rows = streams(api)
    for sid in sids:
        s = rows.get(sid)
        if s is None or s["state"] in ("failed", "finished", "stopped"):
            raise RuntimeError(f"stream {sid} is not running: {s}")
        if s["state"] != "running" or (need_memories and not s.get("new_memories", s["memories"])):
            return False
    return True


# ---- 1. solo ----------------------------------------------------------------------------------------------

def solo(work: str, media: str, cams: dict[str, str], seconds: float) -> dict[str, list[dict]]:
    """Each camera alone (one stream at a time in one fresh server) for `seconds` of media time."""
    proc, api = serve(os.path.join(work, "solo-bank"), media)
    out = {}
    try:
        for sid, url in cams.items():
            start_streams(api, {sid: url})
            wait_for(lambda: streams(api)[sid]["last_t"] >= seconds + 3, seconds * 4 + 120, f"solo {sid}", 1.0)
            api.delete(f"/v1/streams/{sid}")
            out[sid] = memories(api, sid)
            print(f"  solo {sid}: {len(out[sid])} memories", flush=True)
    finally:
        api.close()
        stop_server(proc)
    return out


# ---- 2. soak ----------------------------------------------------------------------------------------------

def asker(url: str, i: int, stop: threading.Event, sids: list[str], think: float, lat: list, fails: list) -> None:
    rng = random.Random(i)
    with client(url) as api:
        while not stop.is_set():
            q = rng.choice(QUESTIONS).format(i=i % len(sids))
            body = {"question": q, "k": 5}
            if rng.random() < 0.5:
                body["streams"] = [rng.choice(sids)]
            t = time.perf_counter()
            try:
                r = api.post("/v1/ask", json=body)
                ok = r.status_code == 200 and isinstance(r.json().get("answer"), str) and r.json()["answer"].strip()
                why = "" if ok else f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                ok, why = False, f"{type(e).__name__}: {e}"
            lat.append(time.perf_counter() - t)
            if not ok:
                fails.append(why)
            stop.wait(think)


def probe_env(work: str, warmup_s: float, tracemalloc_frames: int, trim: bool, extra: list[str]) -> dict:
    """The served process's environment for --probe (bench/soak_probe/sitecustomize.py) and --server-env K=V."""
    env = dict(kv.split("=", 1) for kv in extra)
    if tracemalloc_frames >= 0:
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(ROOT, "bench", "soak_probe"),
                                                            os.environ.get("PYTHONPATH")])),
                   VIGIL_SOAK_PROBE=os.path.join(work, "probe.jsonl"), VIGIL_SOAK_PROBE_WARMUP=str(warmup_s),
                   VIGIL_SOAK_TRACEMALLOC=str(tracemalloc_frames), VIGIL_SOAK_TRIM="1" if trim else "0")
    return env


def soak(work: str, media: str, cams: dict[str, str], minutes: float, askers: int, think: float,
         warmup_s: float, env: dict | None = None) -> tuple[dict, dict[str, list[dict]], str]:
    bank = os.path.join(work, "soak-bank")
    proc, api = serve(bank, media, env)
    url = str(api.base_url).rstrip("/")
    lat: list[float] = []
    fails: list[str] = []
    samples: list[tuple[float, int]] = []
    extra: list[tuple[int, int]] = []
    stop = threading.Event()
    try:
        start_streams(api, cams)
        wait_for(lambda: stream_running(api, cams), 180, "the cameras to run", 1.0)
        t0, cpu0 = time.time(), cpu_s(proc.pid)
        threads = [threading.Thread(target=asker, args=(url, i, stop, list(cams), think, lat, fails), daemon=True)
                   for i in range(askers)]
        for th in threads:
            th.start()
        end = t0 + 60 * minutes
        while time.time() < end:
            samples.append((time.time() - t0, rss_kb(proc.pid)))
            extra.append(threads_and_bank_fds(proc.pid))
            if proc.poll() is not None:
                raise RuntimeError(f"the server died during the soak ({proc.returncode})")
            time.sleep(5)
        stop.set()
        for th in threads:
            th.join(600)
        cpu = cpu_s(proc.pid) - cpu0
        final = streams(api)
        for sid in cams:
            api.delete(f"/v1/streams/{sid}")
        rows = {sid: memories(api, sid) for sid in cams}
    finally:
        stop.set()
        api.close()
        rc = stop_server(proc)
    after = [kb for t, kb in samples if t >= warmup_s]
    base = statistics.median(after[:6]) if after else float("nan")    # the 30 s after warm-up
    last = statistics.median(after[-6:]) if after else float("nan")   # the last 30 s
    res = dict(minutes=minutes, askers=askers, think_s=think, warmup_s=warmup_s, server_exit=rc,
               server_cpu_s=round(cpu, 1), rss_mb_after_warmup=round(base / 1024, 1),
               rss_mb_end=round(last / 1024, 1), rss_mb_peak=round(max(kb for _, kb in samples) / 1024, 1),
               rss_growth_pct=round(100 * (last - base) / base, 2), asks=len(lat), ask_failures=len(fails),
               ask_failure_examples=fails[:5], ask_p50_s=round(pct(lat, 0.5), 2), ask_p95_s=round(pct(lat, 0.95), 2),
               rss_samples=[(round(t), kb, *x) for (t, kb), x in list(zip(samples, extra))[::6]],
               streams={sid: {k: final[sid].get(k) for k in ("frames_in", "frames_sampled", "dropped", "memories",
                                                             "reconnects", "last_t", "state")} for sid in cams})
    return res, rows, bank


def compare(soak_rows: dict, solo_rows: dict, seconds: float, tol: float, soak_bank: str, solo_bank: str,
            clip_s: float = 2.0) -> dict:
    """Per stream, over [0, seconds] against the solo run: every clip boundary within `tol` of one of the other run's,
    no gaps, and counts that differ by no more than the clips one run made longer (a live frame's time jitters
    across a boundary, so a clip takes the next sampled frame: one boundary fewer); and each soak memory's key is
    nearest to its own camera's solo keys (no cross-talk)."""
    out = {}
    with MemoryBank(soak_bank, readonly=True) as sb, MemoryBank(solo_bank, readonly=True) as rb:
        space = rb.default_space()
        ref = [(sid, m["id"]) for sid, rows in solo_rows.items() for m in rows]
        ref_keys = np.stack([rb.key_of(mid, space) for _, mid in ref])
        for sid, rows in soak_rows.items():
            a, b = spans_of(rows, seconds + 2 * tol), spans_of(solo_rows[sid], seconds + 2 * tol)
            inner = seconds - tol  # a clip starting right at the edge may fall on either side of it
            extra, missing = unmatched(a, b, tol, inner), unmatched(b, a, tol, inner)
            dev = max((min(abs(x[0] - y[0]) for y in b) for x in a if x[0] < inner and b), default=0.0)
            own = 0
            for m in rows:
                k = sb.key_of(m["id"], space)
                own += k is not None and ref[int(np.argmax(ref_keys @ k))][0] == sid
            na, nb = sum(x[0] < inner for x in a), sum(x[0] < inner for x in b)
            slack = max(long_clips(a, clip_s, inner), long_clips(b, clip_s, inner))
            out[sid] = dict(soak=na, solo=nb, long_clips_soak=long_clips(a, clip_s, inner),
                            long_clips_solo=long_clips(b, clip_s, inner), gaps=gaps(a), max_boundary_dev_s=round(dev, 3),
                            unmatched_soak=extra[:3], unmatched_solo=missing[:3],
                            spans_match=not extra and not missing and not gaps(a) and abs(na - nb) <= slack,
                            nearest_own_camera=f"{own}/{len(rows)}")
    return out


# ---- 3. kills ---------------------------------------------------------------------------------------------

def kill_round(bank: str, media: str, cams: dict[str, str], rng: random.Random) -> dict:
    proc, api = serve(bank, media)
    t_up = time.time()
    try:
        start_streams(api, cams)
        wait_for(lambda: stream_running(api, cams), 180, "the cameras to run", 0.5)
        time.sleep(rng.uniform(2, 20))
        counted = {sid: s["memories"] for sid, s in streams(api).items() if sid in cams}
        acked = memories(api)
    finally:
        api.close()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return dict(acked=acked, counted=counted, up_s=round(time.time() - t_up, 1))


def verify(bank: str, acked: list[dict], counted: dict[str, int]) -> dict:
    """Reopen as the server would (repairs run) and check every acknowledged memory and every index."""
    t = time.perf_counter()
    with MemoryBank(bank) as b:
        open_s = time.perf_counter() - t
        have = {m.id: m for m in b.get([m["id"] for m in acked])}
        lost = [m["id"] for m in acked if m["id"] not in have or have[m["id"]].stream != m["stream"]
                or abs(have[m["id"]].t0 - m["start"]) > 1e-3 or abs(have[m["id"]].t1 - m["end"]) > 1e-3]
        per = {s["stream"]: s["memories"] for s in b.streams()}
        short = {sid: (per.get(sid, 0), n) for sid, n in counted.items() if per.get(sid, 0) < n}
        chk = b.check()
        space = b.default_space()
        unfound = 0
        for m in random.Random(len(acked)).sample(acked, min(20, len(acked))):
            key = b.key_of(m["id"], space)
            unfound += key is None or m["id"] not in [i for i, _ in b.search(key, k=10, space=space)]
        return dict(lost=lost, short_counts=short, check_ok=chk["ok"], problems=chk["problems"][:3],
                    repairs=list(b.repairs), unfound_by_own_key=unfound, open_s=round(open_s, 3))


def kills(work: str, media: str, cams: dict[str, str], n: int, seed: int) -> dict:
    bank = os.path.join(work, "kill-bank")
    rng = random.Random(seed)
    rounds = []
    for i in range(n):
        r = kill_round(bank, media, cams, rng)
        v = verify(bank, r["acked"], r["counted"])
        rounds.append(dict(acked=len(r["acked"]), counted=r["counted"], up_s=r["up_s"], **v))
        print(f"  kill {i + 1}/{n}: {len(r['acked'])} acknowledged, lost {len(v['lost'])}, check "
              f"{'ok' if v['check_ok'] else v['problems']}, repairs {len(v['repairs'])}", flush=True)
    return dict(kills=n, lost_total=sum(len(r["lost"]) for r in rounds),
                short_count_rounds=sum(bool(r["short_counts"]) for r in rounds),
                inconsistent_rounds=sum(not r["check_ok"] for r in rounds),
                unfound_by_own_key=sum(r["unfound_by_own_key"] for r in rounds),
                repairs=sorted({x.split(":")[0] for r in rounds for x in r["repairs"]}),
                acked_final=rounds[-1]["acked"] if rounds else 0, rounds=rounds)


# ---- main -------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10)")
    ap.add_argument("--askers", type=int, default=8)
    ap.add_argument("--think", type=float, default=1.0, help="seconds an asker waits between its questions")
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds before memory growth is measured")
    ap.add_argument("--solo-seconds", type=float, default=90.0, help="media seconds of each camera's solo run")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--skip", default="", help="comma list of phases to skip: solo,soak,kills")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="work directory (default: a new temporary one)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--probe", type=int, default=-1, metavar="FRAMES",
                    help="trace the soak server's memory into DIR/probe.jsonl every 30 s (bench/soak_probe); "
                         "FRAMES > 0 also runs tracemalloc with that many frames per allocation site")
    ap.add_argument("--probe-trim", action="store_true", help="with --probe: malloc_trim(0) after each sample")
    ap.add_argument("--server-env", action="append", default=[], metavar="K=V",
                    help="an environment variable for the soak server (e.g. MALLOC_ARENA_MAX=2)")
    a = ap.parse_args(argv)
    if not os.path.exists("/usr/bin/python3"):
        print("soak: Debian's python3 with gst-rtsp-server is needed for the RTSP cameras", file=sys.stderr)
        return 2
    skip = set(filter(None, a.skip.split(",")))
    work = a.dir or tempfile.mkdtemp(prefix="vigil-soak-")
    for d in ("solo-bank", "soak-bank", "kill-bank"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    media = os.path.join(work, "media")
    os.makedirs(media, exist_ok=True)
    rtsp = [start_rtsp(p) for p in PATTERNS]
    cams = {f"cam{i}": url for i, (_, url) in enumerate(rtsp)}
    # a clip boundary falls on a sampled frame (1 s apart at the engine's default 1 fps) and a live frame's time
    # jitters by up to a source frame (1/15 s here) either way: one sampling interval plus two source frames
    tol = 1.0 / 1.0 + 2 / 15
    res: dict = dict(cpu_cores=os.cpu_count(), load_avg_start=os.getloadavg(), cameras=dict(zip(cams, PATTERNS)),
                     span_tolerance_s=tol)
    t_all = time.time()
    try:
        solo_rows = {}
        if "solo" not in skip:
            print(f"solo runs ({a.solo_seconds:.0f} s each)", flush=True)
            solo_rows = solo(work, media, cams, a.solo_seconds)
        if "soak" not in skip:
            print(f"soak: {len(cams)} cameras + {a.askers} askers for {a.minutes} min", flush=True)
            env = probe_env(work, a.warmup, a.probe, a.probe_trim, a.server_env)
            res["server_env"] = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            res["soak"], rows, soak_bank = soak(work, media, cams, a.minutes, a.askers, a.think, a.warmup, env)
            res["load_avg_after_soak"] = os.getloadavg()
            print(json.dumps({k: v for k, v in res["soak"].items() if k != "rss_samples"}, indent=1), flush=True)
            if solo_rows:
                res["match"] = compare(rows, solo_rows, a.solo_seconds, tol, soak_bank, os.path.join(work, "solo-bank"))
                print(json.dumps(res["match"], indent=1), flush=True)
        if "kills" not in skip:
            print(f"{a.kills} SIGKILLs during ingestion", flush=True)
            res["kill"] = kills(work, media, cams, a.kills, a.seed)
            print(json.dumps({k: v for k, v in res["kill"].items() if k != "rounds"}, indent=1), flush=True)
    finally:
        for p, _ in rtsp:
            p.kill()
            p.wait(5)
    res["wall_s"] = round(time.time() - t_all)
    res["bench_cpu_s"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_utime
                               + resource.getrusage(resource.RUSAGE_SELF).ru_stime, 1)
    res["load_avg_end"] = os.getloadavg()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    soak_ok = "soak" not in res or (res["soak"]["ask_failures"] == 0 and res["soak"]["rss_growth_pct"] < 5
                                    and all(m["spans_match"] for m in res.get("match", {}).values()))
    kill_ok = "kill" not in res or (res["kill"]["lost_total"] == 0 and res["kill"]["inconsistent_rounds"] == 0)
    return 0 if soak_ok and kill_ok else 1


if __name__ == "__main__":
    sys.exit(main())
