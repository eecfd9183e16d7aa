"""The crawl stage as Prefect tasks: the crawl of the seeds, and one task per input file (or chunk of one).

Both commit their shards as they fill (``shard_docs`` kept or rejected rows each) and write a
done-record last (``tasks/store.py``), so a rerun skips what finished and redoes the rest: the crawl
resumes from its frontier, an unfinished input chunk is read again from its start.

Shard names keep the writers apart in the one stage folder: the crawl's are ``part-<n>.parquet``, an
input chunk's ``part-<chunk key>-<n>.parquet``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task

from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import CRAWL_SHARD, PROGRESS_FILE, crawl_to_shards
from tasks.crawl.inputs import BinarySink, InputChunk, read_chunk
from tasks.records import Doc
from tasks.steps import ShardStats
from tasks.store import StageDir, clear_done, read_done, stage_digest, write_done

STAGE = "crawl"
WARC_DIR = "warc"
FRONTIER_FILE = "frontier.sqlite"
CRAWL_DONE = "_done_crawl.json"
INPUTS_DONE = "_inputs"  # one done-record per input chunk: _inputs/<key>.json

# The settings an input chunk's records depend on; the crawl's own settings (seeds, depth, politeness…) do not matter to it.
INGEST_SETTINGS = frozenset(
    {"input_format", "text_field", "id_field", "url_field", "source_field", "chunk_bytes", "sources", "default_source",
     "html_types", "file_types", "max_bytes"}
)  # fmt: skip
# The settings of inputs, which do not matter to the crawl of the seeds.
INPUT_ONLY_SETTINGS = frozenset({"inputs", "input_format", "text_field", "id_field", "url_field", "source_field", "chunk_bytes"})


@dataclass
class CrawlPart:
    """What one crawl-stage task made: its stats and the shards it committed (the flow prunes every other shard)."""

    stats: ShardStats
    shards: list[str] = field(default_factory=list)
    label: str = ""


def crawl_digest(cfg: CrawlConfig) -> str:
    """Return the digest the crawl of the seeds is made under (input settings left out)."""
    return stage_digest(None, [cfg.model_dump_json(exclude=set(INPUT_ONLY_SETTINGS))])


def ingest_digest(cfg: CrawlConfig, chunk: InputChunk) -> str:
    """Return the digest one input chunk is read under: the settings that shape its records, and the chunk."""
    return stage_digest(None, [cfg.model_dump_json(include=set(INGEST_SETTINGS)), chunk.url, chunk.fingerprint, chunk.format, f"{chunk.start}:{chunk.stop}"])


class ShardWriter:
    """Cuts a stream of rows into committed shards ``part-<prefix><n>.parquet``, each full at ``shard_docs`` kept or rejected rows."""

    def __init__(self, out: StageDir, prefix: str, shard_docs: int, origin: str):
        self.out = out
        self.prefix = prefix
        self.shard_docs = shard_docs
        self.origin = origin
        self.kept: list[Doc] = []
        self.rejected: list[Doc] = []
        self.names: list[str] = []

    def add(self, doc: Doc, kept: bool) -> None:
        (self.kept if kept else self.rejected).append(doc)
        if len(self.kept) >= self.shard_docs or len(self.rejected) >= self.shard_docs:
            self.flush()

    def flush(self) -> None:
        """Commit the rows waiting as the next shard (nothing when none wait)."""
        if not self.kept and not self.rejected:
            return
        name = f"part-{self.prefix}{len(self.names):05d}.parquet"
        marker = {"input": self.origin, "stats": {"docs_kept": len(self.kept), "docs_rejected": len(self.rejected)}}
        self.out.commit_shard(name, self.kept, self.rejected, marker)
        self.names.append(name)
        self.kept, self.rejected = [], []


def remove_shards(out: StageDir, names: list[str]) -> None:
    """Remove committed shards (kept, rejected, marker) by name."""
    for name in names:
        for path in (out.shard(name), out.rejected(name), out.marker(name)):
            path.unlink(missing_ok=True)


def read_input(out: StageDir, chunk: InputChunk, cfg: CrawlConfig, shard_docs: int) -> CrawlPart:
    """Read one input chunk into shards of ``out``; a chunk finished before (same file, same settings) is not read again."""
    digest = ingest_digest(cfg, chunk)
    done_name = f"{INPUTS_DONE}/{chunk.key}.json"
    done = read_done(out.root, digest, done_name)
    if done is not None and all(out.marker(n).exists() for n in done["shards"]):
        stats = ShardStats.from_dict(done["stats"])
        stats.counters = {**stats.counters, "inputs_skipped": 1}
        return CrawlPart(stats, done["shards"], chunk.name)
    clear_done(out.root, done_name)
    prefix = f"{chunk.key}-"
    remove_shards(out, [p.name for p in out.root.glob(f"part-{prefix}*.parquet")])  # a killed read's partial shards
    started = time.perf_counter()
    writer = ShardWriter(out, prefix, shard_docs, chunk.url)
    binaries = BinarySink(out.root / WARC_DIR / f"input-{chunk.key}.warc.gz", software="liandan ingest")
    counters: dict[str, int] = {"inputs_read": 1}
    stats = ShardStats()
    reasons: dict[str, int] = {}
    try:
        for row in read_chunk(chunk, cfg, binaries, counters):
            stats.docs_in += 1
            if row.kept:
                stats.docs_kept += 1
                stats.chars_out += len(row.doc["text"])
            else:
                stats.docs_rejected += 1
                reasons[row.doc["reason"]] = reasons.get(row.doc["reason"], 0) + 1
            writer.add(row.doc, row.kept)
        writer.flush()
    finally:
        binaries.close()
    stats.rejected_by_reason = reasons
    stats.counters = counters
    stats.seconds = time.perf_counter() - started
    write_done(out.root, digest, {"stats": stats.to_dict(), "shards": writer.names, "input": chunk.url}, done_name)
    return CrawlPart(stats, writer.names, chunk.name)


def crawl_seeds(out: StageDir, cfg: CrawlConfig, shard_docs: int) -> CrawlPart:
    """Crawl the seeds into ``out``'s shards, resuming a killed crawl; a finished crawl of the same settings is skipped."""
    digest = crawl_digest(cfg)
    done = read_done(out.root, digest, CRAWL_DONE)
    if done is not None and all(out.marker(n).exists() for n in done["shards"]):
        stats = ShardStats.from_dict(done["stats"])
        stats.counters = {**stats.counters, "stage_skipped": 1}
        return CrawlPart(stats, done["shards"], "seeds")
    clear_done(out.root, CRAWL_DONE)
    frontier = out.root / FRONTIER_FILE
    owner = out.root / "_frontier_digest"
    if not (owner.exists() and owner.read_text(encoding="utf-8") == digest):  # another config's crawl: start afresh
        for suffix in ("", "-wal", "-shm"):
            Path(f"{frontier}{suffix}").unlink(missing_ok=True)
        remove_shards(out, [p.name for p in out.root.glob("part-*.parquet") if CRAWL_SHARD.match(p.name)])
        for warc in (out.root / WARC_DIR).glob("crawl-*.warc.gz"):
            warc.unlink()
        out.root.mkdir(parents=True, exist_ok=True)
        owner.write_text(digest, encoding="utf-8")
    stats = crawl_to_shards(cfg, out, shard_docs, frontier, out.root / WARC_DIR)
    names = sorted(p.name for p in out.shards() if CRAWL_SHARD.match(p.name))
    write_done(out.root, digest, {"stats": stats.to_dict(), "shards": names}, CRAWL_DONE)
    return CrawlPart(stats, names, "seeds")


