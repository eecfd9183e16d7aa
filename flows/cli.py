"""The ``liandan`` command: run a recipe's whole chain, run one stage on a JSONL file, serve a folder.

    liandan run recipes/demo.yaml [--set run.name=x] [--serve data/sample/site] [--flow data|train|align]
    liandan step extract --input pages.jsonl --output texts.jsonl [--config extract.yaml]
    liandan audit demo
    liandan eval runs/demo/grpo/model models:/liandan-chat@champion [--recipe recipes/demo.yaml] [--set evaluate.arith_problems=50]
    liandan serve data/sample/site --port 8731
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

# Telemetry off unless the user opted back in (they can export these as "false"/unset them).
PRIVACY_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def configure_environment(runs_dir: str | Path) -> None:
    """Set the project's defaults before Prefect and MLflow are imported: no telemetry, Prefect's home in the runs folder."""
    for key, value in PRIVACY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(Path(runs_dir).resolve() / "prefect"))
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)  # Prefect makes only the last level
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # the default 20 s is too short on a busy 2-core machine


def cmd_run(args: argparse.Namespace) -> int:
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.set)
    configure_environment(recipe.run.runs_dir)
    from flows.pipeline import run_recipe
    from flows.serve import serve_directory

    server = None
    if args.serve:
        if not recipe.crawl.seeds:
            raise SystemExit("--serve needs crawl.seeds: the folder is served on the first seed's host and port")
        seed = urlsplit(recipe.crawl.seeds[0])
        server = serve_directory(args.serve, seed.hostname or "127.0.0.1", seed.port or 80)
        print(f"serving {args.serve} at {seed.scheme}://{seed.netloc}/")
    started = time.perf_counter()
    try:
        run_dir = run_recipe(recipe, args.flow)
    finally:
        if server is not None:
            server.shutdown()
    print(f"run folder: {run_dir}")
    for s in chain_order([json.loads(p.read_text(encoding="utf-8")) for p in Path(run_dir).glob("*/stats.json")]):
        print(f"  {s['stage']:<10} in {s['docs_in']:>6}  kept {s['docs_kept']:>6}  rejected {s['docs_rejected']:>6}  {s['rejected_by_reason']}")
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0


def chain_order(stats: list[dict]) -> list[dict]:
    """Return stage stats in the stage table's chain order (stages it does not list last, by name)."""
    from flows.stages import chain_position

    return sorted(stats, key=lambda s: (chain_position(s["stage"]), s["stage"]))


