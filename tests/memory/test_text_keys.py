"""Part keys of a memory's text (memory.textkeys): the speech and the on-screen text each get a key beside the whole
evidence's, written by the ingest pipeline's helper, searched by retrieval, kept across a crash, updated by late
evidence; a bank without them still answers. Real SQLite + FAISS bank, bundled MiniLM."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from memory.bank import MemoryBank
from memory.retrieval import retrieve
from memory.textkeys import is_part_space, key_texts, text_spaces
from models.registry import Profile
from models.text_embed import TextEmbedder
from stream.pipeline import text_keys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# a page of a document about other things, on screen while one sentence is said
PAGE = ["Quarterly operations review", "Harbor warehouse lease renewed until March", "Night shift staffing: 14 people",
        "Forklift inspections passed in all three depots", "Fuel costs rose 6 percent over the quarter",
        "New loading dock opens in the east yard", "Returns processed within two days on average",
        "Safety training completed by 92 percent of drivers", "Pallet racking upgrade scheduled for autumn",
        "Customs paperwork now filed electronically", "Truck fleet: 38 vehicles, 5 electric",
        "Cold storage capacity doubled", "Overtime hours fell by a third", "Supplier audit found no issues"]
CHAT = ["Let us move on.", "Any questions so far?", "Good, next point.", "Thanks everyone."]
SAID = "Mandolin keeps its accounts at Harrowgate."
QUESTION = "Which lender holds the money for Mandolin?"
ANSWER_AT = 23


@pytest.fixture(scope="module")
def embedder():
    return TextEmbedder()


def _evidence(n: int = 40) -> list[dict]:
    evs = [{"asr": CHAT[i % 4], "ocr": "\n".join(PAGE[i % 14:] + PAGE[:i % 14])} for i in range(n)]
    evs[ANSWER_AT] = {"asr": SAID, "ocr": "\n".join(PAGE)}
    return evs


def _bank(path: str, embedder, parts: bool = True) -> MemoryBank:
    bank = MemoryBank(path)
    evs = _evidence()
    for i, (ev, keys) in enumerate(zip(evs, text_keys(embedder, evs))):
        if not parts:  # a bank written before part keys: the whole evidence's key only
            keys = {s: v for s, v in keys.items() if not is_part_space(s)}
        bank.add(stream="m", t0=2.0 * i, t1=2.0 * i + 2, wall=0.0, carrier=None, keys=keys, evidence=ev)
    return bank


def test_key_texts_are_the_whole_and_each_part():
    ev = {"asr": "we ship in May", "ocr": "Roadmap\nLaunch: May 3", "tags": "screen"}
    assert key_texts(ev) == {"text": "we ship in May Roadmap\nLaunch: May 3 screen", "text.asr": "we ship in May",
                             "text.ocr": "Roadmap\nLaunch: May 3"}
    assert key_texts({"tags": "cup"}) == {"text": "cup"}  # no speech, no screen text: no part keys
    assert key_texts({}) == {}
    assert text_spaces("minilm-l6") == ["text:minilm-l6", "text.asr:minilm-l6", "text.ocr:minilm-l6"]
    assert is_part_space("text.asr:x") and is_part_space("text.ocr:x")
    assert not is_part_space("text:x") and not is_part_space("efficientnet-lite0")


def test_the_said_line_buried_under_a_page_is_first_by_its_own_key(tmp_path, embedder):
    """The one sentence that answers is said while a page about other things is on screen: the speech key finds it
    first; the whole-evidence key, diluted by the page, holds it at a lower cosine."""
    bank = _bank(str(tmp_path / "b"), embedder)
    try:
        spaces = text_spaces(embedder.space)
        assert set(spaces) <= set(bank.key_spaces())
        q = Profile(name="t", encoder=None, text_embedder=embedder).query_keys(QUESTION)
        assert set(spaces) <= set(q)
        said = bank.search(q[spaces[1]], k=5, space=spaces[1])
        whole = dict(bank.search(q[spaces[0]], k=40, space=spaces[0]))
        mid = ANSWER_AT + 1
        assert said[0][0] == mid, said
        assert said[0][1] > whole[mid] + 0.1, (said[0], whole[mid])
        # fused retrieval: found, and its score is its whole key's cosine (what answerers' thresholds read)
        got = {m.id: m for m in retrieve(bank, q, k=10, text=QUESTION)}
        assert mid in got and got[mid].evidence["asr"] == SAID
        assert got[mid].score == pytest.approx(whole[mid], abs=1e-5)
    finally:
        bank.close()


DOCS = [["Mandolin product brief", "Mandolin launch date: May 3", "Mandolin budget: 40 thousand euros",
         "Mandolin team: design, firmware, sales", "Mandolin pilot customers: 12", "Mandolin risks: chip supply"],
        ["Mandolin marketing plan", "Mandolin ads run in spring", "Mandolin website refresh in April",
         "Mandolin price: 199 euros"]]


def test_the_answer_reaches_the_ask_path_among_many_pages_naming_the_subject(tmp_path, embedder):
    """240 clips, 40 of them showing pages about the same project (its name on every line): with the whole
    evidence's key only, the clip whose speaker says the answer over an unrelated page ranks 41st in the first
    search, outside the pool the ask path reranks, and is never seen; with the part keys it enters the pool and
    the ask path returns it."""
    from models.ask import retrieve_for

    evs = [{"asr": CHAT[i % 4], "ocr": "\n".join(DOCS[i % 2] if i % 6 == 0 else PAGE[i % 14:] + PAGE[:i % 14])}
           for i in range(240)]
    evs[123] = {"asr": SAID, "ocr": "\n".join(PAGE)}
    prof = Profile(name="t", encoder=None, text_embedder=embedder)
    found = {}
    for parts in (False, True):
        bank = MemoryBank(str(tmp_path / f"b{parts}"))
        try:
            for i, (ev, keys) in enumerate(zip(evs, text_keys(embedder, evs))):
                keys = keys if parts else {s: v for s, v in keys.items() if not is_part_space(s)}
                bank.add(stream="m", t0=2.0 * i, t1=2.0 * i + 2, wall=0.0, carrier=None, keys=keys, evidence=ev)
            first = [m.id for m in retrieve(bank, prof.query_keys(QUESTION), k=240, text=QUESTION)]
            got = retrieve_for(bank, prof, QUESTION, k=5)
            found[parts] = (first.index(124), [m.id for m in got])
        finally:
            bank.close()
    assert found[False][0] >= 32 and 124 not in found[False][1], found  # outside the pool of max(4k, 32)
    assert found[True][0] < 32 and 124 in found[True][1], found


def test_an_old_layout_bank_still_answers(tmp_path, embedder):
    """A bank with only whole-evidence keys: the query's part spaces are skipped and the memory is still found."""
    bank = _bank(str(tmp_path / "old"), embedder, parts=False)
    try:
        assert bank.key_spaces() == [f"text:{embedder.space}"]
        q = Profile(name="t", encoder=None, text_embedder=embedder).query_keys(QUESTION)
        got = retrieve(bank, q, k=10, text=QUESTION)
        assert ANSWER_AT + 1 in [m.id for m in got]
        assert all(0.0 <= m.score <= 1.0 for m in got)
    finally:
        bank.close()


