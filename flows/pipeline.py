"""The whole chain as one flow: data today; tokenize, train and align append as they are built."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from pathlib import Path

from flows.data import build_corpus
from flows.train import train_base_model
from flows.recipe import Recipe, RunConfig
from flows.runners import task_runner_for
from flows.runs import TRACKING_HOOKS, open_run
from tasks.crawl.config import CrawlConfig
from tasks.clean.config import CleanConfig
from tasks.dedup.config import DedupConfig
from tasks.deid.config import DeidConfig
from tasks.ocr.config import OcrConfig
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.train.config import ModelConfig, PretrainConfig
from tasks.extract.config import ExtractConfig


def _flow_run_name() -> str:
    run = RunConfig.model_validate(flow_run.parameters.get("run") or {})
    return f"pipeline-{run.resolved_name('pipeline')}"


@flow(name="liandan_pipeline", flow_run_name=_flow_run_name, **TRACKING_HOOKS)
def run_pipeline(
    run: RunConfig = RunConfig(),
    crawl: CrawlConfig = CrawlConfig(),
    extract: ExtractConfig = ExtractConfig(),
    ocr: OcrConfig = OcrConfig(),
    clean: CleanConfig = CleanConfig(),
    dedup: DedupConfig = DedupConfig(),
    deid: DeidConfig = DeidConfig(),
    tokenizer: TokenizerConfig = TokenizerConfig(),
    pack: PackConfig = PackConfig(),
    model: ModelConfig = ModelConfig(),
    pretrain: PretrainConfig = PretrainConfig(),
) -> str:
    """Run every built stage of the chain in order (data, then the base model on its de-identified text); return the run folder."""
    run = run.model_copy(update={"name": run.resolved_name("pipeline")})  # every flow of the chain shares one run folder
    open_run(run, "pipeline")
    build_corpus.with_options(task_runner=task_runner_for(run))(run=run, crawl=crawl, extract=extract, ocr=ocr, clean=clean, dedup=dedup, deid=deid)
    train_base_model.with_options(task_runner=task_runner_for(run))(
        run=run, tokenizer=tokenizer, pack=pack, model=model, pretrain=pretrain, data_stage="deid"
    )
    return str(Path(run.runs_dir).resolve() / run.name)


def run_recipe(recipe: Recipe) -> str:
    """Run the whole chain of a validated recipe; return the data run's folder."""
    return run_pipeline(
        run=recipe.run, crawl=recipe.crawl, extract=recipe.extract, ocr=recipe.ocr, clean=recipe.clean, dedup=recipe.dedup, deid=recipe.deid,
        tokenizer=recipe.tokenizer, pack=recipe.pack, model=recipe.model, pretrain=recipe.pretrain,
    )
