"""Text helpers for answering and minutes: time phrases, sentences and words, relevance of evidence to a question."""
