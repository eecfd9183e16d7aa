"""Shared fixtures: one Prefect test harness per session, a pre-migrated MLflow store per test, the sample site."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flows.cli import PRIVACY_DEFAULTS

for _key, _value in PRIVACY_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an accidental download fails at once
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Property tests (tests/test_fuzz.py): short and reproducible by default (derandomized, no example database
# written into the tree); `pytest --hypothesis-profile=long` searches far more, with a fresh seed, by hand.
settings.register_profile("short", max_examples=30, derandomize=True, database=None, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=1000, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("short")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SITE = ROOT / "data" / "sample" / "site"


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's own ephemeral API for the whole session (it takes ~11 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def _migrated_mlflow_db(tmp_path_factory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # runs the schema migrations once
    return path


@pytest.fixture
def mlflow_uri(_migrated_mlflow_db, tmp_path) -> str:
    """A fresh MLflow SQLite store for one test, copied from a pre-migrated file (migrating costs ~1 s)."""
    path = tmp_path / "mlflow.db"
    shutil.copy(_migrated_mlflow_db, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def sample_site_url() -> str:
    """The bundled sample site, served by a real local HTTP server."""
    from flows.serve import serve_directory

    server = serve_directory(SAMPLE_SITE)
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> tuple[Path, Path]:
    """A tokenizer trained on the sample's gold texts and a tiny untrained Qwen2 model saved beside it: (model dir, tokenizer dir).

    The starting point of the SFT, distillation, DPO and GRPO tests: ~160K parameters, built from a config, never downloaded.
    """
    from tasks.records import make_doc
    from tasks.store import StageDir
    from tasks.tokenize.config import TokenizerConfig
    from tasks.tokenize.stage import build_tokenizer
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.config import ModelConfig
    from tasks.train.model import build_model

    root = tmp_path_factory.mktemp("tiny-base")
    gold = ROOT / "data" / "sample" / "gold"
    docs = [make_doc(str(p.relative_to(gold)), p.read_text(encoding="utf-8"), source=p.parent.name) for p in sorted(gold.rglob("*.txt"))]
    extract = StageDir(root / "extract")
    extract.commit_shard("part-00000.parquet", docs, [], {"stats": {}})
    tokenizer_dir = root / "tokenizer"
    build_tokenizer(extract.shards(), StageDir(tokenizer_dir), TokenizerConfig(vocab_size=1024))
    tokenizer = load_tokenizer(tokenizer_dir)
    model = build_model(ModelConfig(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=176), tokenizer, seed=0)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir, tokenizer_dir
