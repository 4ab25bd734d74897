"""The bank's SQLite schema and its migrations from older layouts."""
from __future__ import annotations

import json
import os
import re
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS streams (id TEXT PRIMARY KEY, source TEXT, created REAL, settings TEXT);
CREATE TABLE IF NOT EXISTS memories (
  id INTEGER PRIMARY KEY, stream TEXT NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, wall REAL,
  reducer TEXT, budget INTEGER, space TEXT, shard INTEGER, offset INTEGER, nbytes INTEGER, m INTEGER, d INTEGER,
  thumb TEXT, novelty REAL, asr TEXT, ocr TEXT, tags TEXT, created REAL, steps INTEGER, screen TEXT);
CREATE INDEX IF NOT EXISTS memories_stream_t ON memories(stream, t0);
CREATE INDEX IF NOT EXISTS memories_t ON memories(t0);
CREATE INDEX IF NOT EXISTS memories_stream_wall ON memories(stream, wall);
CREATE TABLE IF NOT EXISTS keys (memory_id INTEGER NOT NULL, space TEXT NOT NULL, vec BLOB NOT NULL, seg INTEGER,
  PRIMARY KEY (memory_id, space));
CREATE TABLE IF NOT EXISTS segments (seg INTEGER PRIMARY KEY, space TEXT NOT NULL, stream TEXT NOT NULL,
  file TEXT NOT NULL, n INTEGER, dim INTEGER, t0 REAL, t1 REAL, created REAL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, stream TEXT, kind TEXT, t REAL, wall REAL, detail TEXT);
CREATE TABLE IF NOT EXISTS watches (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, stream TEXT,
  kind TEXT, threshold REAL, cooldown REAL, image TEXT, webhook TEXT, created REAL);
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, watch INTEGER, watch_text TEXT, stream TEXT, memory_id INTEGER,
  t0 REAL, t1 REAL, wall REAL, score REAL, evidence TEXT, thumb TEXT, clip TEXT, clip_t0 REAL, clip_t1 REAL,
  created REAL, delivery TEXT);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts(created);
"""
POST_SCHEMA = """
CREATE INDEX IF NOT EXISTS keys_seg ON keys(seg, space);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(asr, ocr, tags, content='memories', content_rowid='id',
  tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS memories_fts_ai AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, asr, ocr, tags) VALUES (new.id, new.asr, new.ocr, new.tags); END;
CREATE TRIGGER IF NOT EXISTS memories_fts_ad AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, asr, ocr, tags) VALUES ('delete', old.id, old.asr, old.ocr, old.tags); END;
CREATE TRIGGER IF NOT EXISTS memories_fts_au AFTER UPDATE OF asr, ocr, tags ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, asr, ocr, tags) VALUES ('delete', old.id, old.asr, old.ocr, old.tags);
  INSERT INTO memories_fts(rowid, asr, ocr, tags) VALUES (new.id, new.asr, new.ocr, new.tags); END;
"""


def migrate(db: sqlite3.Connection, path: str) -> list[str]:
    """Create or upgrade the schema of the bank at `path` (its writer connection); returns repairs worth reporting."""
    repairs: list[str] = []
    had_fts = db.execute("SELECT 1 FROM sqlite_master WHERE name='memories_fts'").fetchone() is not None
    db.executescript(SCHEMA)
    cols = {r[1] for r in db.execute("PRAGMA table_info(keys)")}
    if "seg" not in cols:  # a bank from before segments: every key starts in its stream's tail
        db.execute("ALTER TABLE keys ADD COLUMN seg INTEGER")
    mem_cols = {r[1] for r in db.execute("PRAGMA table_info(memories)")}
    if "steps" not in mem_cols:
        db.execute("ALTER TABLE memories ADD COLUMN steps INTEGER")
    if "screen" not in mem_cols:  # what the screen showed (its title and headings), context for a clip's speech
        db.execute("ALTER TABLE memories ADD COLUMN screen TEXT")
    db.executescript(POST_SCHEMA)
    if not had_fts and db.execute("SELECT 1 FROM memories LIMIT 1").fetchone():
        db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")
        repairs.append("indexed the text evidence for full-text search")
    if db.execute("SELECT 1 FROM meta WHERE k='max_span'").fetchone() is None:  # once, for older banks
        span = db.execute("SELECT COALESCE(MAX(t1 - t0), 0) FROM memories").fetchone()[0] or 0.0
        db.execute("INSERT INTO meta(k, v) VALUES ('max_span', ?)", (json.dumps(float(span)),))
    for name in os.listdir(path):  # whole-index files of the old layout: keys now live in SQLite
        if re.fullmatch(r"index-.*\.faiss(\.tmp)?", name):
            os.remove(os.path.join(path, name))
    return repairs
