"""The whole chain as one flow: the corpus, the base model on its mixture, then SFT → distil → DPO → GRPO, each model evaluated."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Literal

from prefect import flow

from flows.align import ALIGN_STAGES, AlignStage, align_model
from flows.data import build_corpus
from flows.recipe import Recipe, RunConfig
from flows.runners import task_runner_for
from flows.runs import TRACKING_HOOKS, flow_run_namer, open_run
from flows.stages import DataStage
from flows.train import train_base_model
from tasks.clean.config import CleanConfig
from tasks.crawl.config import CrawlConfig
from tasks.dedup.config import DedupConfig
from tasks.evaluate.config import EvalConfig
from tasks.deid.config import DeidConfig
from tasks.extract.config import ExtractConfig
from tasks.mixture.config import MixtureConfig
from tasks.ocr.config import OcrConfig
from tasks.quality.config import QualityConfig
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.train.config import ModelConfig, PretrainConfig
from tasks.train.distill import DistillConfig
from tasks.train.dpo import DPOConfig
from tasks.train.grpo import GRPOConfig
from tasks.train.sft import SFTConfig

FlowName = Literal["all", "data", "train", "align"]
DATA_STAGE: DataStage = "mixture"  # the training flow reads the data flow's last stage


def _args(fn, sections: dict) -> dict:
    """Return the sections that flow ``fn`` takes as parameters."""
    return {k: v for k, v in sections.items() if k in inspect.signature(fn).parameters}


@flow(name="liandan_pipeline", flow_run_name=flow_run_namer("pipeline"), **TRACKING_HOOKS)
def run_pipeline(
    run: RunConfig = RunConfig(),
    crawl: CrawlConfig = CrawlConfig(),
    extract: ExtractConfig = ExtractConfig(),
    ocr: OcrConfig = OcrConfig(),
    clean: CleanConfig = CleanConfig(),
    dedup: DedupConfig = DedupConfig(),
    deid: DeidConfig = DeidConfig(),
    quality: QualityConfig = QualityConfig(),
    mixture: MixtureConfig = MixtureConfig(),
    tokenizer: TokenizerConfig = TokenizerConfig(),
    pack: PackConfig = PackConfig(),
    model: ModelConfig = ModelConfig(),
    pretrain: PretrainConfig = PretrainConfig(),
    sft: SFTConfig = SFTConfig(),
    distill: DistillConfig = DistillConfig(),
    dpo: DPOConfig = DPOConfig(),
    grpo: GRPOConfig = GRPOConfig(),
    evaluate: EvalConfig = EvalConfig(),
    align_stages: list[AlignStage] = list(ALIGN_STAGES),
) -> str:
    """Run the whole chain in order into one run folder (data, the base model on its mixture, alignment); return the folder."""
    run = run.model_copy(update={"name": run.resolved_name("pipeline")})  # every flow of the chain shares one run folder
    open_run(run, "pipeline")
    sections = {k: v for k, v in locals().items() if k not in {"run", "align_stages"}}
    build_corpus.with_options(task_runner=task_runner_for(run))(run=run, **_args(build_corpus, sections))
    train_base_model.with_options(task_runner=task_runner_for(run))(run=run, data_stage=DATA_STAGE, **_args(train_base_model, sections))
    if align_stages:
        align_model(run=run, stages=align_stages, **_args(align_model, sections))
    return str(Path(run.runs_dir).resolve() / run.name)


@flow(name="train_model", flow_run_name=flow_run_namer("train"), **TRACKING_HOOKS)
def train_model(
    run: RunConfig = RunConfig(),
    tokenizer: TokenizerConfig = TokenizerConfig(),
    pack: PackConfig = PackConfig(),
    model: ModelConfig = ModelConfig(),
    pretrain: PretrainConfig = PretrainConfig(),
    sft: SFTConfig = SFTConfig(),
    distill: DistillConfig = DistillConfig(),
    dpo: DPOConfig = DPOConfig(),
    grpo: GRPOConfig = GRPOConfig(),
    evaluate: EvalConfig = EvalConfig(),
    align_stages: list[AlignStage] = list(ALIGN_STAGES),
    data_stage: DataStage = DATA_STAGE,
    allow_undeidentified: bool = False,
) -> dict[str, str]:
    """The model half on a finished data run's folder: the base model on ``data_stage``, then alignment; return the model folders."""
    run = run.model_copy(update={"name": run.resolved_name("train")})
    open_run(run, "train_model")
    sections = {k: v for k, v in locals().items() if k not in {"run", "align_stages", "data_stage", "allow_undeidentified"}}
    base = train_base_model.with_options(task_runner=task_runner_for(run))(
        run=run, data_stage=data_stage, allow_undeidentified=allow_undeidentified, **_args(train_base_model, sections)
    )
    aligned = align_model(run=run, stages=align_stages, **_args(align_model, sections)) if align_stages else {}
    return {"base": base, **aligned}


def run_recipe(recipe: Recipe, which: FlowName = "all") -> str:
    """Run a validated recipe's whole chain, or one of its flows (on the recipe's run folder); return the run folder."""
    sections = {name: getattr(recipe, name) for name in Recipe.model_fields if name != "run"}
    run = recipe.run
    if which == "all":
        return run_pipeline(run=run, **sections)
    run = run.model_copy(update={"name": run.resolved_name("pipeline")})  # the folder `liandan run` (all) would use
    if which == "data":
        build_corpus.with_options(task_runner=task_runner_for(run))(run=run, **_args(build_corpus, sections))
    elif which == "train":
        train_base_model.with_options(task_runner=task_runner_for(run))(run=run, data_stage=DATA_STAGE, **_args(train_base_model, sections))
    else:
        align_model(run=run, **_args(align_model, sections))
    return str(Path(run.runs_dir).resolve() / run.name)
