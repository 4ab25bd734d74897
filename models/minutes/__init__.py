"""Meeting minutes: the data, rule-based extraction of decisions / action items / numbers, and summarize."""
from .data import ActionItem, Line, Minutes, Section  # noqa: F401
from .summarize import reduce_overview, segment_sections, summarize  # noqa: F401
