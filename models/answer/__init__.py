"""Answering from text evidence: the lite answerer, the evidence check of LLM sentences, the bundled LLM."""
