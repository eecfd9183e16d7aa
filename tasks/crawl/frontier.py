"""The crawl's frontier on disk: every URL discovered (the seen set), the queue, and each URL's finished row.

One SQLite file (WAL, so a SIGKILL loses at most the transaction being written) holds a table of URLs
in discovery order. A URL is ``queued``, then ``fetched`` (its row and the links it found are stored the
moment its response is handled), then ``done`` (its links admitted, in discovery order, at the end of
its batch); redirect targets are ``hop`` rows, part of the row of the URL that led to them. Finished
rows wait in the table until a shard takes them (``shard`` set, the row itself dropped), so memory holds
one batch of jobs and one shard of rows whatever the size of the crawl, and a crawl killed at any point
resumes from its last stored row: finished URLs are never fetched again, and every URL ends in exactly
one shard.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks.records import Doc

SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    seq INTEGER PRIMARY KEY,      -- discovery order: the crawl's breadth-first order
    url TEXT NOT NULL UNIQUE,
    depth INTEGER NOT NULL,
    state TEXT NOT NULL,          -- queued | fetched | done | hop
    attempted INTEGER NOT NULL DEFAULT 0,  -- 1 when the URL was requested (counts towards max_pages)
    kept INTEGER,                 -- 1 kept, 0 rejected, NULL until fetched
    reason TEXT,
    chars INTEGER NOT NULL DEFAULT 0,
    row TEXT,                     -- the finished row as JSON, until a shard holds it
    links TEXT,                   -- JSON list of the links found, until they are admitted
    shard INTEGER                 -- the shard that holds the row
);
CREATE INDEX IF NOT EXISTS urls_pending ON urls (state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Job:
    """A discovered URL waiting to be fetched (or fetched, its links not yet admitted)."""

    seq: int
    url: str
    depth: int
    fetched: bool = False


class Frontier:
    """The queue, the seen set and the finished rows of one crawl, in one SQLite file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit; batches use explicit transactions
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; fsync only at checkpoints
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- meta ------------------------------------------------------------------------------------------

    def get(self, key: str, default: object = None) -> object:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value, ensure_ascii=False)))

    def transaction(self) -> _Transaction:
        """Return a context manager: everything inside commits together or not at all."""
        return _Transaction(self.db)

    # --- the seen set and the queue ------------------------------------------------------------------------

    def seen(self, url: str) -> bool:
        return self.db.execute("SELECT 1 FROM urls WHERE url = ?", (url,)).fetchone() is not None

    def discover(self, url: str, depth: int) -> bool:
        """Queue ``url`` unless it was seen before; return whether it is new."""
        return self.db.execute("INSERT OR IGNORE INTO urls (url, depth, state) VALUES (?, ?, 'queued')", (url, depth)).rowcount == 1

    def pending(self, limit: int) -> list[Job]:
        """Return the next ``limit`` URLs not done, in discovery order."""
        rows = self.db.execute(
            "SELECT seq, url, depth, state FROM urls WHERE state IN ('queued', 'fetched') ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [Job(seq, url, depth, state == "fetched") for seq, url, depth, state in rows]

    def attempted(self) -> int:
        """Return how many URLs were requested so far (what max_pages counts)."""
        return self.db.execute("SELECT count(*) FROM urls WHERE attempted = 1").fetchone()[0]

    # --- rows ---------------------------------------------------------------------------------------------

    def record(self, job: Job, doc: Doc, kept: bool, links: list[str], attempted: bool, hops: list[str], counters: dict) -> None:
        """Store a job's finished row, the links it found and the redirect hops it took, with the crawl's counters, at once."""
        with self.transaction():
            self.db.execute(
                "UPDATE urls SET state = 'fetched', attempted = ?, kept = ?, reason = ?, chars = ?, row = ?, links = ? WHERE seq = ?",
                (int(attempted), int(kept), doc.get("reason"), len(doc.get("text") or "") if kept else 0,
                 json.dumps(doc, ensure_ascii=False, default=str), json.dumps(links), job.seq),
            )  # fmt: skip
            for hop in hops:
                self.db.execute("INSERT OR IGNORE INTO urls (url, depth, state) VALUES (?, ?, 'hop')", (hop, job.depth))
            self.put("counters", counters)

    def reject_new(self, url: str, depth: int, doc: Doc) -> bool:
        """Store a URL rejected where it was discovered (off site, too deep) as done; return whether it was new."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO urls (url, depth, state, kept, reason, row) VALUES (?, ?, 'done', 0, ?, ?)",
            (url, depth, doc.get("reason"), json.dumps(doc, ensure_ascii=False, default=str)),
        )
        return cur.rowcount == 1

    def links_of(self, job: Job) -> list[str]:
        row = self.db.execute("SELECT links FROM urls WHERE seq = ?", (job.seq,)).fetchone()
        return json.loads(row[0]) if row and row[0] else []

    def finish(self, job: Job) -> None:
        """Mark a fetched job done (its links were admitted in the same transaction)."""
        self.db.execute("UPDATE urls SET state = 'done', links = NULL WHERE seq = ?", (job.seq,))

    def unsharded(self) -> Iterator[tuple[int, bool, Doc]]:
        """Yield (seq, kept, row) of the done rows no shard holds yet, in discovery order."""
        cur = self.db.execute("SELECT seq, kept, row FROM urls WHERE state = 'done' AND shard IS NULL ORDER BY seq")
        for seq, kept, row in cur:
            yield seq, bool(kept), json.loads(row)

    def unsharded_counts(self) -> tuple[int, int]:
        """Return (kept, rejected) rows waiting for a shard."""
        kept, total = self.db.execute("SELECT coalesce(sum(kept), 0), count(*) FROM urls WHERE state = 'done' AND shard IS NULL").fetchone()
        return kept, total - kept

    def sharded(self, seqs: list[int], shard: int) -> None:
        """Record that ``shard`` holds the rows ``seqs`` (dropping the rows themselves) and that it is the last one written."""
        with self.transaction():
            self.db.executemany("UPDATE urls SET shard = ?, row = NULL WHERE seq = ?", [(shard, s) for s in seqs])
            self.put("next_shard", shard + 1)

    def rows(self) -> Iterator[tuple[bool, Doc]]:
        """Yield (kept, row) of every done row still stored, in discovery order (the in-memory crawl reads them so)."""
        for _, kept, doc in self.unsharded():
            yield kept, doc

    def totals(self) -> dict:
        """Return the crawl's row counts: docs, kept, rejected by reason, characters kept, seen and hop URLs, still queued."""
        docs, kept, chars = self.db.execute(
            "SELECT count(*), coalesce(sum(kept), 0), coalesce(sum(chars), 0) FROM urls WHERE state IN ('fetched', 'done')"
        ).fetchone()
        reasons = Counter(dict(self.db.execute("SELECT reason, count(*) FROM urls WHERE state IN ('fetched', 'done') AND kept = 0 GROUP BY reason")))
        seen, hops = self.db.execute("SELECT count(*), coalesce(sum(state = 'hop'), 0) FROM urls").fetchone()
        queued = self.db.execute("SELECT count(*) FROM urls WHERE state = 'queued'").fetchone()[0]
        return {"docs": docs, "kept": kept, "chars": chars, "rejected_by_reason": dict(reasons), "seen": seen, "hops": hops, "queued": queued}


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("BEGIN")

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.outer:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
