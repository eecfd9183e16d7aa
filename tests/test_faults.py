"""Faults outside the crawler: a full disk, a tracking server that is down, secrets that must not leak, pickles.

The full disk is real: a tmpfs of 256 KiB mounted in a private mount namespace (``unshare -m``, as
root) under the stage folder of a subprocess. The tracking server that is down is a closed port, run
through the ``liandan`` command. The secret is an API key in the environment of a real data-flow run,
looked for byte by byte in everything that run wrote.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nothing listens there


# --- a full disk ------------------------------------------------------------------------------------

FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import errno, json, os, random, sys
    from pathlib import Path
    from tasks.records import make_doc
    from tasks.store import SHARD_GLOB, StageDir, atomic_write_bytes

    root = Path(sys.argv[1])
    stage = StageDir(root / "clean")
    rng = random.Random(0)
    def docs(n, chars):  # random Han characters: zstd cannot shrink them below the tmpfs size
        return [make_doc(f"u{i}", "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(chars))) for i in range(n)]

    def visible():
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    out = {}
    small, big = docs(3, 50), docs(200, 2000)  # ~1.2 MB of UTF-8 for a 256 KiB disk
    for case, (kept, rejected) in {"kept_too_big": (big, small), "rejects_too_big": (small, big)}.items():
        try:
            stage.commit_shard("part-00000.parquet", kept, rejected, {"input_digest": "x", "config_digest": "y"})
            out[case] = {"error": None}
        except OSError as e:
            out[case] = {"error": e.errno}
        out[case]["visible"] = visible()
        out[case]["shards"] = [p.name for p in stage.shards()]
    try:
        atomic_write_bytes(root / "clean" / "stats.json", os.urandom(512 * 1024))
        out["stats_too_big"] = {"error": None}
    except OSError as e:
        out["stats_too_big"] = {"error": e.errno}
    out["stats_too_big"]["visible"] = visible()

    # a writer killed mid-write left its temporary file; the rerun of that shard, with room, cleans it
    stale = root / "clean" / ".part-00000.parquet.tmp-999999"
    stale.write_bytes(b"PAR1 half")
    stage.commit_shard("part-00000.parquet", small, small[:1], {"input_digest": "x", "config_digest": "y"})
    out["rerun"] = {"visible": visible(), "shards": [p.name for p in stage.shards()], "stale_left": stale.exists()}
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare to mount a tmpfs")
def test_full_disk_leaves_no_half_shard(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    mount = f"mount -t tmpfs -o size=256k liandan-full {root}"
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_SCRIPT, encoding="utf-8")
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mount} && exec "$0" "$@"', sys.executable, str(script), str(root)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0 and "mount" in done.stderr and "Traceback" not in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    for case in ("kept_too_big", "rejects_too_big"):
        assert out[case] == {"error": 28, "visible": [], "shards": []}, case  # ENOSPC, and nothing under any name
    assert out["stats_too_big"] == {"error": 28, "visible": []}
    assert out["rerun"] == {
        "visible": ["clean/_shards/part-00000.json", "clean/part-00000.parquet", "clean/rejected/part-00000.parquet"],
        "shards": ["part-00000.parquet"],
        "stale_left": False,
    }
    assert not any(root.iterdir())  # the tmpfs lived in the subprocess's namespace only


# --- a tracking server that is down -----------------------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_tracking_server_down_fails_fast_naming_it(tmp_path, sample_site_url, monkeypatch):
    from flows.cli import main

    for key in ("PREFECT_HOME", "PREFECT_LOGGING_LEVEL"):  # the command sets these for the process: undone after
        monkeypatch.setenv(key, os.environ.get(key, str(tmp_path / "prefect") if key == "PREFECT_HOME" else "INFO"))
    uri = f"http://127.0.0.1:{_closed_port()}"
    args = [
        "run", str(ROOT / "recipes" / "demo.yaml"),
        "--set", f"run.runs_dir={tmp_path / 'runs'}", "--set", f"run.tracking_uri={uri}",
        "--set", f"crawl.seeds=['{sample_site_url}/index.html']", "--set", "crawl.allowed_networks=['127.0.0.1/32']",
    ]  # fmt: skip
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match=re.escape(f"MLflow tracking server {uri} is not reachable")):
        main(args)  # the console script exits 1 with this traceback
    seconds = time.perf_counter() - started
    assert not list((tmp_path / "runs").rglob("stats.json"))  # no stage ran
    # the flow's failure hook closes the MLflow run too: MLflow's own retries against a dead server take minutes
    assert seconds < 30, f"took {seconds:.0f} s to fail"


# --- secrets never reach the tracking store, the run folder or Prefect's database -------------------

SECRET = "sk-test-secret-123-do-not-log"


@pytest.mark.usefixtures("prefect_harness")
def test_api_key_in_the_environment_is_never_stored(tmp_path, mlflow_uri, sample_site_url, monkeypatch):
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from flows.data import build_corpus
    from flows.recipe import RunConfig
    from tasks.crawl.config import CrawlConfig

    monkeypatch.setenv("LIANDAN_LLM_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    canary = "canary-run-7c1e"  # a value that must land in every store: proves the search can find one
    run = RunConfig(name=canary, runs_dir=str(tmp_path / "runs"), experiment=canary, tracking_uri=mlflow_uri, shard_docs=8)
    crawl = CrawlConfig(seeds=[f"{sample_site_url}/news/index.html"], max_depth=1, max_pages=3, allowed_networks=["127.0.0.1/32"])
    build_corpus(run=run, crawl=crawl)

    db = Path(mlflow_uri.removeprefix("sqlite:///"))
    files = [db, *(p for p in (tmp_path / "runs").rglob("*") if p.is_file())]
    prefect_db = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    if prefect_db.startswith("sqlite"):
        files.append(Path(prefect_db.split(":///", 1)[1]))
    assert any(p.suffix == ".png" and "mlartifacts" in str(p) for p in files) and any(p.suffix == ".parquet" for p in files)
    holding = {str(p) for p in files if canary.encode() in p.read_bytes()}
    assert str(db) in holding and any(f"runs/{canary}/" in p for p in holding)
    assert [str(p) for p in files if SECRET.encode() in p.read_bytes()] == []


# --- no pickle of untrusted data --------------------------------------------------------------------

UNSAFE_MODULES = frozenset({"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"})


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def unsafe_loads(source: str) -> list[str]:
    """Return the lines of ``source`` that can run code hidden in data: pickle and friends, unsafe loaders."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(n.split(".")[0] in UNSAFE_MODULES for n in names):
                found.append(f"{node.lineno}: import {', '.join(names)}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name.endswith("torch.load") and not _keyword_true(node, "weights_only"):
                found.append(f"{node.lineno}: {name} without weights_only=True")
            elif name.split(".")[-1] == "load" and name.split(".")[0] in {"np", "numpy"} and _keyword_true(node, "allow_pickle"):
                found.append(f"{node.lineno}: {name} with allow_pickle=True")
            elif name.split(".")[-1] in {"read_pickle", "unsafe_load", "full_load"} or name in {"yaml.load", "yaml.load_all"}:
                found.append(f"{node.lineno}: {name}")
            elif _keyword_true(node, "trust_remote_code"):
                found.append(f"{node.lineno}: {name} with trust_remote_code=True")
    return sorted(found, key=lambda hit: int(hit.split(":")[0]))


def test_unsafe_loads_finds_what_it_looks_for():
    source = textwrap.dedent(
        """
        import pickle
        from joblib import load
        import torch, numpy as np, yaml
        torch.load("m.pt")
        torch.load("m.pt", weights_only=True)
        np.load("w.npy", allow_pickle=True)
        np.load("w.npz", allow_pickle=False)
        yaml.load(text)
        yaml.safe_load(text)
        AutoModel.from_pretrained(path, trust_remote_code=True)
        """
    )
    assert [line.split(":")[0] for line in unsafe_loads(source)] == ["2", "3", "5", "7", "9", "11"]


def test_no_pickle_of_untrusted_data_in_the_code():
    found = {}
    for path in sorted([*(ROOT / "tasks").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]):
        hits = unsafe_loads(path.read_text(encoding="utf-8"))
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert found == {}
