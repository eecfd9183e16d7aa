"""The quality stage as Prefect tasks: train the classifier once, then score each shard (map).

Files under the training task's folder::

    model/weights.npz, model/model.json   the classifier (see tasks/quality/model.py); log and register this folder
    summary.json                          counts, held-out metrics, confusion matrix, model digest, inputs digest
    held_out.jsonl                        label, predicted, score, origin of each held-out example
    annotations.jsonl                     the LLM's labels, when the annotator is on (reusable as a label file)

Training is skipped on re-run while its inputs — the training fields of the config, the label files and
the weak-label shards — are unchanged. A scored shard is redone when the model's digest or a routing field
changes, so registering a new model version rescores the corpus.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import task

from tasks.quality.annotate import Annotator, api_key_from_env
from tasks.quality.config import QualityConfig, resolve_path
from tasks.quality.labels import unlabelled_texts
from tasks.quality.model import ModelError, QualityModel
from tasks.quality.stage import STAGE, build_steps
from tasks.quality.train import collect_examples, fit_reference_lm, train_classifier
from tasks.records import write_jsonl
from tasks.results import TrainResult
from tasks.steps import ShardStats, cached_steps, process_shard
from tasks.store import StageDir, atomic_write_json, clear_done, file_digest, read_done, stage_digest, write_done

# Fields that change what a scored shard holds; the others only change training (which makes a new model digest).
SCORING_FIELDS = {"high_cutoff", "low_cutoff", "high_action", "medium_action", "low_action", "strict"}
# Fields that do not change the trained model.
NOT_TRAINING_FIELDS = SCORING_FIELDS | {"batch_size", "registered_model", "model_version"}
MODEL_DIR = "model"
SUMMARY_FILE = "summary.json"
HELD_OUT_FILE = "held_out.jsonl"
ANNOTATIONS_FILE = "annotations.jsonl"


def scoring_digest(cfg: QualityConfig, model: QualityModel) -> str:
    """Return the digest a scored shard is made under: the routing fields of the config and the model's digest."""
    return stage_digest(None, [json.dumps(cfg.model_dump(mode="json", include=SCORING_FIELDS), sort_keys=True), model.digest])


@task(name="score_quality_shard")
def score_shard(in_path: str, out_dir: str, cfg: QualityConfig, model_dir: str) -> ShardStats:
    """Return the stats of scoring and routing one shard with the model saved in ``model_dir`` (each row names its tag)."""
    model = QualityModel.load(Path(model_dir))  # milliseconds, and it checks the weights against their digest
    digest = scoring_digest(cfg, model)
    # the featurizer (jieba's dictionary, ~1 s) loads at the first document to score and then serves every later
    # shard of this worker with the same model and routing
    steps = cached_steps(f"{STAGE}:{digest}", lambda: build_steps(cfg, model))
    return process_shard(STAGE, steps, Path(in_path), StageDir(Path(out_dir)), digest)


def training_inputs_digest(cfg: QualityConfig, weak_label_dirs: list[str]) -> str:
    """Return the digest of everything training reads: training fields, label files, the weak-label folders' shards."""
    inputs = [cfg.model_dump_json(exclude=NOT_TRAINING_FIELDS)]  # the training fields only: routing changes keep the model
    inputs += [file_digest(resolve_path(path)) for path in [cfg.seed_path, *cfg.label_paths]]
    if cfg.weak_labels or cfg.annotator.enabled:
        for folder in weak_label_dirs:
            stage = StageDir(Path(folder))
            inputs += [f"{shard.name}:{file_digest(shard)}" for shard in [*stage.shards(), *stage.rejected_shards()]]
    return stage_digest(None, inputs)


@dataclass(frozen=True)
class QualityTraining:
    """A trained classifier: its folder, the training summary (counts, held-out metrics, confusion) and the held-out rows' file."""

    model_dir: str
    summary: dict
    held_out_path: str

    def train_result(self) -> TrainResult:
        """Return it as a model stage's result; the done-record keeps all three fields, as it always has."""
        return TrainResult(model_dir=self.model_dir, steps=0, summary=asdict(self))

    @classmethod
    def from_record(cls, record: dict) -> QualityTraining:
        """Return the training a model stage's done-record (``train_result().summary``) describes."""
        return cls(model_dir=record["model_dir"], summary=record["summary"], held_out_path=record["held_out_path"])


def _trained(out: Path, summary: dict) -> QualityTraining:
    return QualityTraining(model_dir=str(out / MODEL_DIR), summary=summary, held_out_path=str(out / HELD_OUT_FILE))


@task(name="train_quality_model")
def train_quality_model(cfg: QualityConfig, out_dir: str, weak_label_dirs: list[str]) -> QualityTraining:
    """Return the classifier's folder, summary and held-out rows after training it (or finding it already trained).

    Args:
        weak_label_dirs: stage folders (e.g. the run's clean stage) whose rejected shards give weak ``low``
            labels, and whose kept shards give source labels and the annotator's documents.
    """
    out = Path(out_dir)
    model_dir = out / MODEL_DIR
    inputs = training_inputs_digest(cfg, weak_label_dirs)
    summary_path = out / SUMMARY_FILE
    done = read_done(out, inputs)
    if done is not None:
        try:
            if QualityModel.load(model_dir).digest == done.get("model_digest"):
                return _trained(out, {**done, "skipped": 1})
        except ModelError:
            pass  # a damaged folder is retrained
    clear_done(out)
    dirs = [Path(d) for d in weak_label_dirs]
    annotated, failures = [], []
    if cfg.annotator.enabled:
        docs = unlabelled_texts(dirs, cfg.annotator.max_docs, cfg.seed, cfg.min_chars)
        with Annotator(cfg.annotator, api_key_from_env(cfg.annotator)) as annotator:
            labelled = annotator(docs)
        annotated, failures = labelled.examples, labelled.failures
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(out / ANNOTATIONS_FILE, annotated)
    examples = collect_examples(cfg, dirs, extra=annotated)
    result = train_classifier(examples, cfg, fit_reference_lm(cfg, dirs))  # trusted sources' text joins the LM
    result.model.save(model_dir)
    assert QualityModel.load(model_dir).digest == result.model.digest  # the saved folder is the model we measured
    write_jsonl(out / HELD_OUT_FILE, result.held_out)
    summary = {
        **result.summary,
        "inputs_digest": inputs,
        "annotated": len(annotated),
        "annotation_failures": len(failures),
        "skipped": 0,
    }
    atomic_write_json(summary_path, summary)
    write_done(out, inputs, summary)
    return _trained(out, summary)
