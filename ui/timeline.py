"""The Timeline view: one point per stored clip at (clip start, novelty), a colour and a line per stream, as an
inline SVG whose points send their memory id back as a select event; and the replay player and evidence panel
that a clicked citation or point opens. Formatting only: the rows come from Engine.memories()."""
from __future__ import annotations

import html
import math
import os
import urllib.parse
from typing import Optional

from engine.timefmt import hms
from memory.bank import EVIDENCE_LABELS

# Clicking a point of the timeline sends that memory's id as a select event (evt.index).
TIMELINE_JS = """
element.addEventListener('click', (e) => {
  const p = e.target.closest('[data-mid]');
  if (!p) return;
  element.querySelectorAll('circle.sel').forEach((c) => c.classList.remove('sel'));
  p.classList.add('sel');
  trigger('select', {index: Number(p.getAttribute('data-mid')), value: p.getAttribute('data-mid'), selected: true});
});
"""
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


COLUMNS = ["id", "stream", "start", "end", "change", "evidence"]  # the Clips table (times as h:mm:ss)


def rows_of(memories: list[dict]) -> list[dict]:
    """Engine.memories() -> the timeline's rows (id, stream, t0, t1, novelty, evidence text)."""
    return [{"id": m["id"], "stream": m["stream"], "t0": float(m["start"]), "t1": float(m["end"]),
             "novelty": float(m["novelty"]) if m.get("novelty") is not None else 0.0,
             "evidence": m.get("text", "")} for m in memories]


def change_text(novelty: float) -> str:
    """Novelty for people: a stream's first clip, or how much the clip differs from the one before, rounded."""
    if novelty >= 0.9995:
        return "first clip"
    if novelty < 0.005:
        return "<0.01"
    return f"{novelty:.2f}"


def table_rows(rows: list[dict]) -> list[list]:
    """The Clips table: id, stream, start and end as h:mm:ss, change (rounded), evidence in plain words."""
    return [[r["id"], r["stream"], hms(r["t0"]), hms(r["t1"]), change_text(r["novelty"]), r["evidence"]]
            for r in rows]


def window_of(t_from, t_to) -> Optional[tuple[float, float]]:
    """The From/To boxes (seconds or h:mm:ss; empty or 0: no bound) -> (start, end) or None for everything.
    Raises ValueError for a time that is not one, a negative one, or an end before the start."""
    lo, hi = parse_time(t_from) or 0.0, parse_time(t_to) or 0.0
    if hi > 0 and hi < lo:
        raise ValueError("the end of the window is before its start")
    return None if lo <= 0 and hi <= 0 else (max(0.0, lo), hi if hi > 0 else 1e12)


def caption(rows: list[dict], stream: Optional[str], t_range) -> str:
    where = f" of **{stream}**" if stream else f" of {len({r['stream'] for r in rows})} stream(s)"
    window = "" if t_range is None else (f" between {hms(t_range[0])} and "
                                         + ("the end" if t_range[1] >= 1e11 else hms(t_range[1])))
    return f"{len(rows)} clips{where}{window}. Click a point or a row to open it."


