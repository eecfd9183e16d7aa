"""By-hand benchmark: does the DoReMi mixture lower held-out loss against uniform weights at demo scale?

    PYTHONPATH=. python benchmarks/mixture_doremi.py [--ref-steps 200] [--doremi-steps 200] [--eta 1.0] [--steps 10 20 40 80] [--seeds 3]

Corpus: the sample site's gold texts (``data/sample/gold/<source>/*.txt``; the source is the sub-folder:
docs, forum, news, shop). Per source, a quarter of the documents (at least one, by a hash of the path) is
held out; everything else — the tokenizer (byte-level BPE, 1,024 tokens), DoReMi's reference and proxy, the
final models — sees only the training documents.

1. DoReMi weights from the training texts (``tasks.mixture.doremi.doremi_weights``, the stage's defaults:
   uniform reference, η = 1, ε = 1e-3, the ~160K-parameter proxy).
2. For each seed, the same tiny model (same initialisation) trains for the largest of ``--steps`` steps on
   windows whose sources are drawn by each mixture — uniform, natural (each source's share of the characters)
   and DoReMi — and is evaluated at every ``--steps`` on each source's held-out text.
3. The table: held-out loss per source, its average over sources (the objective DoReMi targets: no source left
   behind) and the worst source, mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

import torch

from tasks.mixture.config import DoremiConfig
from tasks.mixture.doremi import doremi_weights, encode_streams, heldout_loss, torch_threads, train_on_mixture
from tasks.mixture.weights import normalise, uniform_weights
from tasks.tokenize.config import TokenizerConfig
from tasks.tokenize.train import train_tokenizer
from tasks.train.model import build_model, count_parameters

GOLD = Path(__file__).resolve().parent.parent / "data" / "sample" / "gold"


def split_corpus(root: Path, heldout: float) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Return (train, held-out) texts per source; per source the documents first by a hash of their path are held out."""
    by_source: dict[str, list[Path]] = {}
    for path in sorted(root.glob("*/*.txt")):
        by_source.setdefault(path.parent.name, []).append(path)
    train, test = {}, {}
    for source, paths in by_source.items():
        paths.sort(key=lambda p: hashlib.sha256(str(p.relative_to(root)).encode()).hexdigest())
        n = max(1, round(heldout * len(paths)))
        test[source] = [p.read_text(encoding="utf-8") for p in paths[:n]]
        train[source] = [p.read_text(encoding="utf-8") for p in paths[n:]]
    return train, test


def spread(xs: list[float]) -> str:
    """Return "mean ± std" of the values (just the value when there is one)."""
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref-steps", type=int, default=DoremiConfig().ref_steps)
    parser.add_argument("--doremi-steps", type=int, default=DoremiConfig().doremi_steps)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40, 80], help="evaluate the final models after these many steps")
    parser.add_argument("--eta", type=float, default=DoremiConfig().eta, help="DoReMi's weight step size")
    parser.add_argument("--seeds", type=int, default=3, help="final-model seeds (initialisation and windows)")
    parser.add_argument("--heldout", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    train, test = split_corpus(GOLD, args.heldout)
    cfg = DoremiConfig(ref_steps=args.ref_steps, doremi_steps=args.doremi_steps, eta=args.eta, cpu_threads=args.threads)
    tokenizer = train_tokenizer((t for texts in train.values() for t in texts), TokenizerConfig(vocab_size=cfg.vocab_size))
    train_streams, test_streams = encode_streams(train, tokenizer), encode_streams(test, tokenizer)
    sources = sorted(train_streams)
    print(f"corpus: {', '.join(f'{s} {len(train[s])}+{len(test[s])} docs / {len(train_streams[s])}+{len(test_streams[s])} tokens' for s in sources)} (train+held-out)")

    started = time.perf_counter()
    result = doremi_weights(train, cfg, tokenizer=tokenizer)
    print(f"DoReMi: {args.ref_steps} reference + {args.doremi_steps} proxy steps in {time.perf_counter() - started:.1f} s")
    print(f"  reference loss (train windows): {result.reference_loss}")
    print(f"  proxy loss (train windows):     {result.proxy_loss}")
    every = max(1, len(result.history) // 10)
    print("  weights every " + str(every) + " proxy steps: " + "; ".join(" ".join(f"{result.history[i][s]:.2f}" for s in sources) for i in range(every - 1, len(result.history), every)))
    chars = {s: sum(len(t) for t in train[s]) for s in sources}
    mixtures = {"uniform": uniform_weights(sources), "natural": normalise(chars), "doremi": result.weights}
    print("\n| mixture | " + " | ".join(sources) + " |\n|---|" + "---|" * len(sources))
    for name, weights in mixtures.items():
        print(f"| {name} | " + " | ".join(f"{weights[s]:.3f}" for s in sources) + " |")

    losses: dict[tuple[str, int], list[dict[str, float]]] = {}
    with torch_threads(args.threads):
        for seed in range(args.seeds):
            for name, weights in mixtures.items():
                model = build_model(cfg.model, tokenizer, seed=100 + seed)
                gen = torch.Generator().manual_seed(100 + seed)
                done = 0
                for steps in sorted(args.steps):
                    train_on_mixture(model, train_streams, weights, steps - done, cfg, gen)
                    done = steps
                    losses.setdefault((name, steps), []).append(heldout_loss(model, test_streams, cfg.seq_len))
    print(f"\nmodel: {count_parameters(model):,} parameters, batch {cfg.batch_size} × {cfg.seq_len} tokens, lr {cfg.learning_rate}, {args.seeds} seeds")
    print("\nheld-out loss (nats/token, mean ± std over seeds):\n")
    print("| steps | mixture | " + " | ".join(sources) + " | average | worst |\n|---|---|" + "---|" * (len(sources) + 2))
    for steps in sorted(args.steps):
        for name in mixtures:
            runs = losses[(name, steps)]
            cols = [[r[s] for r in runs] for s in sources] + [[statistics.mean(r.values()) for r in runs], [max(r.values()) for r in runs]]
            print(f"| {steps} | {name} | " + " | ".join(spread(c) for c in cols) + " |")


if __name__ == "__main__":
    main()
