"""The stage table: every stage of the chain, in chain order, and the one list everything else is built from.

One entry per recipe section. The recipe (``flows/recipe.py``), the flows' typed Prefect parameters (and so
the UI's forms), ``liandan step``'s and ``liandan run --flow``'s choices, ``liandan audit``'s order and the
deployments' default parameters all read this table. Adding a stage is one entry here plus its task (and
the call that runs it in its flow's body).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from tasks.clean.config import CleanConfig
from tasks.clean.stage import build_steps as clean_steps
from tasks.crawl.config import CrawlConfig
from tasks.dedup.config import DedupConfig
from tasks.dedup.stage import build_steps as dedup_steps
from tasks.deid.config import DeidConfig
from tasks.deid.stage import build_steps as deid_steps
from tasks.evaluate.config import EvalConfig
from tasks.extract.config import ExtractConfig
from tasks.extract.stage import build_steps as extract_steps
from tasks.mixture.config import MixtureConfig
from tasks.mixture.stage import build_steps as mixture_steps
from tasks.ocr.config import OcrConfig
from tasks.ocr.stage import build_steps as ocr_steps
from tasks.quality.config import QualityConfig
from tasks.steps import Step
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.train.config import ModelConfig, PretrainConfig
from tasks.train.distill import DistillConfig
from tasks.train.dpo import DPOConfig
from tasks.train.grpo import GRPOConfig
from tasks.train.sft import SFTConfig

FlowName = Literal["data", "train", "align"]
FLOWS: tuple[FlowName, ...] = ("data", "train", "align")  # the chain's flows, in the order `liandan run` runs them
RUN_CHOICES: tuple[str, ...] = ("all", *FLOWS)  # `liandan run --flow`: the whole chain, or one of its flows
# document: records in, kept + rejected records out, with a ledger (stats.json) that `liandan audit` checks;
# plan: one artifact made from all of its upstream's shards (the tokenizer);
# model: trains and registers a model; settings: configures other stages (the architecture pretrain builds);
# evaluation: measures each model stage's model.
Kind = Literal["document", "plan", "model", "settings", "evaluation"]


def quality_steps(cfg: QualityConfig) -> list[Step]:
    """Return the quality stage's steps with a classifier trained now on the config's labelled files (about a second)."""
    from tasks.quality.stage import build_steps
    from tasks.quality.train import collect_examples, train_classifier

    return build_steps(cfg, train_classifier(collect_examples(cfg), cfg).model)


@dataclass(frozen=True)
class Stage:
    """One entry of the stage table."""

    name: str  # the recipe section, the flow parameter and (but for the tokenizer) the run folder's stage folder
    config: type[BaseModel]  # the section's model: the form in the Prefect UI, the params logged to MLflow
    kind: Kind
    flows: tuple[FlowName, ...]  # the flows that take this section as a parameter
    upstream: str | None  # the stage whose output it reads (None: a source, or a section that reads nothing)
    build_steps: Callable[[Any], list[Step]] | None = None  # records → records: `liandan step` runs it on a JSONL file
    folder: str = ""  # the stage's folder in the run, when it differs from the name

    @property
    def dir_name(self) -> str:
        """Return the stage's folder name under the run folder."""
        return self.folder or self.name


STAGES: tuple[Stage, ...] = (
    Stage("crawl", CrawlConfig, "document", ("data",), None),
    Stage("extract", ExtractConfig, "document", ("data",), "crawl", extract_steps),
    Stage("ocr", OcrConfig, "document", ("data",), "extract", ocr_steps),
    Stage("clean", CleanConfig, "document", ("data",), "ocr", clean_steps),
    Stage("dedup", DedupConfig, "document", ("data",), "clean", dedup_steps),
    Stage("deid", DeidConfig, "document", ("data",), "dedup", deid_steps),
    Stage("quality", QualityConfig, "document", ("data",), "deid", quality_steps),
    Stage("mixture", MixtureConfig, "document", ("data",), "quality", mixture_steps),
    Stage("tokenizer", TokenizerConfig, "plan", ("train",), "mixture", folder="tokenize"),
    Stage("pack", PackConfig, "document", ("train",), "mixture"),
    Stage("model", ModelConfig, "settings", ("train",), None),
    Stage("pretrain", PretrainConfig, "model", ("train",), "pack"),
    Stage("sft", SFTConfig, "model", ("align",), "pretrain"),
    Stage("distill", DistillConfig, "model", ("align",), "sft"),
    Stage("dpo", DPOConfig, "model", ("align",), "sft"),
    Stage("grpo", GRPOConfig, "model", ("align",), "dpo"),
    Stage("evaluate", EvalConfig, "evaluation", ("train", "align"), None),
)
STAGE: dict[str, Stage] = {s.name: s for s in STAGES}


def stages_of(*flows: FlowName) -> tuple[Stage, ...]:
    """Return the stages whose sections any of ``flows`` takes, in chain order."""
    return tuple(s for s in STAGES if set(s.flows) & set(flows))


DATA_STAGES: tuple[str, ...] = tuple(s.name for s in stages_of("data"))  # the data flow's stages, in chain order
DataStage = Literal[DATA_STAGES]  # type: ignore[valid-type]  # a stage the training flow may read
DEID_STAGE: DataStage = "deid"
ALIGN_STAGES: tuple[str, ...] = tuple(s.name for s in stages_of("align") if s.kind == "model")
AlignStage = Literal[ALIGN_STAGES]  # type: ignore[valid-type]
SHARD_STAGES: dict[str, Stage] = {s.name: s for s in STAGES if s.build_steps is not None}  # runnable one shard at a time
STEP_STAGES: tuple[str, ...] = DATA_STAGES  # `liandan step`'s choices: crawl reads seeds or dumps, the rest run their steps
STAGE_ORDER: dict[str, int] = {s.dir_name: i for i, s in enumerate(STAGES)}  # run-folder stage → chain position


def deidentified(stage: DataStage) -> bool:
    """Return whether a data stage's output has been through de-identification (deid or a stage after it)."""
    return DATA_STAGES.index(stage) >= DATA_STAGES.index(DEID_STAGE)


def chain_position(folder: str) -> int:
    """Return a run folder's stage's place in the chain (stages the table does not list, such as ``quality_model``, last)."""
    return STAGE_ORDER.get(folder, len(STAGE_ORDER))
