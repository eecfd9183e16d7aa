"""Kill a data run with SIGKILL mid-stage, rerun the same command: it resumes and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.store import StageDir, audit_run, read_records

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _command(tmp_path: Path, site: str, name: str, mlflow_uri: str) -> list[str]:
    return [
        sys.executable, "-m", "flows.cli", "run", "recipes/demo.yaml", "--flow", "data",
        "--set", f"run.name={name}", "--set", f"run.runs_dir={tmp_path / 'runs'}", "--set", f"run.tracking_uri={mlflow_uri}",
        "--set", "run.shard_docs=1", "--set", "run.max_workers=1",  # one document per shard: many small tasks to land the kill between
        "--set", f"crawl.seeds=['{site}/index.html']", "--set", "crawl.inputs=[]",  # the site alone: the bundled corpus would be 1,500 shards here
    ]


def _env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the harness's API: no ephemeral server per process


def _outputs(run_dir: Path, stage: str) -> tuple[list[str], list[tuple[str, str]]]:
    d = StageDir(run_dir / stage)
    return sorted(r["id"] for r in read_records(d.shards())), sorted((r["id"], r["reason"]) for r in read_records(d.rejected_shards()))


def test_sigkill_mid_stage_then_rerun_resumes(tmp_path, sample_site_url, mlflow_uri):
    root = Path(__file__).resolve().parent.parent
    cmd = _command(tmp_path, sample_site_url, "killed", mlflow_uri)
    proc = subprocess.Popen(cmd, cwd=root, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = tmp_path / "runs" / "killed" / "extract" / "_shards"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(markers.glob("*.json"))) < 3:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed mid-stage"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(markers.glob("*.json")))
    assert not (markers.parent / "stats.json").exists()  # the stage never finished

    rerun = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    clean = subprocess.run(_command(tmp_path, sample_site_url, "clean", mlflow_uri), cwd=root, env=_env(), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-3000:]

    killed_dir, clean_dir = tmp_path / "runs" / "killed", tmp_path / "runs" / "clean"
    stats = (killed_dir / "extract" / "stats.json").read_text(encoding="utf-8")
    assert f'"shards_skipped": {done_before}' in stats
    for stage in ("crawl", "extract"):
        kept, rejected = _outputs(killed_dir, stage)
        assert (kept, rejected) == _outputs(clean_dir, stage)
        assert len(kept) == len(set(kept)) and not set(kept) & {i for i, _ in rejected}  # no duplicated, no lost ids
    assert all(not row.problems for row in audit_run(killed_dir))
    assert not list(killed_dir.rglob(".*.tmp-*"))  # no temporary file left visible
