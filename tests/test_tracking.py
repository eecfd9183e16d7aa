from __future__ import annotations

import pytest
from mlflow import MlflowClient
from pydantic import BaseModel, Field

from tasks.tracking import FLOW_RUN_ID_TAG, StageInput, Tracker, close_flow_run, connect, flatten_params, resolve_tracking_uri, stats_metrics


class _Cfg(BaseModel):
    min_chars: int = Field(50, ge=0)
    sources: dict[str, str] = {"/news/": "news"}
    seeds: list[str] = ["http://127.0.0.1/"]


def test_resolve_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri("", tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri("", tmp_path) == "http://127.0.0.1:5999"
    assert resolve_tracking_uri("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


def test_flatten_params_and_metrics():
    assert flatten_params(_Cfg()) == {"min_chars": "50", "sources": '{"/news/": "news"}', "seeds": '["http://127.0.0.1/"]'}
    m = stats_metrics({"docs_in": 4, "docs_kept": 3, "docs_rejected": 1, "seconds": 2.0, "rejected_by_reason": {"too_short": 1}, "seconds_by_step": {"len": 0.5}, "counters": {"bytes": 9}})
    assert m == {"docs_in": 4.0, "docs_kept": 3.0, "docs_rejected": 1.0, "seconds": 2.0, "rejected.too_short": 1.0, "seconds.len": 0.5, "counters.bytes": 9.0, "docs_per_s": 2.0}


def test_parent_and_child_runs_by_id(mlflow_uri, tmp_path):
    tracker = Tracker.start_flow(mlflow_uri, "exp", "data-demo", tmp_path / "art", {FLOW_RUN_ID_TAG: "fr-1"}, "http://127.0.0.1:5000")
    child = tracker.start_stage("extract", _Cfg())
    tracker.log_inputs(child, [StageInput("demo/crawl", str(tmp_path), "abc123", 7)])
    tracker.log_stage_stats(child, {"docs_in": 7, "docs_kept": 5, "docs_rejected": 2, "rejected_by_reason": {"too_short": 2}})
    tracker.end(child)

    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.data.params["min_chars"] == "50"
    assert run.data.metrics["rejected.too_short"] == 2.0
    assert run.info.status == "FINISHED"
    (ds,) = run.inputs.dataset_inputs
    assert (ds.dataset.name, ds.dataset.digest) == ("demo/crawl", "abc123")
    assert [a.path for a in client.list_artifacts(child)] == ["rejections.png", "stats.json"]
    assert tracker.run_url(child).endswith(f"/#/experiments/{tracker.experiment_id}/runs/{child}")

    assert client.get_run(tracker.parent_run_id).info.status == "RUNNING"
    assert close_flow_run(mlflow_uri, "exp", "fr-1", "FAILED") == tracker.parent_run_id
    assert client.get_run(tracker.parent_run_id).info.status == "FAILED"
    assert close_flow_run(mlflow_uri, "exp", "no-such-run", "FINISHED") is None


def test_unreachable_tracking_server_fails_fast():
    with pytest.raises(RuntimeError, match="not reachable"):
        connect("http://127.0.0.1:9")  # discard port: nothing listens
