"""What train_base_model trains on: the mixture by default, never text from before de-identification unless told."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.recipe import RunConfig
from flows.stages import DATA_STAGES, deidentified

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_stages_before_deid_are_not_deidentified():
    assert [s for s in DATA_STAGES if not deidentified(s)] == ["crawl", "extract", "ocr", "clean", "dedup"]
    assert [s for s in DATA_STAGES if deidentified(s)] == ["deid", "quality", "mixture"]


@pytest.mark.parametrize("stage", ["extract", "dedup"])
def test_a_stage_before_deid_is_refused_before_anything_runs(tmp_path, mlflow_uri, stage):
    from flows.train import train_base_model

    run = RunConfig(name="raw", runs_dir=str(tmp_path / "runs"), experiment="test-train", tracking_uri=mlflow_uri)
    with pytest.raises(ValueError, match=f"data_stage '{stage}' comes before de-identification .*allow_undeidentified: true"):
        train_base_model(run=run, data_stage=stage)
    assert not (tmp_path / "runs" / "raw").exists()  # refused before the run folder or an MLflow run was opened


def test_allow_undeidentified_lets_it_through_and_the_default_is_the_mixture(tmp_path, mlflow_uri):
    from flows.train import train_base_model

    run = RunConfig(name="empty", runs_dir=str(tmp_path / "runs"), experiment="test-train", tracking_uri=mlflow_uri)
    mixture = Path(run.runs_dir).resolve() / "empty" / "mixture"
    with pytest.raises(ValueError, match=f"no finished shards in {mixture}"):
        train_base_model(run=run)  # past the guard, looking for the mixture stage's shards
    with pytest.raises(ValueError, match="no finished shards in .*/empty/dedup"):
        train_base_model(run=run, data_stage="dedup", allow_undeidentified=True)
