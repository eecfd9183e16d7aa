"""Data flow throughput, peak memory and Prefect overhead on N copies of the demo corpus.

The corpus is the bundled sample site copied N times under ``/c0/ … /c<N-1>/`` (root-relative links
rewritten into each copy, robots.txt and the source prefixes extended to match) behind a root page that
links every copy, served by ``liandan serve`` in its own process. Each measurement runs the demo
recipe's data flow (``build_corpus`` with the recipe's sections, as ``liandan run`` calls it, without
the training flows that follow it) in a fresh process: MLflow on SQLite, the demo's shard size, every
stage the data flow has today. So the flow is measured whole (crawl over real HTTP, Parquet shards, one
Prefect task per shard, MLflow runs), not one stage. The copies hold the same text, so de-duplication
keeps one copy: stages after it see 1× whatever N is.

Prefect runs as one standing ``prefect server start`` for all measurements (``--prefect server``, the
default: it records every task run, and start-up then excludes the server) or as the CLI's ephemeral
server inside each flow process (``--prefect ephemeral``: what ``make demo`` pays, ~10 s more start-up).

Per run: wall and CPU seconds of the flow process and the children it reaps (Dask's workers; the
ephemeral server); from Prefect's database the flow run's and the task runs' durations; from every
stage's stats.json its steps' own seconds; peak RSS of the flow process (its kernel high-water mark,
VmHWM, sampled every 50 ms) and the largest summed RSS of its process tree.

Run: ``.venv/bin/python benchmarks/data_flow_scale.py [--factors 1 2 10] [--runners threads:1 dask:2]``
(Linux: reads /proc). Prints one JSON line per run, then a Markdown table and summary lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "data" / "sample" / "site"
RECIPE = ROOT / "recipes" / "demo.yaml"
ROOT_ABSOLUTE = re.compile(rb'((?:href|src)\s*=\s*")/(?!/)')  # "/x" but not protocol-relative "//host/x"


def build_site(dest: Path, copies: int) -> None:
    """Write ``copies`` copies of the sample site under ``dest/c<k>/`` and a root page linking them all.

    Rewriting works on bytes: the GBK/Big5 pages stay byte-identical apart from the inserted ASCII
    prefix (``="/`` cannot occur inside a multi-byte character of those encodings).
    """
    robots = ["User-agent: *"]
    for k in range(copies):
        for src in SITE.rglob("*"):
            if src.is_dir() or src.name in {"robots.txt", "MANIFEST.json"}:
                continue
            out = dest / f"c{k}" / src.relative_to(SITE)
            out.parent.mkdir(parents=True, exist_ok=True)
            body = src.read_bytes()
            out.write_bytes(ROOT_ABSOLUTE.sub(rb"\g<1>/c%d/" % k, body) if src.suffix == ".html" else body)
        robots.append(f"Disallow: /c{k}/private/")
    (dest / "robots.txt").write_text("\n".join(robots) + "\n", encoding="utf-8")
    links = "".join(f'<li><a href="/c{k}/index.html">分站{k}</a></li>' for k in range(copies))
    page = f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>分站导航</title></head><body><ul>{links}</ul></body></html>'
    (dest / "index.html").write_text(page, encoding="utf-8")


def recipe_overrides(base_url: str, copies: int) -> list[str]:
    """Return the ``--set`` overrides that point the demo recipe at the generated site (one level deeper)."""
    from tasks.crawl.config import CrawlConfig

    sources = {f"/c{k}{prefix}": name for k in range(copies) for prefix, name in CrawlConfig().sources.items()}
    return [
        f"crawl.seeds=['{base_url}/index.html']",
        "crawl.allowed_networks=['127.0.0.1/32']",  # the site is served on this machine: loopback is refused unless listed
        "crawl.max_depth=4",  # the demo's 3, plus the hop from the root page into a copy
        "crawl.max_pages=10000000",
        f"crawl.sources={json.dumps(sources)}",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_site(folder: Path) -> tuple[subprocess.Popen, str]:
    """Serve ``folder`` with ``liandan serve`` in its own process (so it shares no GIL with the flow)."""
    port = free_port()
    cmd = [sys.executable, "-m", "flows.cli", "serve", str(folder), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the site server did not start")


def start_prefect_server(work: Path) -> tuple[subprocess.Popen, str]:
    """Start ``prefect server start`` on a free port (its database in ``work/prefect``); return it and its API URL."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PREFECT_SERVER_DATABASE"))}
    env |= {"PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with (work / "prefect-server.log").open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(api + "/health", timeout=2).status_code == 200:
                return proc, api
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_group(proc)
    raise RuntimeError(f"prefect server did not start:\n{(work / 'prefect-server.log').read_text()[-3000:]}")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _proc_status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        out += children
        todo += children
    return out


@dataclass
class MemoryWatch:
    """Samples a process tree: the root's peak RSS (VmHWM) and the tree's largest summed RSS."""

    pid: int
    interval_s: float = 0.05
    root_peak_kb: int = 0
    tree_peak_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.root_peak_kb = max(self.root_peak_kb, _proc_status_kb(self.pid, "VmHWM"))
            tree = sum(_proc_status_kb(p, "VmRSS") for p in [self.pid, *_descendants(self.pid)])
            self.tree_peak_kb = max(self.tree_peak_kb, tree)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)  # Prefect's SQLite columns hold naive UTC
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def run_data_flow(recipe_path: str, overrides: list[str]) -> None:
    """The flow process: load the recipe as the CLI does, then run its data flow alone."""
    import inspect

    from flows.cli import configure_environment
    from flows.recipe import load_recipe

    recipe = load_recipe(recipe_path, overrides)
    configure_environment(recipe.run.runs_dir)
    from flows.data import build_corpus
    from flows.runners import task_runner_for

    sections = {name: getattr(recipe, name) for name in inspect.signature(build_corpus.fn).parameters}
    print(build_corpus.with_options(task_runner=task_runner_for(recipe.run))(**sections))


