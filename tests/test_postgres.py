"""Prefect and MLflow on PostgreSQL: a throwaway local cluster, the demo data flow, both stores queried.

The cluster is Debian's ``postgresql`` package run by hand (``initdb`` + ``pg_ctl`` as the ``postgres``
OS user, trust auth, 127.0.0.1 on a free port), so nothing touches the system's own cluster. The demo's
data flow runs in a subprocess with no ``PREFECT_API_URL``: Prefect starts its ephemeral server, and
``PREFECT_API_DATABASE_CONNECTION_URL`` puts that server's database on PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_USER = "postgres"  # the OS user that owns the cluster, and its superuser role (trust auth: no password)


def _postgres_bin() -> Path | None:
    """Return the newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, if any."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb") if Path(p).with_name("pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)


def _missing() -> str | None:
    """Return why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root to run a PostgreSQL cluster as the postgres OS user"
    if _postgres_bin() is None:
        return "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install -y postgresql)"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return "no 'postgres' OS user (it comes with Debian's postgresql package)"
    if shutil.which("runuser") is None:
        return "needs runuser (util-linux) to start PostgreSQL as the postgres user"
    for module in ("psycopg2", "asyncpg"):
        try:
            __import__(module)
        except ImportError:
            return f"the postgres extra is not installed ({module} missing): pip install -e '.[postgres]'"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")

# `liandan run` minus the training flows: the recipe's data flow alone, as the pipeline calls it.
DATA_FLOW = """
import inspect, sys
from flows.cli import configure_environment
from flows.recipe import load_recipe
recipe = load_recipe(sys.argv[1], sys.argv[2:])
configure_environment(recipe.run.runs_dir)
from flows.data import build_corpus
from flows.runners import task_runner_for
sections = {name: getattr(recipe, name) for name in inspect.signature(build_corpus.fn).parameters}
print(build_corpus.with_options(task_runner=task_runner_for(recipe.run))(**sections))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PostgresCluster:
    """A running throwaway cluster on 127.0.0.1."""

    port: int

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def url(self, driver: str, database: str) -> str:
        """Return a SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:PORT/prefect``."""
        return f"postgresql+{driver}://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def query(self, database: str, sql: str) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    """Start a fresh cluster as the postgres user; stop it and delete its files afterwards."""
    bin_dir = _postgres_bin()
    # Not tmp_path: pytest's base temp folder is 0700 root, which the postgres user cannot enter, and the
    # unix socket path must stay under 108 bytes. A short folder in the system temp dir, owned by postgres.
    home = Path(tempfile.mkdtemp(prefix="liandan-pg-"))
    shutil.chown(home, user=PG_USER)
    data, log, port = home / "data", home / "postgres.log", _free_port()

    def as_postgres(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", PG_USER, "--", *cmd], cwd=home, capture_output=True, text=True, timeout=60)

    # fsync and friends off: the cluster lives for one test, durability buys nothing but seconds
    server_options = f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        done = as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
        assert done.returncode == 0, done.stderr
        done = as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", server_options, "-w", "-t", "30", "start")
        assert done.returncode == 0, done.stderr + (log.read_text() if log.exists() else "")
        yield PostgresCluster(port)
    finally:
        if (data / "postmaster.pid").exists():
            as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_prefect_and_mlflow_on_postgres(postgres, tmp_path, sample_site_url):
    from mlflow import MlflowClient

    postgres.create_database("prefect")
    postgres.create_database("mlflow")
    mlflow_uri = postgres.url("psycopg2", "mlflow")
    runs_dir = tmp_path / "runs"
    # No PREFECT_API_URL (or a harness's): the subprocess starts Prefect's ephemeral server, on PostgreSQL.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PREFECT_SERVER_DATABASE", "PREFECT_HOME", "MLFLOW_TRACKING"))}
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = postgres.url("asyncpg", "prefect")
    # migrating a fresh PostgreSQL database happens inside the server's start: Prefect's 20 s default is tight on 2 busy cores
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    overrides = [f"run.runs_dir={runs_dir}", f"run.tracking_uri={mlflow_uri}", f"crawl.seeds=['{sample_site_url}/index.html']", "crawl.inputs=[]"]
    cmd = [sys.executable, "-c", DATA_FLOW, str(ROOT / "recipes" / "demo.yaml"), *overrides]
    # cwd=tmp_path: MLflow's default artifact root for a database store is ./mlruns of the working directory
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    run_dir = runs_dir / "demo"
    assert done.stdout.strip().splitlines()[-1] == str(run_dir.resolve())
    stats = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in run_dir.glob("*/stats.json")}  # every stage the chain has
    assert stats["extract"]["docs_in"] == stats["crawl"]["docs_kept"] > 0
    assert not (runs_dir / "prefect" / "prefect.db").exists()  # Prefect's SQLite default was not used

    # Prefect: the flow runs and one task run per shard are rows in PostgreSQL.
    flow_runs = dict(postgres.query("prefect", "SELECT f.name, fr.state_type FROM flow_run fr JOIN flow f ON f.id = fr.flow_id"))
    assert flow_runs == {"build_corpus": "COMPLETED"}
    tasks = postgres.query("prefect", "SELECT task_key, state_type FROM task_run WHERE name LIKE 'extract_shard-%'")
    assert len(tasks) == len(stats["crawl"]["shards"]) and {state for _, state in tasks} == {"COMPLETED"}
    ((data_flow_run_id,),) = postgres.query("prefect", "SELECT fr.id FROM flow_run fr JOIN flow f ON f.id = fr.flow_id WHERE f.name = 'build_corpus'")

    # MLflow: the data flow's parent run and one child run per stage, in PostgreSQL.
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("liandan-demo")
    runs = client.search_runs([exp.experiment_id])
    # the parent, one child per document stage, and the child that trained the quality classifier
    assert postgres.query("mlflow", "SELECT count(*) FROM runs")[0][0] == len(runs) == 2 + len(stats)
    (data,) = [r for r in runs if r.data.tags.get("liandan.flow") == "data"]
    assert data.data.tags["prefect.flow_run_id"] == str(data_flow_run_id)  # the two stores point at each other
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == data.info.run_id}
    assert children.pop("quality-train-C0.1").data.metrics["heldout.macro_f1"] > 0.7
    assert set(children) == set(stats)
    for stage, child in children.items():
        assert child.info.status == "FINISHED"
        assert child.data.metrics["docs_kept"] == stats[stage]["docs_kept"]
        assert "stats.json" in [a.path for a in client.list_artifacts(child.info.run_id)]
    assert {r.info.status for r in runs} == {"FINISHED"}
