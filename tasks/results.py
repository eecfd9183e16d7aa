"""What a training task hands its flow: the model it saved and the trainer's summary, typed at the seam.

Every model stage (the quality classifier, pretrain, SFT, distillation, DPO, GRPO) returns a ``TrainResult``;
the flow logs and registers ``model_dir`` and stores ``summary`` in the stage's done-record unchanged, so
the records on disk read the same whichever commit wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainResult:
    """A trained (or found already trained) model: its folder, the trainer's step count and its summary."""

    model_dir: str  # the saved model folder: what the flow logs to MLflow and registers
    steps: int  # optimizer steps the model has (0 for models without steps): the x of the stage's final metrics
    summary: dict[str, Any]  # the trainer's summary.json as written: figures for metrics, reports and the done-record

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> TrainResult:
        """Return the result a trainer's summary (holding ``model_dir`` and, for step-trained models, ``steps``) describes."""
        return cls(model_dir=str(summary["model_dir"]), steps=int(summary.get("steps") or 0), summary=summary)