def prefect_timings(db: Path, run_name: str, logged_tasks: int, settle_s: float) -> dict:
    """Return a run's flow-run and task-run times from Prefect's SQLite database.

    Task runs reach the database as events; a standing server may still be writing them when the
    flow process exits, so wait up to ``settle_s`` for the ``logged_tasks`` the flow's log finished.
    """
    deadline = time.monotonic() + settle_s
    while True:
        con = sqlite3.connect(db)
        try:
            (data_id, f_start, f_end), = con.execute("SELECT id, start_time, end_time FROM flow_run WHERE name = ?", (f"data-{run_name}",))
            rows = con.execute("SELECT name, start_time, end_time FROM task_run WHERE flow_run_id = ?", (data_id,)).fetchall()
        finally:
            con.close()
        tasks = [(name.rsplit("-", 1)[0], _utc(s), _utc(e)) for name, s, e in rows if s and e]
        if len(tasks) >= logged_tasks or time.monotonic() > deadline:
            break
        time.sleep(1)
    extract = [(s, e) for name, s, e in tasks if name == "extract_shard"]
    return {
        "flow_start": _utc(f_start).timestamp(),
        "flow_s": (_utc(f_end) - _utc(f_start)).total_seconds(),
        "tasks": len(tasks),
        "tasks_unrecorded": logged_tasks - len(tasks),  # finished in the flow's log, missing or incomplete in the database
        "tasks_s": sum((e - s).total_seconds() for _, s, e in tasks),
        "tasks_s_by_name": {n: round(sum((e - s).total_seconds() for m, s, e in tasks if m == n), 2) for n in sorted({m for m, _, _ in tasks})},
        "extract_tasks": len(extract),
        "extract_tasks_s": sum((e - s).total_seconds() for s, e in extract),
        "span_s_by_name": {  # first start to last end of each task: the stage's wall time inside the flow run
            n: round((max(e for m, _, e in tasks if m == n) - min(s for m, s, _ in tasks if m == n)).total_seconds(), 2)
            for n in sorted({m for m, _, _ in tasks})
        },
    }


def chain_stats(run_dir: Path) -> list[dict]:
    """Return every stage's stats.json in chain order (following each stage's ``upstream``)."""
    stages = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in run_dir.glob("*/stats.json")}
    chain, upstream = [], None
    while (nxt := next((s for s in stages.values() if s.get("upstream") == upstream and s not in chain), None)) is not None:
        chain.append(nxt)
        upstream = nxt["stage"]
    return chain


