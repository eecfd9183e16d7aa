"""The demo data flow needs no network but loopback: run it in a network namespace with only `lo`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root, unshare and ip to make a loopback-only network namespace")
def test_demo_data_flow_runs_with_loopback_only(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    cmd = " ".join(
        [
            "ip link set lo up &&",
            sys.executable, "-m", "flows.cli", "run", "recipes/demo.yaml", "--flow", "data", "--serve", "data/sample/site",
            "--set", f"run.runs_dir={tmp_path / 'runs'}", "--set", "crawl.inputs=[]", "--set", f"crawl.seeds=\"['http://127.0.0.1:{port}/index.html']\"",
        ]
    )
    done = subprocess.run(["unshare", "-n", "sh", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "extract" in done.stdout and "UNBALANCED" not in done.stdout
    assert (tmp_path / "runs" / "demo" / "extract" / "stats.json").exists()
    assert (tmp_path / "runs" / "mlflow.db").exists()
