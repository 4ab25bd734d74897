"""Compatibility re-exports: the lite answering and minutes code now lives in focused modules.

- models.text.timephrase: fmt_ts, fmt_span, split_time_filter, parse_time_filter
- models.text.words: sentences (pysbd), words, content, ocr_lines, digits (text2num)
- models.text.relevance: Snippet, snippets, Relevance (bm25s + MiniLM), evidence_rerank
- models.answer.check: check_llm_sentence, answer_has_fact, support
- models.answer.lite: LiteAnswerer, AnswerTrace, NOT_FOUND, SYSTEM_PROMPT
- models.answer.llm: default_llm
- models.minutes: Minutes, Section, Line, ActionItem, summarize, reduce_overview, segment_sections
"""
from models.answer.check import answer_has_fact, check_llm_sentence, support  # noqa: F401
from models.answer.lite import NOT_FOUND, SYSTEM_PROMPT, AnswerTrace, LiteAnswerer  # noqa: F401
from models.answer.llm import default_llm  # noqa: F401
from models.minutes import ActionItem, Line, Minutes, Section, reduce_overview, segment_sections, summarize  # noqa: F401
from models.minutes.extract import extract_actions, extract_decisions, extract_numbers  # noqa: F401
from models.text.relevance import Relevance, Snippet, evidence_rerank, snippets  # noqa: F401
from models.text.timephrase import fmt_span, fmt_ts, parse_time_filter, split_time_filter  # noqa: F401
from models.text.words import ocr_lines, sentences  # noqa: F401