def run_flow(work: Path, corpus: list[str], copies: int, runner: str, workers: int, shard_docs: int, name: str, api: str) -> dict:
    """Run the demo recipe's data flow on a generated corpus in a fresh process; return its measurements.

    ``corpus``: the ``--set`` overrides naming it (a site's seeds, or a WARC dump as crawl.inputs).
    ``api``: a Prefect server's API URL, or "" for the CLI's default, Prefect's ephemeral server.
    """
    runs_dir = work / "runs"
    overrides = [
        *corpus,
        f"run.name={name}", f"run.runs_dir={runs_dir}", f"run.shard_docs={shard_docs}",
        f"run.runner={runner}", f"run.max_workers={workers}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PREFECT_SERVER_DATABASE", "MLFLOW_TRACKING"))}
    env["PREFECT_HOME"] = str(work / "prefect")  # one Prefect database for all runs: migrated once, by the warm-up run
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # Prefect's 20 s default fails on a busy 2-core box
    if api:
        env["PREFECT_API_URL"] = api
    cmd = [sys.executable, str(Path(__file__).resolve()), "--data-flow", str(RECIPE), *overrides]
    log = work / f"{name}.log"
    started = time.time()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    watch = MemoryWatch(proc.pid)
    # wait4, not Popen.wait: its rusage holds the CPU seconds of the flow process and of every child it
    # reaped (Prefect's server, Dask's workers), which other processes on the machine barely move
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    watch.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"run {name} failed:\n{log.read_text()[-4000:]}")
    chain = chain_stats(runs_dir / name)
    by_stage = {s["stage"]: s for s in chain}
    quality_model = runs_dir / name / "quality_model" / "summary.json"
    label_sources = json.loads(quality_model.read_text(encoding="utf-8"))["label_sources"] if quality_model.exists() else {}
    logged = len(re.findall(r"Task run '[^']+' - Finished in state", log.read_text(errors="replace")))
    timings = prefect_timings(work / "prefect" / "prefect.db", name, logged, settle_s=60 if api else 0)
    return {
        "copies": copies, "runner": f"{runner}:{workers}", "shard_docs": shard_docs,
        "kept": {s["stage"]: s["docs_kept"] for s in chain},
        "mb_fetched": round(by_stage["crawl"]["counters"].get("bytes_fetched", 0) / 1e6, 1),
        "mb_read": round(by_stage["crawl"]["counters"].get("bytes_read", 0) / 1e6, 1),
        "rejected_by_stage": {s["stage"]: s["rejected_by_reason"] for s in chain},
        "quality_weak_labels": label_sources.get("weak", {}),  # the dump's own clean rejects the classifier learnt `low` from
        "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "startup_s": round(timings["flow_start"] - started, 2), "flow_s": round(timings["flow_s"], 2),
        "tasks": timings["tasks"], "tasks_unrecorded": timings["tasks_unrecorded"], "tasks_s": round(timings["tasks_s"], 2),
        "tasks_s_by_name": timings["tasks_s_by_name"], "steps_s_by_stage": {s["stage"]: round(s["seconds"], 2) for s in chain},
        "steps_s": round(sum(s["seconds"] for s in chain), 2),
        "extract_tasks": timings["extract_tasks"], "extract_tasks_s": round(timings["extract_tasks_s"], 2),
        "extract_steps_s": round(by_stage["extract"]["seconds"], 2), "span_s_by_name": timings["span_s_by_name"],
        "flow_peak_mb": round(watch.root_peak_kb / 1024), "tree_peak_mb": round(watch.tree_peak_kb / 1024),
    }  # fmt: skip


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024  # MemTotal, kB
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib} GiB RAM, Python {sys.version.split()[0]}; load average at the end {load} (1/5/15 min)"


def _longest(spans: dict[str, float], n: int = 3) -> str:
    return ", ".join(f"{name} {t}" for name, t in sorted(spans.items(), key=lambda kv: -kv[1])[:n])


