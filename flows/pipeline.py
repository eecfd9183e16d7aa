"""The whole chain as one flow: the corpus, the base model on its mixture, then SFT → distil → DPO → GRPO, each model evaluated.

Every flow's parameters are its stages' sections of the stage table (flows/stages.py); a flow hands a
subflow that subflow's sections with ``Recipe.sections_of``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow
from pydantic import BaseModel

from flows.align import align_model
from flows.data import build_corpus
from flows.recipe import Recipe, RunConfig, flow_parameters
from flows.runners import task_runner_for
from flows.runs import TRACKING_HOOKS, flow_run_namer, open_run
from flows.stages import ALIGN_STAGES, FLOWS, RUN_CHOICES, AlignStage, DataStage
from flows.train import train_base_model

FlowName = Literal[RUN_CHOICES]  # type: ignore[valid-type]  # `liandan run --flow`
DATA_STAGE: DataStage = "mixture"  # the training flow reads the data flow's last stage


@flow(name="liandan_pipeline", flow_run_name=flow_run_namer("pipeline"), **TRACKING_HOOKS)
@flow_parameters(*FLOWS)
def run_pipeline(run: RunConfig = RunConfig(), *, align_stages: list[AlignStage] = list(ALIGN_STAGES), **sections: BaseModel) -> str:
    """Run the whole chain in order into one run folder (data, the base model on its mixture, alignment); return the folder."""
    run = run.model_copy(update={"name": run.resolved_name("pipeline")})  # every flow of the chain shares one run folder
    recipe = Recipe(run=run, **sections)
    open_run(run, "pipeline")
    build_corpus.with_options(task_runner=task_runner_for(run))(run=run, **recipe.sections_of("data"))
    train_base_model.with_options(task_runner=task_runner_for(run))(run=run, data_stage=DATA_STAGE, **recipe.sections_of("train"))
    if align_stages:
        align_model(run=run, stages=align_stages, **recipe.sections_of("align"))
    return str(Path(run.runs_dir).resolve() / run.name)


@flow(name="train_model", flow_run_name=flow_run_namer("train"), **TRACKING_HOOKS)
@flow_parameters("train", "align")
def train_model(
    run: RunConfig = RunConfig(),
    *,
    align_stages: list[AlignStage] = list(ALIGN_STAGES),
    data_stage: DataStage = DATA_STAGE,
    allow_undeidentified: bool = False,
    **sections: BaseModel,
) -> dict[str, str]:
    """The model half on a finished data run's folder: the base model on ``data_stage``, then alignment; return the model folders."""
    run = run.model_copy(update={"name": run.resolved_name("train")})
    recipe = Recipe(run=run, **sections)
    open_run(run, "train_model")
    base = train_base_model.with_options(task_runner=task_runner_for(run))(
        run=run, data_stage=data_stage, allow_undeidentified=allow_undeidentified, **recipe.sections_of("train")
    )
    aligned = align_model(run=run, stages=align_stages, **recipe.sections_of("align")) if align_stages else {}
    return {"base": base, **aligned}


def run_recipe(recipe: Recipe, which: FlowName = "all") -> str:
    """Run a validated recipe's whole chain, or one of its flows (on the recipe's run folder); return the run folder."""
    if which == "all":
        return run_pipeline(run=recipe.run, **recipe.sections_of(*FLOWS))
    run = recipe.run.model_copy(update={"name": recipe.run.resolved_name("pipeline")})  # the folder `liandan run` (all) would use
    if which == "data":
        build_corpus.with_options(task_runner=task_runner_for(run))(run=run, **recipe.sections_of("data"))
    elif which == "train":
        train_base_model.with_options(task_runner=task_runner_for(run))(run=run, data_stage=DATA_STAGE, **recipe.sections_of("train"))
    else:
        align_model(run=run, **recipe.sections_of("align"))
    return str(Path(run.runs_dir).resolve() / run.name)