def cmd_step(args: argparse.Namespace) -> int:
    from flows.recipe import load_section
    from flows.stages import STAGE
    from tasks.records import read_jsonl, write_jsonl

    out = Path(args.output)
    rejected_out = out.with_name(out.name.removesuffix(".jsonl") + ".rejected.jsonl")
    stage = STAGE[args.stage]
    cfg = load_section(stage.config, args.config, stage.name)
    if stage.build_steps is None:  # the source stage: a seed list is crawled; a WARC, JSONL, Parquet or datasets dump is read
        from tasks.crawl.task import run_crawl_step

        warc = out.with_name(out.name.removesuffix(".jsonl") + ".warc.gz")
        kept, rejected, stats, bad = run_crawl_step(args.input, cfg, warc, args.max_field_bytes)
    else:
        from tasks.steps import run_steps

        docs, bad = read_jsonl(args.input, args.max_field_bytes)  # a bad line is an invalid_record reject naming its line, never an error
        result = run_steps(stage.name, stage.build_steps(cfg), docs, args.max_field_bytes)
        kept, rejected, stats = result.kept, result.rejected, result.stats
    write_jsonl(out, kept)
    write_jsonl(rejected_out, [*bad, *rejected])
    summary = {"stage": args.stage, **stats.to_dict(), "invalid_records": len(bad)}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    print(f"kept {len(kept)} → {out}; rejected {len(rejected) + len(bad)} → {rejected_out}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.set)
    configure_environment(recipe.run.runs_dir)
    from mlflow.exceptions import MlflowException

    from flows.evaluate import evaluate_references, metrics_table

    try:
        evaluated = evaluate_references(args.models, recipe)
    except MlflowException as e:  # an unknown model name, version or alias
        print(f"liandan: {e.message}", file=sys.stderr)
        return 2
    names = [m if len(m) <= 40 else "…" + m[-39:] for m in args.models]
    print(metrics_table(dict(zip(names, (result for result, _ in evaluated), strict=True))))
    for model, (result, url) in zip(args.models, evaluated, strict=True):
        print(f"{model}: {result.seconds:.1f} s, eval sets {result.eval_digest}, MLflow run {url}")
        for note in result.notes:
            print(f"  note: {note}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from tasks.store import audit_run

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        run_dir = Path(args.runs_dir) / args.run
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run folder {args.run!r} (nor {run_dir})")
    from flows.stages import chain_position

    rows = sorted(audit_run(run_dir), key=lambda r: chain_position(r.stage))  # stable: stages the table does not list keep their order
    if not rows:
        raise FileNotFoundError(f"{run_dir} holds no stage with a stats.json")
    print(f"{'stage':<10} {'upstream':<10} {'in':>8} {'kept':>8} {'rejected':>9}  on disk (kept/rejected)")
    for r in rows:
        print(f"{r.stage:<10} {r.upstream or '-':<10} {r.docs_in:>8} {r.docs_kept:>8} {r.docs_rejected:>9}  {r.kept_on_disk}/{r.rejected_on_disk}  {'ok' if not r.problems else 'UNBALANCED'}")
        for problem in r.problems:
            print(f"    {problem}")
    return 1 if any(r.problems for r in rows) else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve_directory

    server = serve_directory(args.folder, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving {args.folder} at http://{host}:{port}/ (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from flows.stages import RUN_CHOICES, STEP_STAGES
    from tasks.records import MAX_FIELD_BYTES

    parser = argparse.ArgumentParser(prog="liandan", description="炼丹: the open Chinese web to an aligned model, tracked in Prefect and MLflow.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole chain of a recipe")
    run.add_argument("recipe", help="recipe YAML, e.g. recipes/demo.yaml")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one recipe setting (value parsed as YAML); repeatable")
    run.add_argument("--flow", choices=RUN_CHOICES, default="all", help="the whole chain (default), or one of its flows on the recipe's run folder")
    run.add_argument("--serve", metavar="FOLDER", help="serve FOLDER over HTTP on the first seed's host:port while the chain runs (the demo's sample site)")
    run.set_defaults(func=cmd_run)

    step = sub.add_parser("step", help="run one stage on a JSONL file of records")
    step.add_argument("stage", choices=STEP_STAGES, help="stage name")
    step.add_argument("--input", required=True, help="JSONL records (for crawl: records whose url fields are the seeds, or a WARC / JSONL / Parquet / datasets dump to read)")
    step.add_argument("--output", required=True, help="JSONL of kept records; rejected rows go beside it as OUT.rejected.jsonl")
    step.add_argument("--config", help="YAML of the stage's section (defaults when omitted)")
    step.add_argument("--max-field-bytes", type=int, default=MAX_FIELD_BYTES, metavar="N", help=f"cap on one input line and one value's UTF-8 bytes: larger ones are rejected (default {MAX_FIELD_BYTES})")
    step.set_defaults(func=cmd_step)

    audit = sub.add_parser("audit", help="print a run's per-stage ledger; exit 1 if kept + rejected != input anywhere")
    audit.add_argument("run", help="run folder, or a run name under --runs-dir")
    audit.add_argument("--runs-dir", default="runs")
    audit.set_defaults(func=cmd_audit)

    evaluate = sub.add_parser("eval", help="evaluate saved models (HF folders or models:/name@alias) on the held-out sets and print their metrics side by side")
    evaluate.add_argument("models", nargs="+", metavar="MODEL_DIR_OR_REGISTRY_URI", help="a saved Hugging Face model folder, or an MLflow model URI such as models:/liandan-chat@champion")
    evaluate.add_argument("--recipe", default=str(Path(__file__).resolve().parent.parent / "recipes" / "demo.yaml"), help="recipe whose evaluate section, run folder and tracking settings are used (default: the demo's)")
    evaluate.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one recipe setting, e.g. evaluate.arith_problems=50; repeatable")
    evaluate.set_defaults(func=cmd_eval)

    serve = sub.add_parser("serve", help="serve a folder over HTTP on localhost (e.g. the sample site)")
    serve.add_argument("folder")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8731)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    from flows.recipe import RecipeError
    from tasks.crawl.inputs import InputError
    from tasks.records import RecordError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RecipeError, RecordError, FileNotFoundError, InputError) as e:
        print(f"liandan: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
