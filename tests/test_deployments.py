"""The deployments for real: their parameters and schemas from the demo recipe, the data-completed trigger's
template, and an end-to-end run on a real Prefect server and process worker, tracked in MLflow and checked in
headless Chromium.

The server, worker and browser are subprocesses with their own environment (PREFECT_HOME in tmp); this
process talks to the server through a client bound to its URL, so the session's prefect_harness is untouched.

    LIANDAN_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/test_deployments.py   # also retakes the README's screenshots
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import psutil
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.server.events.actions import RunDeployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate
from pydantic import BaseModel
from websockets.sync.client import connect as websocket_connect

from deployments.deploy import DATA, DATA_POOL, PIPELINE, RUN_OF_DATA_RUN, TRAIN, TRAIN_POOL, build_deployments, ensure_pools, main
from flows.cli import PRIVACY_DEFAULTS
from flows.recipe import Recipe, RunConfig, load_recipe

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "demo.yaml"
BIN = Path(sys.executable).parent
DATA_STAGES = ("crawl", "extract", "ocr", "clean", "dedup", "deid")  # at least these; the chain grows
FULL_NAMES = ("build_corpus/nightly", "train_model/weekly", "liandan_pipeline/full")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def deployments() -> dict:
    """The deployments as built from the demo recipe, by deployment name (nothing sent to Prefect)."""
    return {d.name: d for d in build_deployments(RECIPE)}


def test_deployments_take_their_flows_sections_of_the_recipe(deployments):
    recipe = load_recipe(RECIPE)
    data, train, pipeline = deployments[DATA.name], deployments[TRAIN.name], deployments[PIPELINE.name]
    assert (data.flow_name, train.flow_name, pipeline.flow_name) == ("build_corpus", "train_model", "liandan_pipeline")
    for d in deployments.values():  # every parameter of the flow comes from the recipe (or is fixed): none falls to code defaults
        missing = sorted(set(d._parameter_openapi_schema.properties) - set(d.parameters))
        assert not missing, f"{d.flow_name} takes {missing}, which the Recipe has no section for"
    assert set(data.parameters) >= {"run", "crawl", "extract", "ocr", "clean", "dedup", "deid"}
    assert set(train.parameters) >= {"run", "tokenizer", "pack", "model", "pretrain"} and train.parameters["data_stage"] == "mixture"
    assert set(pipeline.parameters) >= set(data.parameters) | {"tokenizer", "pretrain"}
    assert data.parameters["crawl"] == recipe.crawl.model_dump(mode="json")
    assert data.parameters["run"] == recipe.run.model_dump(mode="json") | {"name": ""}  # nightly folders are dated
    assert train.parameters["run"]["name"] == "demo"

    assert (data.work_pool_name, train.work_pool_name, pipeline.work_pool_name) == (DATA_POOL, TRAIN_POOL, TRAIN_POOL)
    assert [d.concurrency_limit for d in deployments.values()] == [1, 1, 1]
    assert [s.schedule.cron for s in data.schedules] == ["0 2 * * *"] and [s.schedule.cron for s in train.schedules] == ["0 4 * * 6"]
    assert pipeline.schedules == []
    for d in deployments.values():
        assert d.job_variables == {"env": PRIVACY_DEFAULTS, "working_dir": str(ROOT)}
        assert d.storage.to_pull_step() == {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    (trigger,) = train.triggers
    assert trigger.expect == {"prefect.flow-run.Completed"} and trigger.parameters == {"run": RUN_OF_DATA_RUN}
    assert not data.triggers and not pipeline.triggers


def _free_form_objects(schema: dict, path: str = "") -> list[str]:
    """Return the paths of object fields with no declared shape (a dict[str, Any]: the UI can only offer raw JSON)."""
    found = []
    shaped = "properties" in schema or "patternProperties" in schema or schema.get("additionalProperties", True) not in (True, {})
    if schema.get("type") == "object" and not shaped:
        found.append(path)
    for key, value in schema.items():
        if isinstance(value, dict):
            found += _free_form_objects(value, f"{path}/{key}")
        elif isinstance(value, list):
            found += [p for i, v in enumerate(value) if isinstance(v, dict) for p in _free_form_objects(v, f"{path}/{key}/{i}")]
    return found


def test_parameter_schemas_are_json_schema_and_every_recipe_section_round_trips(deployments):
    recipe = load_recipe(RECIPE)
    for d in deployments.values():
        schema = d._parameter_openapi_schema.model_dump(exclude_none=True)
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        validator.validate(d.parameters)
        assert _free_form_objects(schema) == [], f"{d.name}: free-form object parameters render as raw JSON"
        for section in (name for name in d.parameters if name in Recipe.model_fields):
            model: type[BaseModel] = type(getattr(recipe, section))
            definition = schema["definitions"][model.__name__]
            assert definition["description"] == inspect.cleandoc(model.__doc__)  # the form's group description
            for name, prop in definition["properties"].items():
                assert prop.get("description"), f"{model.__name__}.{name} has no description for the form"
            sent = getattr(recipe, section).model_dump(mode="json")
            validator.validate({**d.parameters, section: sent})
            assert model.model_validate(sent) == getattr(recipe, section)  # what the form sends is what the flow gets
    # The bounds reach the form: an out-of-range value is refused before a run is created.
    data_schema = deployments[DATA.name]._parameter_openapi_schema.model_dump(exclude_none=True)
    bad = {**deployments[DATA.name].parameters, "run": {**deployments[DATA.name].parameters["run"], "shard_docs": 0}}
    with pytest.raises(jsonschema.ValidationError, match="shard_docs|minimum|0 is less"):
        jsonschema.validate(bad, data_schema)


def _render_trigger(flow_run: FlowRun) -> dict:
    """Return the trigger's parameters rendered for one data flow run, by Prefect's own hydration."""
    parameters = {"run": RUN_OF_DATA_RUN}
    RunDeployment._upgrade_v1_templates(parameters)
    return hydrate(parameters, HydrationContext(raise_on_error=True, render_jinja=True, jinja_context={"flow_run": flow_run}))


@pytest.mark.parametrize("name", ["", "nightly-7"])
def test_trigger_passes_the_data_runs_folder(name):
    run = RunConfig(name=name, runs_dir="/data/runs", experiment="exp", tracking_uri="sqlite:////data/m.db", shard_docs=3)
    resolved = run.resolved_name("data")
    data_run = FlowRun(flow_id="00000000-0000-0000-0000-000000000000", name=f"data-{resolved}", parameters={"run": run.model_dump(mode="json")})
    rendered = _render_trigger(data_run)
    assert RunConfig.model_validate(rendered["run"]) == run.model_copy(update={"name": resolved})


# ---- end to end: a real server, a real worker, a real flow run -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process with SIGTERM (Prefect's CLIs pass it on to their children), then kill whatever it left behind."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else ""


def _wait_for(check: Callable[[], object], timeout: float, what: str, logs: list[Path] = ()) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n" + "\n".join(f"--- {p.name}\n{_tail(p)}" for p in logs))


def _wait_until_final(client: SyncPrefectClient, flow_run_id, timeout: float, logs: list[Path]) -> FlowRun:
    def final() -> FlowRun | None:
        flow_run = client.read_flow_run(flow_run_id)
        return flow_run if flow_run.state.is_final() else None

    return _wait_for(final, timeout, f"flow run {flow_run_id}", logs)


@dataclass
class Server:
    """A running Prefect server with its deployments applied and a process worker for the data pool."""

    url: str  # the API, http://127.0.0.1:<port>/api
    ui: str
    env: dict[str, str]  # what its worker runs with
    ids: dict[str, str]  # deployment id by <flow>/<name>
    logs: list[Path]
    tmp: Path

    def client(self) -> SyncPrefectClient:
        return SyncPrefectClient(self.url)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Iterator[Server]:
    """A real ``prefect server start`` on a free port with the deployments applied and a worker polling the data pool."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    ui, url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        **PRIVACY_DEFAULTS,
        "PREFECT_HOME": str(tmp / "home"),
        "PREFECT_API_URL": url,
        "PREFECT_UI_API_URL": url,  # the UI asks the server where its API is; the default is port 4200
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",  # no cron runs: the test starts the one it checks
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    logs = [tmp / "server.log", tmp / "worker.log"]
    procs = [_start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, logs[0])]
    try:

        def healthy() -> bool:
            assert procs[0].poll() is None, f"prefect server exited\n{_tail(logs[0])}"
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(healthy, 180, "the Prefect server", logs[:1])
        with temporary_settings(updates={PREFECT_API_URL: url}):  # this block only: the harness keeps its own server
            ensure_pools()  # before the worker starts (it would make its pool itself), so it boots while we deploy
            procs.append(_start([str(BIN / "prefect"), "worker", "start", "--pool", DATA_POOL, "--name", "e2e-worker"], env, logs[1]))
            assert main(["--recipe", str(RECIPE)]) == 0  # what `make deploy` runs
        with SyncPrefectClient(url) as client:
            ids = {name: str(client.read_deployment_by_name(name).id) for name in FULL_NAMES}
            assert len(client.read_deployments()) == len(FULL_NAMES)
        yield Server(url=url, ui=ui, env=env, ids=ids, logs=logs, tmp=tmp)
    finally:
        for proc in reversed(procs):
            _stop(proc)


