"""What minutes hold: every line carries the [start–end] of the evidence it came from."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from models.text.timephrase import fmt_span


@dataclass
class Line:
    text: str
    t0: float
    t1: float

    def md(self) -> str:
        return f"{fmt_span(self.t0, self.t1)} {self.text}"


@dataclass
class ActionItem:
    owner: Optional[str]
    task: str
    t0: float
    t1: float
    text: str = ""

    def md(self) -> str:
        return f"{fmt_span(self.t0, self.t1)} **{self.owner or 'Unassigned'}**: {self.task}"


@dataclass
class Section:
    title: str
    t0: float
    t1: float
    bullets: list[Line] = field(default_factory=list)
    slide_text: list[str] = field(default_factory=list)


@dataclass
class Minutes:
    title: str
    t0: float
    t1: float
    overview: list[Line] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    decisions: list[Line] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    numbers: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was made (e.g. "LLM bullets rejected: 2")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        out = [f"# {self.title}", "", f"{fmt_span(self.t0, self.t1)} {len(self.sections)} sections", ""]
        if self.overview:
            out += ["## Overview", ""] + [f"- {ln.md()}" for ln in self.overview] + [""]
        out += ["## Sections", ""]
        for s in self.sections:
            out += [f"### {fmt_span(s.t0, s.t1)} {s.title}", ""]
            out += [f"- {b.md()}" for b in s.bullets] or [f"- {fmt_span(s.t0, s.t1)} (nothing said)"]
            out.append("")
        out += ["## Decisions", ""] + ([f"- {d.md()}" for d in self.decisions] or
                                       [f"- {fmt_span(self.t0, self.t1)} None recorded."]) + [""]
        out += ["## Action items", ""] + ([f"- {a.md()}" for a in self.action_items] or
                                          [f"- {fmt_span(self.t0, self.t1)} None recorded."]) + [""]
        out += ["## Numbers and dates", ""] + ([f"- {n.md()}" for n in self.numbers] or
                                               [f"- {fmt_span(self.t0, self.t1)} None recorded."]) + [""]
        return "\n".join(out)
