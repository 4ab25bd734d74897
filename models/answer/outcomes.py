"""Questions about a meeting's outcomes: "What decisions were made?", "What are the action items?", "Who has to do
what by when?". The minutes' extraction answers them (models/minutes: decisions and action items with owners, each
with the time of the sentence it came from); retrieval by similarity to "decisions" would not.

    outcome_question("What decisions were made?")         -> "decisions"
    outcome_question("What are the next steps?")          -> "actions"
    outcome_question("What did they decide about Kite?")  -> None   (a question about Kite: the normal path)
    outcome_lines(memories, embedder, "decisions")        -> [Line], time order
    outcome_text(lines, "decisions")                      -> "Decisions:\n- [00:01:24–00:01:28] We ..."
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from typing import Optional, Sequence

from models.text.timephrase import fmt_span, split_time_filter

_DECISIONS = re.compile(r"\b(?:decisions?|decided?|agreed|agreements?|resolutions?|resolved|conclusions?|concluded)\b",
                        re.I)
_ACTIONS = re.compile(r"\b(?:action items?|actions|to-?dos?|next steps?|follow[- ]?ups?|tasks?|assignments?|assigned|"
                      r"who (?:has|have|needs?|is going) to do what|owners?)\b", re.I)
# what such a question may hold besides its outcome words ("What did they decide about Kite?" is about Kite)
_ALLOWED = {"decisions", "decision", "decided", "decide", "dos", "we", "agreed", "agreement", "agreements",
            "resolutions", "resolved",
            "conclusions", "concluded", "action", "actions", "items", "item", "todo", "todos", "tasks", "task",
            "steps", "step", "follow", "ups", "assignments", "assigned", "owners", "owner", "list", "made", "make",
            "taken", "reached", "meeting", "recording", "call", "video", "today", "key", "main", "final", "agree",
            "need", "needs", "going", "does", "did", "summarize", "summarise", "tell", "give", "outcomes", "outcome",
            "came", "result", "results"}


def outcome_question(question: str) -> Optional[str]:
    """"decisions" / "actions" for a question that asks for all of one kind of outcome, else None."""
    q, _ = split_time_filter(question or "", 1e9)
    from models.text.words import content

    if set(content(q)) - _ALLOWED:
        return None
    if _ACTIONS.search(q):
        return "actions"
    if _DECISIONS.search(q):
        return "decisions"
    return None


_MINUTES: "OrderedDict[tuple, object]" = OrderedDict()  # the last few extractions, by the memories they read


def outcome_lines(memories: Sequence, embedder, kind: str) -> list:
    """The minutes' decisions (Line) or action items (ActionItem) of these memories, in time order. The extraction
    of the same memories (the same times and evidence) is kept: retrieval and the answer read it, and a user asks
    for the decisions, then the action items, of the same stretch."""
    from models.minutes.summarize import summarize

    key = tuple((m.stream, m.t0, m.t1, json.dumps(m.evidence or {}, sort_keys=True, default=str)) for m in memories)
    key = (id(embedder), hashlib.sha1(repr(key).encode()).hexdigest())
    mn = _MINUTES.get(key)
    if mn is None:
        mn = summarize(memories, llm=None, embedder=embedder, use_llm_overview=False, use_llm_bullets=False)
        _MINUTES[key] = mn
        while len(_MINUTES) > 16:
            _MINUTES.popitem(last=False)
    lines = mn.decisions if kind == "decisions" else mn.action_items
    return sorted(lines, key=lambda x: x.t0)


def outcome_moments(memories: Sequence, lines: Sequence) -> list:
    """The memory each line was said in (the first that overlaps its time), in time order, once each."""
    ms = sorted(memories, key=lambda m: (m.stream, m.t0))
    out: dict = {}
    for ln in lines:
        m = next((m for m in ms if m.t1 > ln.t0 and m.t0 < ln.t1), None)
        if m is not None:
            out[id(m)] = m
    return sorted(out.values(), key=lambda m: (m.stream, m.t0))


def outcome_text(lines: Sequence, kind: str) -> str:
    if not lines:
        return ("No decisions were recorded in these moments." if kind == "decisions" else
                "No action items were recorded in these moments.")
    if kind == "decisions":
        return "Decisions:\n" + "\n".join(f"- {fmt_span(x.t0, x.t1)} {x.text.strip(' ·•')}" for x in lines)
    return "Action items:\n" + "\n".join(f"- {fmt_span(x.t0, x.t1)} {x.owner or 'Unassigned'}: {x.task}" for x in lines)