@dataclass
class DataRun:
    """The data deployment's flow run started through the API, what it was given, and (once finished) its final state."""

    flow_run: FlowRun
    run: RunConfig
    started: float  # time.perf_counter() when it was created
    seconds: float = 0.0  # from creation to its final state


@pytest.fixture(scope="module")
def started_run(prefect_server, sample_site_url, _migrated_mlflow_db, tmp_path_factory) -> DataRun:
    """Start the nightly data deployment through the API with non-default parameters (the worker takes it at once)."""
    tmp = tmp_path_factory.mktemp("e2e-run")
    shutil.copy(_migrated_mlflow_db, tmp / "mlflow.db")  # a fresh store would spend seconds migrating in the flow run
    with prefect_server.client() as client:
        deployment = client.read_deployment(prefect_server.ids["build_corpus/nightly"])
        run = RunConfig.model_validate(
            deployment.parameters["run"] | {"runs_dir": str(tmp / "runs"), "experiment": "e2e", "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}", "shard_docs": 50}
        )
        crawl = deployment.parameters["crawl"] | {"seeds": [f"{sample_site_url}/index.html"], "allowed_networks": ["127.0.0.1/32"], "max_pages": 8}
        started = time.perf_counter()
        created = client.create_flow_run_from_deployment(deployment.id, parameters={"run": run.model_dump(mode="json"), "crawl": crawl})
    return DataRun(flow_run=created, run=run, started=started)


