"""The mixture stage: weights normalise, budgets are met within 1%, a seed reproduces its sample, an absent source
is reported not crashed, shards balance and resume, pack honours copies, and DoReMi up-weights what is learnable."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # an accidental download fails at once
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from tasks.mixture.config import DoremiConfig, MixtureConfig
from tasks.mixture.plan import PLAN_FILE, DocColumns, plan_mixture, plan_records
from tasks.mixture.report import mixture_chart, table_rows, weights_chart
from tasks.mixture.stage import MixtureFilter, mix_records
from tasks.mixture.weights import source_targets, static_weights, temperature_weights
from tasks.records import make_doc
from tasks.store import StageDir, read_shard, write_shard

GOLD = Path(__file__).resolve().parent.parent / "data" / "sample" / "gold"
TEXT = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"


def corpus(sizes: dict[str, int], seed: int = 0) -> list[dict]:
    """Return ``sizes[source]`` documents per source, each of 50–500 characters."""
    rng = random.Random(seed)
    docs = []
    for source, n in sizes.items():
        for i in range(n):
            docs.append(make_doc(f"https://{source}.example/{i}", (TEXT * 20)[: rng.randint(50, 500)], source=source))
    return docs


def no_text(rows: np.ndarray) -> list[str]:
    raise AssertionError("static and temperature modes never read texts")


def plan(docs: list[dict], cfg: MixtureConfig):
    cols = DocColumns.from_docs(docs)
    copies, summary = plan_records(cols, cfg, no_text)
    return cols, copies, summary


# ---------------------------------------------------------------- weights


def test_weights_normalise_and_temperature_flattens_towards_uniform():
    chars = {"news": 9000, "forum": 900, "shop": 100}
    for weights in (static_weights(chars, {"news": 5, "forum": 0.5}, 2.0), *(temperature_weights(chars, t) for t in (1.0, 2.0, 100.0))):
        assert sum(weights.values()) == pytest.approx(1.0)
        assert set(weights) == set(chars)
    assert temperature_weights(chars, 1.0) == pytest.approx({"news": 0.9, "forum": 0.09, "shop": 0.01})
    flat = temperature_weights(chars, 1e6)
    assert max(flat.values()) - min(flat.values()) < 1e-4
    assert temperature_weights(chars, 2.0)["shop"] > temperature_weights(chars, 1.0)["shop"]


def test_docstring_examples_hold():
    import doctest

    import tasks.mixture.plan
    import tasks.mixture.weights
    import tasks.tokenize.stage

    for module in (tasks.mixture.weights, tasks.mixture.plan, tasks.tokenize.stage):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__


def test_all_zero_weights_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="positive weight"):
        static_weights({"news": 10}, {}, 0.0)


def test_a_capped_source_hands_its_share_to_the_others():
    targets = source_targets({"tiny": 0.5, "big": 0.5}, {"tiny": 100, "big": 10_000}, 2_000, max_epochs=4)
    assert targets == {"tiny": 400.0, "big": 1600.0}


# ---------------------------------------------------------------- budget, seed, absent sources


def test_budget_is_met_within_one_percent_overall_and_per_source():
    docs = corpus({"news": 1500, "forum": 600, "shop": 300})
    cfg = MixtureConfig(mode="static", weights={"news": 0.5, "forum": 0.3, "shop": 0.2}, budget_chars=500_000)
    cols, copies, summary = plan(docs, cfg)
    total = int((cols.chars * copies).sum())
    assert abs(total - 500_000) / 500_000 < 0.01
    rows = {r["source"]: r for r in summary.table}
    for source, weight in cfg.weights.items():
        assert rows[source]["chars_after"] == pytest.approx(weight * 500_000, rel=0.01)
    # news is down-sampled (a subset, once each); shop up-sampled (whole epochs, then a remainder)
    news = np.array([s == "news" for s in cols.sources])
    assert copies[news].max() == 1 and 0 < rows["news"]["docs_after"] < 1500
    assert rows["shop"]["epochs"] > 1 and copies[~news].max() <= cfg.max_epochs
    assert summary.warnings == []
    assert sum(r["share_after"] for r in summary.table) == pytest.approx(1.0, abs=1e-5)


def test_tokens_budget_converts_with_chars_per_token_and_natural_budget_keeps_the_total():
    docs = corpus({"news": 400, "forum": 200})
    cols, copies, _ = plan(docs, MixtureConfig(budget_tokens=40_000, chars_per_token=1.5))
    assert int((cols.chars * copies).sum()) == pytest.approx(60_000, rel=0.01)
    cols, copies, summary = plan(docs, MixtureConfig(mode="temperature", temperature=1.0))
    assert int((cols.chars * copies).sum()) == pytest.approx(int(cols.chars.sum()), rel=0.01)
    assert all(r["epochs"] == pytest.approx(1.0, abs=0.02) for r in summary.table)


def test_same_seed_reproduces_the_sample_and_another_seed_changes_it():
    docs = corpus({"news": 800, "forum": 300})
    cfg = MixtureConfig(mode="static", weights={"news": 1, "forum": 1}, budget_chars=150_000, seed=7)
    _, first, _ = plan(docs, cfg)
    _, again, _ = plan(list(reversed(docs)), cfg)  # the ranking depends on ids, not on the order documents arrive in
    assert dict(zip([d["id"] for d in docs], first.tolist())) == dict(zip([d["id"] for d in reversed(docs)], again.tolist()))
    _, other, _ = plan(docs, cfg.model_copy(update={"seed": 8}))
    assert not np.array_equal(first, other)
    assert abs(int(first.sum()) - int(other.sum())) < 0.05 * first.sum()  # another sample of about the same size


def test_a_source_with_no_documents_is_reported_and_its_weight_redistributed():
    docs = corpus({"news": 50, "forum": 50})
    cfg = MixtureConfig(mode="static", weights={"news": 0.25, "forum": 0.25, "book": 0.5}, budget_chars=20_000)
    cols, copies, summary = plan(docs, cfg)
    rows = {r["source"]: r for r in summary.table}
    assert rows["book"]["docs_before"] == 0 and rows["book"]["chars_after"] == 0 and rows["book"]["weight"] == 0
    assert "no documents" in rows["book"]["warning"] and any(w.startswith("book:") for w in summary.warnings)
    assert summary.weights == {"forum": 0.5, "news": 0.5}
    assert int((cols.chars * copies).sum()) == pytest.approx(20_000, rel=0.01)


def test_epochs_are_capped_and_an_unreachable_budget_is_warned_not_crashed():
    docs = corpus({"news": 40, "forum": 10})
    natural = sum(len(d["text"]) for d in docs)
    cols, copies, summary = plan(docs, MixtureConfig(mode="static", weights={"news": 1, "forum": 1}, budget_chars=natural * 10, max_epochs=3))
    assert copies.max() == 3 and copies.min() == 3
    assert any("not reached" in w for w in summary.warnings)
    assert all("capped at max_epochs=3" in r["warning"] for r in summary.table)


def test_config_refuses_two_budgets_negative_weights_and_unknown_keys():
    with pytest.raises(ValidationError, match="not both"):
        MixtureConfig(budget_chars=10, budget_tokens=10)
    with pytest.raises(ValidationError):
        MixtureConfig(weights={"news": -1.0})
    with pytest.raises(ValidationError):
        MixtureConfig(temprature=3.0)
    assert MixtureConfig().doremi.model.hidden_size == 64


# ---------------------------------------------------------------- the stage over shards and in memory


def test_plan_and_mix_shards_balance_resume_and_replan(tmp_path):
    from tasks.mixture.task import mix_shard, plan_mixture_task

    docs = corpus({"news": 120, "forum": 40, "shop": 10})
    random.Random(1).shuffle(docs)
    upstream = StageDir(tmp_path / "deid")
    for i in range(3):
        write_shard(upstream.shard(f"part-0000{i}.parquet"), docs[i::3])
    shards = [str(p) for p in sorted(upstream.root.glob("part-*.parquet"))]
    out = tmp_path / "mixture"
    cfg = MixtureConfig(temperature=3.0, budget_chars=40_000)

    summary = plan_mixture_task.fn(shards, str(out), cfg)
    assert summary.skipped is False and (out / PLAN_FILE).exists()
    stats = [mix_shard.fn(p, str(out), cfg) for p in shards]
    assert sum(s.docs_in for s in stats) == len(docs)
    assert all(s.docs_kept + s.docs_rejected == s.docs_in for s in stats)
    assert sum(s.docs_rejected for s in stats) == sum(s.rejected_by_reason.get("mixture_downsampled", 0) for s in stats) > 0
    kept = [row for p in StageDir(out).shards() for row in read_shard(p)]
    rejected = [row for p in StageDir(out).rejected_shards() for row in read_shard(p)]
    assert all(r["mix_copies"] >= 1 for r in kept)
    assert {r["detail"] for r in rejected} <= {"news", "forum", "shop"} and all(r["reason"] == "mixture_downsampled" for r in rejected)
    mixed = sum(len(r["text"]) * r["mix_copies"] for r in kept)
    assert mixed == sum(s.counters["chars_mixed"] for s in stats) == pytest.approx(40_000, rel=0.02)
    rows = {r["source"]: r for r in summary.table}
    assert rows["shop"]["epochs"] > 1 > rows["news"]["epochs"]  # T=3 lifts the small source, trims the big one
    assert sum(s.counters.get("copies.shop", 0) for s in stats) == rows["shop"]["copies"]

    again = plan_mixture_task.fn(shards, str(out), cfg)
    assert again.skipped is True and again.table == summary.table
    assert all(mix_shard.fn(p, str(out), cfg).counters["shards_skipped"] == 1 for p in shards)
    replanned = plan_mixture_task.fn(shards, str(out), cfg.model_copy(update={"seed": 1}))
    assert replanned.skipped is False
    assert not any("shards_skipped" in mix_shard.fn(p, str(out), cfg.model_copy(update={"seed": 1})).counters for p in shards)
    plan_rows = pq.read_table(out / PLAN_FILE)
    assert plan_rows.num_rows == len(docs) and set(plan_rows.column_names) >= {"id", "source", "copies"}


def test_a_stale_plan_is_refused():
    docs = corpus({"news": 3})
    with pytest.raises(ValueError, match="plan again"):
        MixtureFilter([d["id"] for d in docs[:2]], [1, 1])(docs)


def test_in_memory_mix_records_for_liandan_step():
    docs = corpus({"news": 60, "forum": 20})
    result = mix_records(docs, MixtureConfig(budget_chars=10_000))
    assert result.stats.balanced() and result.stats.docs_in == 80
    assert sum(len(d["text"]) * d["mix_copies"] for d in result.kept) == pytest.approx(10_000, rel=0.03)
    assert {r["reason"] for r in result.rejected} == {"mixture_downsampled"}


def test_charts_draw_one_pair_of_bars_per_source_and_one_line_per_source():
    from matplotlib.figure import Figure

    _, _, summary = plan(corpus({"news": 30, "forum": 10, "shop": 5}), MixtureConfig(mode="static", weights={"news": 1, "book": 1}))
    fig = mixture_chart(summary.table)
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 2 * len(summary.table) == 8
    assert list(table_rows(summary.table)[0])[:2] == ["source", "weight"]
    history = [{"news": 0.5, "forum": 0.5}, {"news": 0.7, "forum": 0.3}]
    lines = weights_chart(history, {"news": 0.6, "forum": 0.4}).axes[0].lines
    assert len(lines) == 4  # two sources, each with its average


# ---------------------------------------------------------------- pack honours mix_copies


def test_pack_packs_a_document_mix_copies_times(tiny_base, tmp_path):
    from tasks.tokenize.config import PackConfig
    from tasks.tokenize.pack import read_packed
    from tasks.tokenize.stage import encode_pack_shard, sequences_path

    _, tokenizer_dir = tiny_base
    docs = [make_doc(f"u{i}", (TEXT * 3)[i:], source="news") for i in range(4)]
    cfg = PackConfig(seq_len=32, eval_fraction=0.0)
    once, thrice = StageDir(tmp_path / "once"), StageDir(tmp_path / "thrice")
    write_shard(tmp_path / "in1" / "part-00000.parquet", docs)
    write_shard(tmp_path / "in3" / "part-00000.parquet", [{**d, "mix_copies": 3} for d in docs])
    a = encode_pack_shard(tmp_path / "in1" / "part-00000.parquet", once, tokenizer_dir, cfg)
    b = encode_pack_shard(tmp_path / "in3" / "part-00000.parquet", thrice, tokenizer_dir, cfg)
    assert a.counters["tokens"] == b.counters["tokens"]  # each document is encoded once
    assert b.counters["tokens_packed"] == 3 * a.counters["tokens_packed"]
    assert b.counters["tokens_packed"] == b.counters["tokens"] + b.counters["tokens_repeated"]
    assert b.docs_kept == a.docs_kept == 4  # rows are not duplicated: the ledger still balances
    def tokens(out: StageDir) -> list[int]:
        return [t for row in read_packed([sequences_path(out, "part-00000.parquet")]).to_pylist() for t in row["input_ids"][: row["n_tokens"]]]

    assert tokens(thrice) == tokens(once) * 3  # whole passes over the shard, in order


# ---------------------------------------------------------------- DoReMi


def test_doremi_up_weights_the_learnable_source_over_noise():
    """Same tokens, different structure: digits counting up (learnable, the reference learns it) vs random digits
    (irreducible: once the proxy knows the digit frequencies, which either source teaches, its excess is ~0)."""
    from tasks.mixture.doremi import doremi_weights

    rng = random.Random(0)
    texts = {
        "noise": ["".join(rng.choice("0123456789") for _ in range(300)) for _ in range(20)],
        "pattern": ["0123456789" * 30 for _ in range(20)],
    }
    cfg = DoremiConfig(ref_steps=40, doremi_steps=30, seq_len=32, batch_size=8, vocab_size=300, cpu_threads=1)
    result = doremi_weights(texts, cfg)
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert result.weights["pattern"] > 0.7 > 0.3 > result.weights["noise"]
    assert len(result.history) == 30 and all(sum(step.values()) == pytest.approx(1.0, abs=1e-5) for step in result.history)
    assert result.reference_loss["pattern"] < result.reference_loss["noise"]  # the reference learnt the pattern, not the noise
    assert min(min(step.values()) for step in result.history) >= cfg.smoothing / 2  # smoothing keeps every source alive


def test_doremi_mode_plans_from_shards(tmp_path):
    rng = random.Random(0)
    docs = [make_doc(f"n{i}", "".join(rng.choice("0123456789") for _ in range(300)), source="noise") for i in range(20)]
    docs += [make_doc(f"p{i}", "0123456789" * 30, source="pattern") for i in range(20)]
    shard = tmp_path / "in" / "part-00000.parquet"
    write_shard(shard, docs)
    doremi = DoremiConfig(ref_steps=40, doremi_steps=30, seq_len=32, batch_size=8, vocab_size=300, sample_chars=3_000)
    summary = plan_mixture([shard], tmp_path / "mixture", MixtureConfig(mode="doremi", doremi=doremi))
    assert sum(summary.weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert summary.weights["pattern"] > summary.weights["noise"]
    assert summary.doremi is not None and len(summary.doremi["history"]) == 30
    assert summary.doremi["tokens"]["pattern"] <= 3_300  # sample_chars: 10 of the 20 documents (digits are 1 token each)
    assert plan_mixture([shard], tmp_path / "mixture", MixtureConfig(mode="doremi", doremi=doremi)).skipped  # proxies not retrained
