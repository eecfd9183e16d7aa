"""``liandan eval`` on a saved model folder and on the registry URI of the same model: one table, two MLflow runs,
the same metrics on the same sets; a missing folder or alias is a clean error."""

from __future__ import annotations

from mlflow import MlflowClient

from flows.cli import main

TINY = ["evaluate.arith_problems=3", "evaluate.self_consistency_k=2", "evaluate.direct_max_new_tokens=4", "evaluate.cot_max_new_tokens=6"]


def test_eval_prints_the_metrics_of_a_folder_and_of_its_registered_copy(tmp_path, mlflow_uri, tiny_base, capsys):
    model_dir, _ = tiny_base
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.create_experiment("test-eval-cli", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment).info.run_id
    client.log_artifacts(run, str(model_dir), "model")
    client.create_registered_model("liandan-chat")
    version = client.create_model_version("liandan-chat", f"runs:/{run}/model", run_id=run).version
    client.set_registered_model_alias("liandan-chat", "champion", version)

    settings = [f"run.runs_dir={tmp_path / 'runs'}", f"run.tracking_uri={mlflow_uri}", "run.experiment=test-eval-cli", *TINY]
    args = ["eval", str(model_dir), "models:/liandan-chat@champion", *(x for s in settings for x in ("--set", s))]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    header, rows = out[0].split(), {line.split()[0]: line.split()[1:] for line in out[1:] if line.startswith(("ppl.", "arith.", "icl.", "mc.", "gen."))}
    assert header[0] == "metric" and header[1].endswith("/model") and header[2] == "models:/liandan-chat@champion"
    assert {"ppl.heldout", "arith.self_consistency", "icl.sentiment.k3", "mc.accuracy", "gen.format_rate"} <= set(rows)
    assert rows["arith.problems"] == ["3", "3"]
    assert all(a == b for a, b in rows.values())  # one model, downloaded or not: the same numbers

    runs = client.search_runs([experiment], filter_string="tags.`liandan.flow` = 'eval'")
    assert sorted(r.info.run_name for r in runs) == sorted([f"eval-{model_dir.name}", "eval-liandan-chat@champion"])
    assert all(r.info.status == "FINISHED" for r in runs)
    (a, b) = runs
    assert a.data.tags["eval.digest"] == b.data.tags["eval.digest"] and a.data.metrics["ppl.heldout"] == b.data.metrics["ppl.heldout"]
    assert a.data.params["evaluate.arith_problems"] == "3"


def test_eval_refuses_a_missing_folder_and_an_unknown_alias(tmp_path, mlflow_uri, capsys):
    settings = ["--set", f"run.runs_dir={tmp_path / 'runs'}", "--set", f"run.tracking_uri={mlflow_uri}", "--set", "run.experiment=test-eval-cli"]
    assert main(["eval", str(tmp_path / "nowhere"), *settings]) == 2
    assert "no model folder" in capsys.readouterr().err
    assert main(["eval", "models:/liandan-chat@champion", *settings]) == 2
    assert "liandan-chat" in capsys.readouterr().err