@pytest.fixture(scope="module")
def data_run(prefect_server, started_run) -> DataRun:
    """The started data run once it has finished, Completed."""
    with prefect_server.client() as client:
        finished = _wait_until_final(client, started_run.flow_run.id, 240, prefect_server.logs)
    assert finished.state.is_completed(), f"{finished.state}\n{_tail(prefect_server.logs[1], 80)}"
    return DataRun(flow_run=finished, run=started_run.run, started=started_run.started, seconds=time.perf_counter() - started_run.started)


# The first two e2e tests run while the worker executes the data run.


@pytest.mark.e2e
def test_applied_deployments_keep_limits_environment_and_schema(prefect_server, started_run):
    with prefect_server.client() as client:
        for full_name, deployment_id in prefect_server.ids.items():
            d = client.read_deployment(deployment_id)
            assert d.global_concurrency_limit is not None and d.global_concurrency_limit.limit == 1, full_name
            assert d.job_variables == {"env": PRIVACY_DEFAULTS, "working_dir": str(ROOT)}
            assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
            jsonschema.Draft202012Validator.check_schema(d.parameter_openapi_schema)
            jsonschema.validate(d.parameters, d.parameter_openapi_schema)
            assert d.enforce_parameter_schema
        assert client.read_work_pool(TRAIN_POOL).concurrency_limit == 1
        assert client.read_work_pool(DATA_POOL).type == "process"