def print_report(results: list[dict]) -> None:
    print(f"\nmachine: {machine()}\n")
    stages = list(results[0]["kept"])
    print(f"| corpus | runner | docs kept ({' → '.join(stages)}) | wall s | CPU s | startup s | flow run s | pages/s in the flow run "
          "| longest task spans s | flow process peak RSS MB | all processes peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        kept = " → ".join(str(r["kept"].get(s, "–")) for s in stages)
        print(f"| {r['copies']}× | {r['runner']} | {kept} | {r['wall_s']} | {r['cpu_s']} | {r['startup_s']} | {r['flow_s']} "
              f"| {r['kept']['crawl'] / r['flow_s']:.0f} | {_longest(r['span_s_by_name'])} | {r['flow_peak_mb']} | {r['tree_peak_mb']} |")  # fmt: skip
    print()
    for r in (r for r in results if r["runner"] == "threads:1"):  # one worker: task runs do not overlap, so they add up
        outside = r["wall_s"] - r["tasks_s"]
        per_task_ms = 1000 * (r["extract_tasks_s"] - r["extract_steps_s"]) / max(1, r["extract_tasks"])
        print(f"{r['copies']}× threads:1 — outside any task (Prefect + MLflow + start-up): {outside:.1f} s = {100 * outside / r['wall_s']:.0f}% of wall "
              f"(start-up {r['startup_s']} s, in the flow run {r['flow_s'] - r['tasks_s']:.1f} s); "
              f"{r['tasks']} task runs {r['tasks_s']} s vs steps {r['steps_s']} s (stats.json); "
              f"an extract task runs {per_task_ms:.0f} ms beyond its steps (Parquet I/O + task engine)"
              + (f"; {r['tasks_unrecorded']} task runs unrecorded" if r["tasks_unrecorded"] else ""))  # fmt: skip
    by_key = {(r["copies"], r["runner"]): r for r in results}
    for copies in sorted({r["copies"] for r in results}):
        one, two = by_key.get((copies, "threads:1")), by_key.get((copies, "dask:2"))
        if one and two:
            print(f"{copies}× dask:2 vs threads:1 — flow run {one['flow_s'] / two['flow_s']:.2f}×, "
                  f"wall {one['wall_s'] / two['wall_s']:.2f}×, CPU {one['cpu_s'] / two['cpu_s']:.2f}×; by task span: "
                  + ", ".join(f"{n} {one['span_s_by_name'][n] / max(t, 1e-9):.2f}×" for n, t in two["span_s_by_name"].items() if t >= 1 and n in one["span_s_by_name"]))  # fmt: skip


# --- WARC dumps: the bring-your-own-corpus path (crawl.inputs) ------------------------------------

GOLD = ROOT / "data" / "sample" / "gold"
NAV = ["首页", "新闻", "财经", "科技", "体育", "娱乐", "汽车", "房产", "教育", "旅游", "健康", "论坛"]
FOOTER = "关于我们 | 联系方式 | 广告服务 | 免责声明 | 网站地图<br>版权所有 © 2008-2026 {site} 保留所有权利 京ICP备{icp}号"


def sentence_pool() -> list[str]:
    """Return the sentences of the sample's gold texts (the project's own fiction: no third-party text)."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(GOLD.rglob("*.txt")))
    return [s + "。" for s in re.split(r"[。！？\n]", text) if len(s.strip()) >= 8]


def build_warc(path: Path, target_mb: float, seed: int = 0) -> dict:
    """Write a gzip WARC dump of about ``target_mb`` MB of response bodies; return what it holds.

    Pages look like portal pages: a navigation bar, a headline, 12–40 sentences drawn from the pool,
    related links and a footer; 10% are GBK (half declared only in the HTTP header, half only in
    ``<meta>``), 3% are binary downloads (application/octet-stream, rejected), 2% are 404s. Each page
    gets a unique number in its headline and first paragraph, so no two pages are exact duplicates.
    """
    import random
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(seed)
    pool = sentence_pool()
    counts = {"pages": 0, "gbk": 0, "binary": 0, "not_found": 0, "body_bytes": 0}
    with path.open("wb") as f:
        writer = WARCWriter(f, gzip=True)
        n = 0
        while counts["body_bytes"] < target_mb * 1e6:
            n += 1
            site = f"site{n % 40}.example.cn"
            url = f"http://{site}/{rng.choice(['news', 'forum', 'shop', 'docs', 'article'])}/{n}.html"
            roll = rng.random()
            charset, status = "utf-8", "200 OK"
            if roll < 0.03:
                url, ctype, body = url.replace(".html", ".zip"), "application/octet-stream", rng.randbytes(rng.randint(20_000, 60_000))
                counts["binary"] += 1
            elif roll < 0.05:
                status, ctype, body = "404 Not Found", "text/html; charset=utf-8", "<html><body><h1>404 页面不存在</h1></body></html>".encode()
                counts["not_found"] += 1
            else:
                gbk = roll >= 0.90
                charset = "gbk" if gbk else "utf-8"
                header_only = gbk and rng.random() < 0.5
                nav = "".join(f'<li><a href="/{k}/">{name}</a></li>' for k, name in enumerate(NAV))
                paras = "".join(f"<p>{''.join(rng.sample(pool, rng.randint(2, 5)))}</p>" for _ in range(rng.randint(4, 10)))
                related = "".join(f'<li><a href="/news/{rng.randint(1, 10**6)}.html">{rng.choice(pool)[:18]}</a></li>' for _ in range(8))
                meta = "" if header_only else f'<meta charset="{charset}">'
                html = (f"<!DOCTYPE html><html><head>{meta}<title>第{n}号稿件 - {site}</title></head><body>"
                        f'<div class="nav"><ul>{nav}</ul></div><div class="main"><h1>第{n}号稿件：{rng.choice(pool)[:20]}</h1>'
                        f"<p>本文编号{n}，发布于2026年{rng.randint(1, 12)}月{rng.randint(1, 28)}日。</p>{paras}</div>"
                        f'<div class="related"><h3>相关阅读</h3><ul>{related}</ul></div>'
                        f'<div class="footer">{FOOTER.format(site=site, icp=10_000_000 + n % 977)}</div></body></html>')  # fmt: skip
                body = html.encode(charset, errors="xmlcharrefreplace")  # what a GBK site does with an emoji
                ctype = f"text/html; charset={charset}" if header_only or not gbk else "text/html"
                counts["pages"] += 1
                counts["gbk"] += gbk
            request = writer.create_warc_record(url, "request", payload=BytesIO(b"GET / HTTP/1.1\r\n\r\n"), length=18)
            writer.write_record(request)  # as Common Crawl's WARCs hold them: request, then response
            headers = StatusAndHeaders(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body), length=len(body), http_headers=headers))
            counts["body_bytes"] += len(body)
    counts["warc_mb"] = round(path.stat().st_size / 1e6, 2)
    counts["body_mb"] = round(counts.pop("body_bytes") / 1e6, 2)
    return counts


def warc_overrides(dump: Path) -> list[str]:
    """Return the ``--set`` overrides that point the demo recipe at a WARC dump instead of the sample site."""
    return ["crawl.seeds=[]", f"crawl.inputs=['{dump}']"]


def measure_warc(args: argparse.Namespace, work: Path, api: str, results: list[dict]) -> None:
    """Run the data flow on generated WARC dumps of ``factor × dump_mb`` MB, appending each run's measurements."""
    warm = work / "warmup.warc.gz"
    build_warc(warm, 0.3, seed=99)
    run_flow(work, warc_overrides(warm), 0, "threads", 1, args.shard_docs, "warmup", api)  # migrates Prefect's and MLflow's databases
    for factor in args.factors:
        dump = work / f"dump-x{factor}.warc.gz"
        held = build_warc(dump, factor * args.dump_mb, seed=factor)
        for spec in args.runners:
            runner, workers = spec.split(":")
            result = run_flow(work, warc_overrides(dump), factor, runner, int(workers), args.shard_docs, f"w{factor}-{runner}{workers}", api)
            result["dump"] = held
            print(json.dumps(result, ensure_ascii=False), flush=True)
            results.append(result)
            shutil.rmtree(work / "runs" / f"w{factor}-{runner}{workers}", ignore_errors=True)  # the disk holds one run at a time
        dump.unlink()


def print_warc_report(results: list[dict]) -> None:
    print(f"\nmachine: {machine()}\n")
    print("| dump | runner | WARC MB (bodies MB) | pages kept after crawl → mixture | wall s | WARC MB/s end to end "
          "| outside tasks | flow process peak RSS MB | all processes peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d = r["dump"]
        kept = r["kept"]
        outside = r["wall_s"] - r["tasks_s"]
        print(f"| {r['copies']}× | {r['runner']} | {d['warc_mb']} ({d['body_mb']}) | {kept.get('crawl')} → {kept.get('mixture')} | {r['wall_s']} "
              f"| {d['warc_mb'] / r['wall_s']:.2f} | {outside:.1f} s ({100 * outside / r['wall_s']:.0f}%) | {r['flow_peak_mb']} | {r['tree_peak_mb']} |")  # fmt: skip
    print("\nQuality classifier's weak `low` labels (the dump's own clean rejects; at most quality.weak_max_per_label): "
          + ", ".join(f"{r['copies']}× {r['quality_weak_labels'].get('low', 0)}" for r in results))
    print("\nPer task kind: share of wall time, and WARC MB per task-second (what one worker of that stage gets through):\n")
    names = sorted({n for r in results for n in r["tasks_s_by_name"]}, key=lambda n: -results[-1]["tasks_s_by_name"].get(n, 0))
    print("| task | " + " | ".join(f"{r['copies']}× {r['runner']}" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for n in names:
        cells = []
        for r in results:
            t = r["tasks_s_by_name"].get(n, 0.0)
            cells.append(f"{100 * t / r['wall_s']:.0f}% · {r['dump']['warc_mb'] / t:.1f} MB/s" if t else "–")
        print(f"| {n} | " + " | ".join(cells) + " |")


def main() -> None:
    if sys.argv[1:2] == ["--data-flow"]:  # the flow process of one measurement: --data-flow RECIPE [SECTION.KEY=VALUE ...]
        run_data_flow(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["site", "warc"], default="site", help="site: copies of the demo site, crawled; warc: generated WARC dumps read as crawl.inputs")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 2, 10], help="copies of the demo corpus, or multiples of --dump-mb")
    parser.add_argument("--dump-mb", type=float, default=15.0, help="MB of response bodies in the 1x WARC dump (--corpus warc)")
    parser.add_argument("--runners", nargs="+", default=["threads:1", "dask:2"], help="RUNNER:WORKERS, e.g. threads:1 dask:2")
    parser.add_argument(
        "--shard-docs", type=int, default=None,
        help="documents per shard; default 500 for --corpus warc (a dump wants hundreds to thousands: each task costs "
        "~0.1 s of Prefect bookkeeping), the demo recipe's 128 for --corpus site",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1, help="runs per (corpus, runner); the fastest is reported, all walls listed")
    parser.add_argument(
        "--prefect", choices=["server", "ephemeral"], default="server",
        help="server: one `prefect server start` for all runs (it records every task run); ephemeral: the CLI's default, "
        "a server per run inside the flow process's start-up (it can lose the last task-run events when the run ends)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.shard_docs is None:
        args.shard_docs = 500 if args.corpus == "warc" else 128

    results = []
    with tempfile.TemporaryDirectory(prefix="liandan-scale-") as tmp:
        work = Path(tmp)
        prefect_server, api = start_prefect_server(work) if args.prefect == "server" else (None, "")
        try:
            (measure_warc if args.corpus == "warc" else measure)(args, work, api, results)
        finally:
            if prefect_server is not None:
                stop_group(prefect_server)
    print(f"Prefect: {'one standing server' if api else 'ephemeral server per run'}; shard_docs={args.shard_docs}")
    if args.corpus == "warc":
        print_warc_report(results)
        for r in results:  # sanity: every response record of the dump is one row of the crawl stage
            d = r["dump"]
            assert r["kept"]["crawl"] == d["pages"], (r["kept"], d)
        return
    print_report(results)
    first = [r for r in results if r["copies"] == args.factors[0]]
    for r in results:  # sanity: N copies crawl N times the pages of one copy (plus the root page)
        assert r["kept"]["crawl"] - 1 == (first[0]["kept"]["crawl"] - 1) * r["copies"] // args.factors[0], r["kept"]


def measure(args: argparse.Namespace, work: Path, api: str, results: list[dict]) -> None:
    """Run every (corpus, runner) of ``args``, appending the fastest run of each to ``results``."""
    for copies in [0, *args.factors]:  # 0: the warm-up, on one copy, migrates Prefect's and MLflow's databases
        site = work / f"site-x{copies}"
        build_site(site, max(copies, 1))
        server, url = serve_site(site)
        try:
            if copies == 0:
                run_flow(work, recipe_overrides(url, 1), 1, "threads", 1, args.shard_docs, "warmup", api)
                continue
            for spec in args.runners:
                runner, workers = spec.split(":")
                runs = [
                    run_flow(work, recipe_overrides(url, copies), copies, runner, int(workers), args.shard_docs, f"x{copies}-{runner}{workers}-{i}", api)
                    for i in range(args.repeats)
                ]
                result = min(runs, key=lambda r: r["wall_s"])  # the least disturbed run: other load only adds
                result["walls_s"] = [r["wall_s"] for r in runs]
                print(json.dumps(result), flush=True)
                results.append(result)
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
