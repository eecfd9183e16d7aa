"""datatrove's closest equivalent of the clean stage, on the JSONL that benchmarks/clean_throughput.py writes.

datatrove lives in its own virtual environment (its pins are not the project's):

    python3.11 -m venv benchmarks/datatrove/.venv
    benchmarks/datatrove/.venv/bin/pip install -r benchmarks/datatrove/requirements.txt
    PYTHONPATH=. .venv/bin/python benchmarks/clean_throughput.py --mb 20 --jsonl /tmp/clean20.jsonl
    benchmarks/datatrove/.venv/bin/python benchmarks/datatrove/run.py /tmp/clean20.jsonl

The chain, all with datatrove's default thresholds and ``language="zh"`` (its jieba word tokenizer, through
spaCy): GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter, FineWebQualityFilter, then MinHash
de-duplication (signatures, buckets, clusters, filter) over the whole input. One task, one worker: CPU
seconds are one core's.
Prints MB/s per core of the filters and of the MinHash stages, documents removed by filter and reason,
and how many news and forum documents (all of them clean text) each source keeps.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(name: str, pipeline: list, logs: Path, tasks: int = 1) -> float:
    """Run one stage in this process, its tasks one after another, and return its CPU seconds."""
    started = cpu_seconds()
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(logs / name)).run()
    return cpu_seconds() - started


def read_ids(folder: Path) -> set[str]:
    """Return the ids of the documents a JsonlWriter wrote to ``folder`` (none if it wrote no file)."""
    ids = set()
    for path in folder.glob("*.jsonl"):
        with open(path, encoding="utf-8") as f:
            ids.update(json.loads(line)["id"] for line in f)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path)
    args = parser.parse_args()
    docs = [json.loads(line) for line in args.jsonl.read_text(encoding="utf-8").splitlines()]
    megabytes = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    work = Path(tempfile.mkdtemp(prefix="datatrove-bench-"))
    data = work / "input"
    data.mkdir()
    shutil.copy(args.jsonl, data / "corpus.jsonl")
    logs = work / "logs"
    try:
        filters_cpu = run(
            "filters",
            [
                JsonlReader(str(data), glob_pattern="*.jsonl"),
                GopherRepetitionFilter(language="zh"),
                GopherQualityFilter(language="zh"),
                C4QualityFilter(language="zh"),
                FineWebQualityFilter(language="zh"),
                JsonlWriter(str(work / "filtered"), compression=None),
            ],
            logs,
        )
        kept_by_filters = read_ids(work / "filtered")
        # MinHash runs on the whole input: the filters may keep nothing, and its speed is the figure wanted
        minhash_cpu = run("signatures", [JsonlReader(str(data)), MinhashDedupSignature(
            str(work / "sigs"), language="zh")], logs)
        buckets = MinhashConfig().num_buckets  # the bucket stage wants one task per bucket
        minhash_cpu += run("buckets", [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"))], logs, buckets)
        minhash_cpu += run("clusters", [MinhashDedupCluster(str(work / "buckets"), str(work / "clusters"))], logs)
        minhash_cpu += run("dedup", [JsonlReader(str(data)), MinhashDedupFilter(str(work / "clusters")),
                                     JsonlWriter(str(work / "deduped"), compression=None)], logs)
        deduped = read_ids(work / "deduped")

        print(f"datatrove on {len(docs)} documents, {megabytes:.1f} MB")
        print(f"  filters (Gopher rep + Gopher quality + C4 + FineWeb) {megabytes / filters_cpu:6.2f} MB/s per core "
              f"({filters_cpu:.1f} s CPU)")
        print(f"  MinHash dedup (4 stages, all input)                {megabytes / minhash_cpu:6.2f} MB/s per core "
              f"({minhash_cpu:.1f} s CPU)")
        stats = json.loads((logs / "filters" / "stats.json").read_text())
        print("removed by filter and reason:")
        for step in stats:
            dropped = {k: v["total"] if isinstance(v, dict) else v for k, v in step.get("stats", {}).items()
                       if k.startswith("dropped")}
            if dropped:
                print(f"  {step['name']}: {dropped}")
        print(f"kept by the filters: {len(kept_by_filters)}; by MinHash alone (on all input): {len(deduped)}")
        for source in ("news", "forum"):
            ids = {d["id"] for d in docs if d.get("metadata", {}).get("source") == source}
            print(f"  {source}: {len(ids & kept_by_filters)} of {len(ids)} kept by the filters "
                  f"({len(ids & kept_by_filters) / max(len(ids), 1):.1%})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
