"""The stages a user can run alone with ``liandan step``: a name, its config model and its steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel

from tasks.clean.config import CleanConfig
from tasks.clean.stage import build_steps as clean_steps
from tasks.dedup.config import DedupConfig
from tasks.deid.config import DeidConfig
from tasks.deid.stage import build_steps as deid_steps
from tasks.ocr.config import OcrConfig
from tasks.ocr.stage import build_steps as ocr_steps
from tasks.dedup.stage import build_steps as dedup_steps
from tasks.extract.config import ExtractConfig
from tasks.extract.stage import build_steps as extract_steps
from tasks.mixture.config import MixtureConfig
from tasks.mixture.stage import build_steps as mixture_steps
from tasks.quality.config import QualityConfig
from tasks.steps import Step


def quality_steps(cfg: QualityConfig) -> list[Step]:
    """Return the quality stage's steps with a classifier trained now on the config's labelled files (about a second)."""
    from tasks.quality.stage import build_steps
    from tasks.quality.train import collect_examples, train_classifier

    return build_steps(cfg, train_classifier(collect_examples(cfg), cfg).model)


DataStage = Literal["crawl", "extract", "ocr", "clean", "dedup", "deid", "quality", "mixture"]
DATA_STAGES: tuple[DataStage, ...] = get_args(DataStage)  # the data flow's stages, in chain order
DEID_STAGE: DataStage = "deid"


def deidentified(stage: DataStage) -> bool:
    """Return whether a data stage's output has been through de-identification (deid or a stage after it)."""
    return DATA_STAGES.index(stage) >= DATA_STAGES.index(DEID_STAGE)


@dataclass(frozen=True)
class ShardStage:
    """A stage that maps records to records through a list of steps."""

    name: str
    config: type[BaseModel]
    build_steps: Callable[[BaseModel], list[Step]]


SHARD_STAGES: dict[str, ShardStage] = {
    stage.name: stage
    for stage in (
        ShardStage("extract", ExtractConfig, extract_steps),
        ShardStage("ocr", OcrConfig, ocr_steps),
        ShardStage("clean", CleanConfig, clean_steps),
        ShardStage("dedup", DedupConfig, dedup_steps),
        ShardStage("deid", DeidConfig, deid_steps),
        ShardStage("quality", QualityConfig, quality_steps),
        ShardStage("mixture", MixtureConfig, mixture_steps),
    )
}