def parse_time(v) -> Optional[float]:
    """A time box's value: seconds (a number or "90") or h:mm:ss / m:ss text; None when empty. Raises ValueError
    for anything else, or a negative time."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, (int, float)):
        t = float(v)
    else:
        parts = str(v).strip().split(":")
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"not a time: {v!r} (use seconds or h:mm:ss)")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"not a time: {v!r} (use seconds or h:mm:ss)") from None
        t = 0.0
        for n in nums:
            t = t * 60 + n
    if t != t or t < 0:
        raise ValueError("times must be 0 or later")
    return t


def timeline_svg(rows: list[dict], t_range: Optional[tuple[float, float]] = None, width: int = 960,
                 height: int = 280) -> str:
    """The timeline as an inline SVG: one point per stored clip at (clip start, novelty), a colour and a line per
    stream, labelled axes, a legend, and a tooltip per point. Each point carries its memory id (data-mid), which
    TIMELINE_JS sends back as a select event."""
    if not rows:
        return "<div class='timeline-empty'>No clips in this selection yet.</div>"
    L, R, T, B = 64, 40, 12, 44  # the right margin holds half of the last time label
    pw, ph = width - L - R, height - T - B
    lo = min(r["t0"] for r in rows)
    hi = max(r["t1"] for r in rows)
    if t_range is not None:
        lo, hi = max(lo, t_range[0]), min(hi, t_range[1]) if t_range[1] < 1e11 else hi
    if hi - lo < 1.0:
        hi = lo + 1.0
    # Novelty spans decades (near-identical slides differ by 1e-4, a new scene by 0.3, a stream's first clip
    # is 1 by convention), so the y axis is logarithmic, from the smallest decade present (>= 1e-4) to 1.
    pos = [r["novelty"] for r in rows if r["novelty"] > 0]
    ylo = min(0.1, max(1e-4, 10 ** math.floor(math.log10(min(pos))))) if pos else 1e-4
    yhi = max([1.0] + [r["novelty"] for r in rows])
    llo, lhi = math.log10(ylo), math.log10(yhi)

    def x(t):
        return L + (min(max(t, lo), hi) - lo) / (hi - lo) * pw

    def y(v):
        return T + ph - (math.log10(min(max(v, ylo), yhi)) - llo) / (lhi - llo) * ph

    streams: dict[str, list[dict]] = {}
    for r in rows:
        streams.setdefault(r["stream"], []).append(r)
    color = {sid: PALETTE[i % len(PALETTE)] for i, sid in enumerate(streams)}
    out = ["<div class='legend' id='timeline-legend'>"]
    out += [f"<span data-stream='{html.escape(sid)}'><i style='background:{color[sid]}'></i>{html.escape(sid)} "
            f"({len(rs)} clips)</span>" for sid, rs in streams.items()]
    out.append("</div>")
    out.append(f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='Timeline: novelty per clip'>")
    # grid, ticks and labels
    step = next((s for s in TIME_STEPS if (hi - lo) / s <= 8), TIME_STEPS[-1])
    t = -(-lo // step) * step
    while t <= hi + 1e-9:
        out.append(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{T}' y2='{T + ph}' stroke='#e5e5e5'/>"
                   f"<text x='{x(t):.1f}' y='{T + ph + 14}' text-anchor='middle' fill='#555'>{hms(t)}</text>")
        t += step
    for k in range(round(llo), math.floor(lhi) + 1):
        v = 10.0 ** k
        out.append(f"<line x1='{L}' x2='{L + pw}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#e5e5e5'/>"
                   f"<text x='{L - 6}' y='{y(v) + 4:.1f}' text-anchor='end' fill='#555'>{v:g}</text>")
    out.append(f"<line x1='{L}' x2='{L}' y1='{T}' y2='{T + ph}' stroke='#888'/>"
               f"<line x1='{L}' x2='{L + pw}' y1='{T + ph}' y2='{T + ph}' stroke='#888'/>")
    out.append(f"<text class='axis-title' x='{L + pw / 2:.0f}' y='{height - 6}' text-anchor='middle' fill='#222'>"
               "clip start (media time from the stream's start, h:mm:ss)</text>")
    out.append(f"<text class='axis-title' transform='translate(14 {T + ph / 2:.0f}) rotate(-90)' text-anchor='middle'"
               " fill='#222'>novelty (1 − cosine to the previous clip, log)</text>")
    for sid, rs in streams.items():  # lines first, under every point
        pts = " ".join(f"{x(r['t0']):.1f},{y(r['novelty']):.1f}" for r in rs)
        out.append(f"<polyline points='{pts}' fill='none' stroke='{color[sid]}' stroke-opacity='0.35' "
                   "pointer-events='none'/>")
    for sid, rs in streams.items():
        for r in rs:
            tip = (f"{r['stream']} · {hms(r['t0'])}–{hms(r['t1'])} · change {change_text(r['novelty'])} · "
                   f"memory #{r['id']}"
                   + (f"\n{r['evidence']}" if r.get("evidence") else ""))
            out.append(f"<circle data-mid='{int(r['id'])}' cx='{x(r['t0']):.1f}' cy='{y(r['novelty']):.1f}' r='4.5' "
                       f"fill='{color[sid]}' stroke='#fff'><title>{html.escape(tip)}</title></circle>")
    out.append("</svg>")
    return "".join(out)


def player_html(path: Optional[str], t: float = 0.0) -> str:
    """An HTML5 player for a media-dir file, seeked to t with a media fragment (served via allowed_paths)."""
    if not path:
        return "<div id='vigil-player-empty'>Click a citation or a timeline row to open it here.</div>"
    url = "gradio_api/file=" + urllib.parse.quote(path)
    return (f"<video id='vigil-player' data-t='{t:.2f}' src='{html.escape(url)}#t={t:.2f}' controls preload='auto' "
            f"muted playsinline></video><div>{html.escape(os.path.basename(path))} @ {hms(t)}</div>")


def evidence_md(d: dict) -> str:
    """One memory (Engine.memory()) as Markdown: stream, span, id and its evidence."""
    ev = d.get("evidence") or {}
    if isinstance(ev, str):
        ev = {"evidence": ev} if ev else {}
    lines = [f"**{html.escape(d['stream'])}** · {hms(d['start'])}–{hms(d['end'])} · memory #{d['id']}"]
    for k, v in ev.items():
        if v:
            lines.append(f"- **{EVIDENCE_LABELS.get(k, k)}**: {html.escape(' '.join(str(v).split()))}")
    if len(lines) == 1:
        lines.append("_no text evidence for this clip_")
    return "\n".join(lines)


def opened(d: dict) -> tuple:
    """(player HTML, thumbnail, evidence Markdown) for an opened memory."""
    player = d.get("player")
    return (player_html(player, d["start"]) if player else player_html(None), d["thumbnail"],
            evidence_md(d) + ("" if player else "\n\n_live stream: showing the stored clip_"))