class Browser:
    """Headless Chromium driven over the DevTools protocol: open a page, wait for its text, click, photograph."""

    def __init__(self, tmp: Path):
        port = _free_port()
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1600,1000", f"--user-data-dir={tmp / 'chromium'}"]
        self.proc = _start([CHROMIUM, *args, f"--remote-debugging-port={port}", "about:blank"], dict(os.environ), tmp / "chromium.log")

        def page_target() -> str | None:
            try:
                pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json() if t["type"] == "page"]
            except httpx.HTTPError:
                return None
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        self.ws = websocket_connect(_wait_for(page_target, 60, "Chromium's DevTools endpoint"), max_size=None)
        self.calls = 0
        self.call("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.ws.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while (reply := json.loads(self.ws.recv())).get("id") != self.calls:
            pass  # an event, not our answer
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def text(self) -> str:
        return self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''", returnByValue=True)["result"].get("value", "")

    def open(self, url: str, wait_for: str) -> None:
        self.call("Page.navigate", url=url)
        _wait_for(lambda: wait_for in self.text(), 90, f"{wait_for!r} on {url}")

    def run(self, script: str, wait_for: str) -> None:
        """Run a script in the page (clicks), then wait for a text to appear."""
        self.call("Runtime.evaluate", expression=script)
        _wait_for(lambda: wait_for in self.text(), 60, f"{wait_for!r} after {script}")

    def click(self, label: str, wait_for: str, scroll: bool = False) -> None:
        """Click the element labelled ``label`` (scrolled to the top of the view if asked), then wait for a text."""
        found = f"[...document.querySelectorAll('button, a, [role=tab], li')].find(e => e.innerText.trim() === {json.dumps(label)})"
        self.run(f"{found}.click()", wait_for)
        if scroll:
            self.call("Runtime.evaluate", expression=f"{found}.scrollIntoView()")

    def screenshot(self, out: Path) -> None:
        time.sleep(2)  # fonts, charts and lazy tables settle after the text is there
        out.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.ws.close()
        _stop(self.proc)


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (make env does, as root)")
def test_run_form_of_the_data_deployment_renders_every_stage_field(prefect_server, started_run, deployments, tmp_path):
    schema = deployments[DATA.name]._parameter_openapi_schema.model_dump(exclude_none=True)
    labels = _form_labels(schema, schema)
    browser = Browser(tmp_path)
    try:
        browser.open(f"{prefect_server.ui}/deployments/deployment/{prefect_server.ids['build_corpus/nightly']}/run", "Parameters")
        deadline = time.monotonic() + 60  # the form renders section by section
        while (missing := [label for label in labels if label not in (text := browser.text())]) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        browser.close()
    assert "build_corpus" in text and not missing, f"fields not rendered: {missing}"


def _form_labels(schema: dict, node: dict) -> list[str]:
    """Return the label of every field the run form should show: a field's title, or its name for a nested model."""
    labels = []
    for name, prop in node["properties"].items():
        labels.append(prop.get("title", name))
        if "$ref" in prop:
            labels += _form_labels(schema, schema["definitions"][prop["$ref"].rsplit("/", 1)[-1]])
    return labels


@pytest.mark.e2e
def test_data_deployment_runs_on_the_worker_and_is_tracked(prefect_server, data_run):
    fr, run = data_run.flow_run, data_run.run
    resolved = run.resolved_name("data")
    assert fr.name == f"data-{resolved}"
    run_dir = Path(run.runs_dir) / resolved
    stages = {p.parent.name for p in run_dir.glob("*/stats.json")}
    assert stages >= set(DATA_STAGES)

    client = MlflowClient(tracking_uri=run.tracking_uri)
    experiment = client.get_experiment_by_name("e2e")
    (parent,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.`prefect.flow_run_id` = '{fr.id}'")
    assert parent.info.status == "FINISHED" and parent.info.run_name == f"{resolved}-{DATA.name}"  # data-<date>-nightly
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs table
    assert parent.data.tags["prefect.deployment"] == DATA.name and parent.data.tags["prefect.deployment_id"] == prefect_server.ids["build_corpus/nightly"]
    children = {
        r.info.run_name: r for r in client.search_runs([experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    }
    assert {r.info.status for r in children.values()} == {"FINISHED"}
    assert children.pop("quality-train-C0.1").data.tags["liandan.stage"] == "quality_model"  # the classifier trained for this run
    assert set(children) == stages
    assert children["crawl"].data.params["max_pages"] == "8"  # the edited parameter reached the stage
    assert children["crawl"].data.metrics["docs_kept"] >= 1

    with prefect_server.client() as pc:
        artifacts = {a.key: a for a in pc.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))}
    link = artifacts["mlflow-data"]  # a link artifact: Prefect stores it as markdown "[text](url)"
    assert f"/#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id})" in link.data
    for stage in stages:
        table = artifacts[f"{stage}-stats"]
        assert table.type == "table" and children[stage].info.run_id in table.description
    print(f"data flow run on the worker: {data_run.seconds:.1f} s")


@pytest.mark.e2e
def test_completed_data_run_triggers_training_on_its_folder(prefect_server, data_run):
    train_id = prefect_server.ids["train_model/weekly"]
    with prefect_server.client() as client:
        runs = _wait_for(
            lambda: client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[train_id]))),
            60,
            "the training run started by the data-completed trigger",
            prefect_server.logs[:1],
        )
        (train,) = runs
        # No worker polls the training pool here: the run waits, Scheduled, with the parameters the trigger gave it.
        assert train.state.is_scheduled()
        assert train.created_by.type == "AUTOMATION" and train.created_by.display_value == "train-after-nightly-data"
        expected = data_run.run.model_copy(update={"name": data_run.run.resolved_name("data")})
        assert RunConfig.model_validate(train.parameters["run"]) == expected
        assert train.parameters["data_stage"] == "mixture"


