"""What a user sees first in the UIs: the experiment opens on its runs table, parent runs name their
deployment, and no field description loses an `<...>` to the Prefect UI's markdown."""

from __future__ import annotations

import re

from mlflow import MlflowClient
from pydantic import BaseModel

from flows.recipe import Recipe
from flows.runs import parent_run_name
from tasks.tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, ensure_experiment


def test_experiments_are_created_as_model_training_experiments(mlflow_uri, tmp_path):
    client = MlflowClient(tracking_uri=mlflow_uri)
    made = ensure_experiment(client, "训练", tmp_path / "artifacts")
    assert client.get_experiment(made).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND == "custom_model_development"
    old = client.create_experiment("made-before")  # an experiment without a type gets the model-training one
    assert ensure_experiment(client, "made-before", None) == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    theirs = client.create_experiment("typed-by-the-user", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    ensure_experiment(client, "typed-by-the-user", None)
    assert client.get_experiment(theirs).tags[EXPERIMENT_KIND_TAG] == "genai_development"  # the user's choice stays


def test_parent_run_names_carry_the_deployment():
    assert parent_run_name("data", "data-2026-11-29", "nightly") == "data-2026-11-29-nightly"
    assert parent_run_name("data", "data-2026-11-29") == "data-2026-11-29"  # run by hand, not by a deployment
    assert parent_run_name("train", "demo", "weekly") == "train-demo-weekly"


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    seen[model.__name__] = model
    for field in model.model_fields.values():
        for t in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(t, type) and issubclass(t, BaseModel) and t.__name__ not in seen:
                _models(t, seen)
    return seen


def test_field_descriptions_show_angle_brackets_only_inside_backticks():
    bare = [
        f"{model.__name__}.{name}: {field.description}"
        for model in _models(Recipe, {}).values()
        for name, field in model.model_fields.items()
        if "<" in re.sub(r"`[^`]*`", "", field.description or "")
    ]
    assert bare == []  # the Prefect UI renders descriptions as markdown and drops a bare <PHONE> as an HTML tag