def read_progress(out_dir: str | Path) -> dict | None:
    """Return the live figures a crawl in progress last wrote, or None before its first batch."""
    path = Path(out_dir) / PROGRESS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@task(name="crawl_site")
def crawl_site(cfg: CrawlConfig, out_dir: str, shard_docs: int) -> CrawlPart:
    """Return what crawling the configured seeds into ``out_dir`` made."""
    return crawl_seeds(StageDir(Path(out_dir)), cfg, shard_docs)


@task(name="read_input_file")
def read_input_file(chunk: InputChunk, out_dir: str, cfg: CrawlConfig, shard_docs: int) -> CrawlPart:
    """Return what reading one input file (or chunk of one) into ``out_dir`` made."""
    return read_input(StageDir(Path(out_dir)), chunk, cfg, shard_docs)


def combine_parts(out: StageDir, parts: list[CrawlPart]) -> ShardStats:
    """Return the stage's stats, summed over its tasks, after removing every shard no task made (a dropped input's)."""
    total = ShardStats()
    for part in parts:
        total = total.add(part.stats)
    out.prune({name for part in parts for name in part.shards})
    return total


def progress_metrics(progress: dict) -> dict[str, float]:
    """Return a crawl's live figures as MLflow metrics (``live.*``), logged by the flow while the crawl runs."""
    metrics = {f"live.{k}": float(v) for k, v in progress.items() if isinstance(v, (int, float))}
    metrics |= {f"live.rejected.{reason}": float(n) for reason, n in progress.get("rejected_by_reason", {}).items()}
    return metrics


def run_crawl_step(input_path: str, cfg: CrawlConfig, warc_path: Path, max_field_bytes: int) -> tuple[list[Doc], list[Doc], ShardStats, list[Doc]]:
    """Return (kept, rejected, stats, invalid lines) of ``liandan step crawl`` on one file, in memory.

    A JSONL of records that carry URLs but no text is a seed list, crawled into ``warc_path``; any
    other input (a WARC dump, a JSONL of texts, Parquet, a datasets folder) is read as a corpus, its
    PDFs and images copied into ``warc_path``.
    """
    from tasks.crawl.crawler import crawl_sync
    from tasks.crawl.inputs import plan_inputs
    from tasks.records import read_jsonl

    chunks = plan_inputs(cfg.model_copy(update={"inputs": [input_path], "chunk_bytes": 1_000_000_000_000}))
    if chunks[0].format == "jsonl":
        docs, bad = read_jsonl(input_path, max_field_bytes)
        if docs and not any(d["text"] for d in docs):
            result = crawl_sync(cfg.model_copy(update={"seeds": [d["url"] for d in docs if d["url"]]}), warc_path)
            return result.kept, result.rejected, result.stats, bad
    started = time.perf_counter()
    kept: list[Doc] = []
    rejected: list[Doc] = []
    counters: dict[str, int] = {}
    binaries = BinarySink(warc_path, software="liandan ingest")
    try:
        for chunk in chunks:
            for row in read_chunk(chunk, cfg, binaries, counters):
                (kept if row.kept else rejected).append(row.doc)
    finally:
        binaries.close()
    reasons: dict[str, int] = {}
    for row in rejected:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    stats = ShardStats(
        docs_in=len(kept) + len(rejected), docs_kept=len(kept), docs_rejected=len(rejected), rejected_by_reason=reasons,
        chars_out=sum(len(d["text"]) for d in kept), seconds=time.perf_counter() - started, counters=counters,
    )  # fmt: skip
    return kept, rejected, stats, []