def test_part_keys_survive_a_crash_and_follow_late_evidence(tmp_path, embedder):
    """A writer killed without closing (no tail cache): on reopen every acknowledged part key is back from SQLite
    and searchable; late speech replaces the memory's speech key."""
    path = str(tmp_path / "crash")
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        from memory.bank import MemoryBank
        from models.text_embed import TextEmbedder
        from stream.pipeline import text_keys
        emb = TextEmbedder()
        evs = [{{"asr": "the crane is parked by gate four", "ocr": "Yard map\\nGate four: cranes"}},
               {{"ocr": "Shift rota\\nMonday: Ada"}}]
        bank = MemoryBank({path!r})
        for i, (ev, keys) in enumerate(zip(evs, text_keys(emb, evs))):
            bank.add(stream="cam", t0=i, t1=i + 1, wall=0.0, carrier=None, keys=keys, evidence=ev)
        os._exit(0)  # no close: nothing but what SQLite acknowledged
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    bank = MemoryBank(path)
    try:
        asr, ocr = f"text.asr:{embedder.space}", f"text.ocr:{embedder.space}"
        assert {asr, ocr, f"text:{embedder.space}"} <= set(bank.key_spaces())
        assert bank.key_of(1, asr) is not None and bank.key_of(2, asr) is None  # no speech, no speech key
        q = embedder.encode(["where is the crane parked?"])[0]
        assert bank.search(q, k=1, space=asr)[0][0] == 1
        assert bank.search(embedder.encode(["who works on Monday?"])[0], k=1, space=ocr)[0][0] == 2
        # late speech for memory 2 (as IngestPipeline._attach stores it): its speech key appears and ranks first
        late = {**bank.get([2])[0].evidence, "asr": "Ada covers the Monday shift at the dock"}
        bank.set_evidence(2, {"asr": late["asr"]}, text_keys(embedder, [late])[0])
        hit = bank.search(embedder.encode(["who covers Monday at the dock?"])[0], k=1, space=asr)
        assert hit[0][0] == 2
        assert np.allclose(bank.key_of(2, asr), embedder.encode([late["asr"]])[0], atol=1e-5)
    finally:
        bank.close()
    bank = MemoryBank(path, readonly=True)  # and after a clean close, read-only
    try:
        assert bank.key_of(2, f"text.asr:{embedder.space}") is not None
    finally:
        bank.close()
