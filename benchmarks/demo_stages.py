"""By-hand benchmark: what each model stage of a finished demo run does on held-out data.

    PYTHONPATH=. python benchmarks/demo_stages.py runs/demo [--problems 200] [--json out.json]

Reads a run folder that `liandan run recipes/demo.yaml` (or `--flow train` then `--flow align`) wrote and measures,
with the evaluation stage's own functions (``tasks.evaluate``), every model it finds:

- pretraining: the per-source perplexity of the pack stage's held-out split at every ``pretrain.eval_steps``
  (from the newest checkpoint's ``trainer_state.json``: the curve the trainer logged), and ``ppl.heldout``
  (data/sample/eval/heldout_news.jsonl: People's Daily paragraphs of the second half of January 1998, which no
  stage trains on) of the base model and of every checkpoint still on disk;
- base, SFT, DPO, GRPO, the distilled student and its no-teacher baseline: ``ppl.heldout``, and ``arith.greedy``,
  ``arith.cot``, ``arith.self_consistency``, ``gen.format_rate`` on held-out problems of the cold-start curriculum
  (``make_problems(N, seed=0, level="curriculum")`` minus every question SFT's files and GRPO's generated set hold);
- distillation: the side-by-side of its summary (teacher, student, baseline: eval perplexity on the held-out
  instruction conversations);
- GRPO: the reward series of its summary (first, last, mean; reward std), and for every chat model the signal its
  accuracy reward would give GRPO (``reward_signal``): on GRPO's own training problems, sampled as GRPO samples
  (``num_generations`` a problem, its temperature and completion length), the share of completions the reward pays,
  the share of groups whose rewards differ (the only ones with an advantage), and the share of paid completions
  whose chain is right (``chain_score`` 1: the question's operands, true equations, the answer its result) — a paid
  answer after a wrong chain teaches the policy nothing it can repeat.

Nothing here was tuned on the held-out sets: the recipe's sizes were chosen on the pretraining loss, the SFT
split's loss and GRPO's training rewards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tasks.evaluate.arith import arithmetic_metrics, training_questions
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.likelihood import set_threads, text_perplexity
from tasks.evaluate.stage import load_model_and_tokenizer, read_texts
from tasks.store import resolve_data_path
from tasks.train.arithmetic import make_problems

STAGES = ("pretrain", "sft", "dpo", "grpo", "distill", "distill/baseline")


def stage_models(run_dir: Path) -> dict[str, Path]:
    """Return the model folders of the stages the run finished, by stage name (``base`` for pretraining)."""
    found = {}
    for stage in STAGES:
        model = run_dir / stage / "model"
        if (model / "config.json").exists():
            found["base" if stage == "pretrain" else stage.replace("/", "_")] = model
    return found


def pretrain_curve(run_dir: Path) -> list[dict]:
    """Return the pretraining's logged evaluations: ``{"step", "<source>": ppl}`` from the newest checkpoint's trainer state."""
    import math

    states = sorted((run_dir / "pretrain").glob("checkpoints/*/checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[-1]))
    if not states:
        return []
    history = json.loads(states[-1].read_text(encoding="utf-8"))["log_history"]
    rows: dict[int, dict] = {}  # the trainer logs one entry per source at each eval step
    for e in history:
        losses = {k[len("eval_") : -len("_loss")]: math.exp(v) for k, v in e.items() if k.startswith("eval_") and k.endswith("_loss")}
        if losses:
            rows.setdefault(e["step"], {"step": e["step"]}).update(losses)
    return list(rows.values())


def heldout_ppl(model_dir: Path, texts: list[str], cfg: EvalConfig) -> float:
    """Return ``ppl.heldout`` of one model folder (checkpoints included: they hold the weights and the config)."""
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.model import load_model_strict

    model = load_model_strict(str(model_dir))
    tokenizer = load_tokenizer(model_dir if (model_dir / "tokenizer.json").exists() else model_dir.parents[2] / "model")
    return text_perplexity(model, tokenizer, texts, cfg.max_length, cfg.batch_size).ppl


def held_out_curriculum(run_dir: Path, n: int) -> list:
    """Return the curriculum's held-out problems minus every question a training stage of the run sees."""
    from flows.recipe import load_recipe

    sft = json.loads((run_dir / "sft" / "summary.json").read_text(encoding="utf-8")) if (run_dir / "sft" / "summary.json").exists() else {}
    data = sft.get("data_paths") or [str(resolve_data_path(p)) for p in load_recipe(resolve_data_path("recipes/demo.yaml")).sft.data_paths]
    grpo = load_recipe(resolve_data_path("recipes/demo.yaml")).grpo
    seen = training_questions([str(resolve_data_path(p)) for p in data], [])
    seen |= {p.question for p in make_problems(grpo.num_problems, grpo.problem_seed, grpo.problem_level)}
    return [p for p in make_problems(n, seed=0, level="curriculum") if p.question not in seen]