# ---- screenshots for the README: LIANDAN_SCREENSHOTS=docs/screenshots ------------------------------------------


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("LIANDAN_SCREENSHOTS") or CHROMIUM is None, reason="screenshots are retaken by hand: LIANDAN_SCREENSHOTS=docs/screenshots")
def test_screenshots(prefect_server, data_run):
    """Let a training worker take the triggered run, then photograph both UIs (runs after the trigger test)."""
    out = Path(os.environ["LIANDAN_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    logs = [prefect_server.tmp / "worker-gpu.log", prefect_server.tmp / "mlflow.log"]
    port = _free_port()
    tracking_uri = data_run.run.tracking_uri
    env = prefect_server.env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner processes: nothing here queues jobs
    procs = [
        _start([str(BIN / "prefect"), "worker", "start", "--pool", TRAIN_POOL, "--name", "e2e-gpu-worker"], env, logs[0]),
        _start([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--backend-store-uri", tracking_uri],
               env, logs[1]),
    ]
    browser = None
    try:
        with prefect_server.client() as client:
            train_id = prefect_server.ids["train_model/weekly"]
            (train,) = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[train_id])))
            train = _wait_until_final(client, train.id, 900, logs)
            assert train.state.is_completed(), f"{train.state}\n{_tail(logs[0], 80)}"
        ui, data_id = prefect_server.ui, prefect_server.ids["build_corpus/nightly"]
        browser = Browser(prefect_server.tmp)
        browser.open(f"{ui}/deployments", "nightly")
        browser.screenshot(out / "prefect-deployments.png")
        browser.open(f"{ui}/deployments/deployment/{data_id}/run", "Max Pages")
        browser.screenshot(out / "prefect-run-form.png")
        browser.open(f"{ui}/runs/flow-run/{data_run.flow_run.id}", "Job Variables")
        browser.click("Artifacts", "mlflow-data", scroll=True)
        browser.screenshot(out / "prefect-data-run-artifacts.png")
        browser.open(f"{ui}/runs/flow-run/{train.id}", "train-after-nightly-data")
        browser.screenshot(out / "prefect-triggered-train-run.png")

        def mlflow_up() -> bool:
            assert procs[1].poll() is None, f"mlflow server exited\n{_tail(logs[1])}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(mlflow_up, 120, "the MLflow server", logs[1:])
        experiment = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name("e2e")
        browser.open(f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs", data_run.run.resolved_name("data"))
        # Close the assistant panel and unfold every parent run to show its stage runs.
        expanders = "document.querySelectorAll('button[data-component-id*=runnamecellrenderer]').forEach(b => b.click())"
        browser.run(f"document.querySelector('button[aria-label=Close]')?.click(); {expanders}", "pretrain")
        browser.screenshot(out / "mlflow-experiment.png")
    finally:
        if browser is not None:
            browser.close()
        for proc in procs:
            _stop(proc)
