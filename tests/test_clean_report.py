"""What the clean stage logs for a person re-tuning it: a histogram per stored signal with its threshold drawn,
and per reject reason sample lines that went through the deid masker (no raw phone number or name in MLflow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from prefect import flow

from flows.data import clean_stage
from flows.recipe import RunConfig
from flows.runs import open_run
from tasks.clean import CleanConfig, build_steps
from tasks.clean.report import read_signals, rejected_samples, signal_histogram, signal_thresholds
from tasks.deid.config import DeidConfig
from tasks.records import make_doc
from tasks.steps import run_steps
from tasks.store import StageDir

NEWS = (
    "本市今年将新开通公交线路二十条，优化调整线路四十条。交通部门表示，新开线路主要覆盖新建居住区和产业园区，"
    "首末班时间将根据客流情况动态调整。市民可通过官方应用查询实时到站信息，也可以在站台的电子屏上查看。"
)
REVIEW = "酒店位置很好，离地铁站步行五分钟，房间干净整洁，床品也很舒服。早餐种类丰富，服务员态度热情，下次出差还会选择这里。"
PHONE, NAME = "13812345678", "张伟"
DOCS = [
    ("news", NEWS),
    ("review", REVIEW),
    ("short", f"二手自行车出售，联系人{NAME}，电话{PHONE}"),  # too_short, with a phone number and a name
    ("twice", REVIEW + "\n" + REVIEW),  # repetitive_lines
    ("blank", "   "),  # empty: rejected before scoring, so it has no signals
]


def _write_upstream(root: Path) -> StageDir:
    stage = StageDir(root)
    stage.root.mkdir(parents=True)
    stage.commit_shard("part-00000.parquet", [make_doc(i, t) for i, t in DOCS], [], {"stats": {}})
    return stage


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory) -> StageDir:
    """The clean stage's output for DOCS, made by the stage's own steps and committed as the stage would."""
    result = run_steps("clean", build_steps(CleanConfig()), [make_doc(i, t) for i, t in DOCS])
    out = StageDir(tmp_path_factory.mktemp("clean"))
    out.commit_shard("part-00000.parquet", result.kept, result.rejected, {"stats": result.stats.to_dict()})
    return out


def test_signals_are_read_back_with_their_reasons(cleaned):
    columns, reasons = read_signals([*cleaned.shards(), *cleaned.rejected_shards()])
    assert sorted(reasons.tolist()) == ["", "", "repetitive_lines", "too_short"]  # the blank text has no signals
    assert "stopword_ratio" in columns and "spam_hits" in columns
    assert not any(name.startswith(("removed_chars.", "changed_chars.")) for name in columns)
    assert all(len(v) == 4 for v in columns.values())


def test_histogram_draws_the_configured_threshold(cleaned):
    cfg = CleanConfig(min_stopword_ratio=0.11, filters=["length", "stopwords"])
    columns, reasons = read_signals([*cleaned.shards(), *cleaned.rejected_shards()])
    fig = signal_histogram("stopword_ratio", columns["stopword_ratio"], reasons, cfg)
    (ax,) = fig.axes
    drawn = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert drawn == [0.11, 0.7]
    labels = ax.get_legend_handles_labels()[1]
    assert "min_stopword_ratio = 0.11" in labels and any(label.startswith("kept (2)") for label in labels)
    # a filter that is not in cfg.filters still shows its cut-off, marked off
    fig = signal_histogram("char_entropy", columns["char_entropy"], reasons, cfg)
    assert "min_entropy = 5 (filter off)" in fig.axes[0].get_legend_handles_labels()[1]
    # the stacked groups count every scored document once
    assert sum(np.histogram(columns["n_chars"], bins=5)[0]) == 4
    assert signal_thresholds(cfg)["top_3gram_ratio"] == [("max_top_ngram_ratios[1]", 0.18)]


def test_rejected_samples_are_masked(cleaned):
    samples = rejected_samples(cleaned.rejected_shards())
    assert sorted(samples) == ["empty", "repetitive_lines", "too_short"]
    (short,) = samples["too_short"]
    assert PHONE not in short["line"] and NAME not in short["line"]
    assert "<PHONE>" in short["line"] and "<PERSON_1>" in short["line"]
    assert short["detail"].startswith("n_chars ")


@flow
def _clean_only(run: RunConfig, upstream: str) -> str:
    ctx = open_run(run, "data")
    out = clean_stage(ctx, CleanConfig(), StageDir(Path(upstream)), DeidConfig())
    return out.read_stats()["mlflow_run_id"]


@pytest.mark.usefixtures("prefect_harness")
def test_clean_stage_logs_histograms_and_masked_samples_to_mlflow(tmp_path, mlflow_uri):
    upstream = _write_upstream(tmp_path / "runs" / "given" / "ocr")
    run = RunConfig(name="report", runs_dir=str(tmp_path / "runs"), experiment="test-clean-report", tracking_uri=mlflow_uri)
    child = _clean_only(run, str(upstream.root))

    client = MlflowClient(tracking_uri=mlflow_uri)
    pngs = {a.path for a in client.list_artifacts(child, "signals")}
    expected = {"stopword_ratio", "spam_hits", "char_entropy", "han_ratio", "dup_line_char_ratio", "top_2gram_ratio", "spam_gambling"}
    assert {f"signals/{name}.png" for name in expected} <= pngs
    assert len(pngs) == 29  # every stored signal but the per-rule edit counts, plus spam_hits
    local = Path(client.download_artifacts(child, "clean_rejected_samples.json", str(tmp_path / "dl")))
    raw = local.read_text(encoding="utf-8")
    assert PHONE not in raw and NAME not in raw
    samples = json.loads(raw)
    assert set(samples) == {"empty", "repetitive_lines", "too_short"} and "<PHONE>" in samples["too_short"][0]["line"]