def reward_signal(model, tokenizer, grpo) -> dict:
    """Return what GRPO's accuracy reward pays ``model`` on GRPO's training problems, sampled as GRPO samples them."""
    from tasks.train.arithmetic import to_prompt
    from tasks.train.config import GenerationSettings
    from tasks.train.generation import generate_texts
    from tasks.train.rewards import accuracy_reward, chain_score

    problems = make_problems(grpo.num_problems, grpo.problem_seed, grpo.problem_level)
    sampling = GenerationSettings(
        max_new_tokens=grpo.max_completion_length, temperature=grpo.temperature, num_return_sequences=grpo.num_generations, batch_size=16, seed=grpo.seed
    )
    groups = generate_texts(model, tokenizer, [to_prompt(p) for p in problems], sampling)
    paid = mixed = chain = 0
    for problem, group in zip(problems, groups, strict=True):
        rewards = accuracy_reward(group, answer=[problem.answer] * len(group))
        paid += sum(rewards)
        mixed += 0 < sum(rewards) < len(group)
        chain += sum(r == 1.0 and chain_score(problem.question, c) == 1.0 for r, c in zip(rewards, group))
    completions = len(problems) * grpo.num_generations
    return {"paid": paid / completions, "groups_with_signal": mixed / len(problems), "paid_with_right_chain": chain / paid if paid else 0.0}


def measure(run_dir: Path, n_problems: int, threads: int, only: list[str] | None = None, extra: dict[str, Path] | None = None) -> dict:
    """Return every figure of the run: the pretraining curve, per-model metrics, the distillation side-by-side, GRPO's rewards."""
    from flows.recipe import load_recipe

    cfg = EvalConfig(cpu_threads=threads)
    texts = read_texts(resolve_data_path(cfg.heldout_path))
    problems = held_out_curriculum(run_dir, n_problems)
    grpo = load_recipe(resolve_data_path("recipes/demo.yaml")).grpo
    previous = set_threads(threads)
    out: dict = {"run": str(run_dir), "problems": len(problems), "pretrain_curve": pretrain_curve(run_dir), "checkpoints": {}, "models": {}}
    try:
        for ckpt in sorted((run_dir / "pretrain").glob("checkpoints/*/checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])):
            out["checkpoints"][ckpt.name] = {"ppl.heldout": heldout_ppl(ckpt, texts, cfg)}
        for name, model_dir in (stage_models(run_dir) | (extra or {})).items():
            if only and name not in only and name not in (extra or {}):
                continue
            started = time.perf_counter()
            model, tokenizer = load_model_and_tokenizer(model_dir)
            metrics = {"ppl.heldout": text_perplexity(model, tokenizer, texts, cfg.max_length, cfg.batch_size).ppl}
            arith, samples = arithmetic_metrics(model, tokenizer, problems, cfg)
            if name in ("sft", "dpo", "grpo"):  # the chat models: what GRPO's accuracy reward would see from each
                arith |= {f"grpo_signal.{k}": v for k, v in reward_signal(model, tokenizer, grpo).items()}
            out["models"][name] = metrics | arith | {"seconds": time.perf_counter() - started, "samples": samples[:3]}
            print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in (metrics | arith).items()), flush=True)
    finally:
        set_threads(previous)
    for stage in ("distill", "grpo"):
        path = run_dir / stage / "summary.json"
        if path.exists():
            summary = json.loads(path.read_text(encoding="utf-8"))
            if stage == "distill":
                out["distill"] = {who: summary[who] for who in ("teacher", "student", "baseline") if who in summary}
            else:
                out["grpo"] = {k: summary.get(k) for k in ("rewards", "reward_std", "first_loss", "last_loss", "steps")}
    return out


def markdown(result: dict) -> str:
    """Return the figures as the README's tables."""
    lines = ["| step | " + " | ".join(k for k in result["pretrain_curve"][0] if k != "step") + " |"] if result["pretrain_curve"] else []
    if lines:
        lines.append("|---" * len(result["pretrain_curve"][0]) + "|")
        lines += [f"| {r['step']} | " + " | ".join(f"{v:.1f}" for k, v in r.items() if k != "step") + " |" for r in result["pretrain_curve"]]
    lines += ["", "| checkpoint | ppl.heldout |", "|---|---|"] + [f"| {k} | {v['ppl.heldout']:.1f} |" for k, v in result["checkpoints"].items()]
    keys = ["ppl.heldout", "arith.greedy", "arith.cot", "arith.self_consistency", "gen.format_rate", "grpo_signal.paid", "grpo_signal.groups_with_signal", "grpo_signal.paid_with_right_chain"]
    lines += ["", "| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{m.get(k, float('nan')):.3f}" for k in keys) + " |" for name, m in result["models"].items()]
    if "distill" in result:
        lines += ["", "| distillation | parameters | eval_ppl |", "|---|---|---|"]
        lines += [f"| {who} | {r['parameters']:,} | {r['eval_ppl']:.1f} |" for who, r in result["distill"].items()]
    if "grpo" in result and result["grpo"]["rewards"]:
        lines += ["", "| GRPO series | first | last | mean | max |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['first']:.3f} | {v['last']:.3f} | {v['mean']:.3f} | {v['max']:.3f} |" for k, v in result["grpo"]["rewards"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure each model stage of a finished demo run on held-out data.")
    parser.add_argument("run", type=Path, help="the run folder, e.g. runs/demo")
    parser.add_argument("--problems", type=int, default=200, help="held-out curriculum problems generated (seed 0) before training questions are dropped")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--models", nargs="*", help="measure only these (base, sft, dpo, grpo, distill, distill_baseline); default: all found")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--extra", nargs="*", default=[], metavar="NAME=DIR", help="also measure these model folders (e.g. a GRPO variant trained by hand)")
    args = parser.parse_args(argv)
    extra = {name: Path(path) for name, path in (e.split("=", 1) for e in args.extra)}
    result = measure(args.run, args.problems, args.threads, args.models, extra)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    assert result["models"], f"no finished model stage under {args.run}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
