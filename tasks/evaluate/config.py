"""The evaluate stage's config: which held-out sets, how answers are generated and voted, and what the gate compares."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MetricName = Annotated[str, Field(pattern=r"^(ppl|arith|icl|mc|gen)\.[A-Za-z0-9_.-]+$", max_length=100)]


class EvalConfig(BaseModel):
    """Evaluation after every model stage: held-out perplexity, arithmetic (greedy, chain-of-thought,
    self-consistency), in-context sentiment, multiple choice, answer format — and the gate that promotes the
    chat model to ``champion`` only when it is no worse than the current one."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Evaluate after pretraining and after every alignment stage, compare the stages and gate `liandan-chat`; off: none of it (the chain trains only)."
    )
    heldout_path: str = Field(
        "data/sample/eval/heldout_news.jsonl",
        min_length=1,
        max_length=500,
        description="JSON lines with `text`: the fixed held-out texts of `ppl.heldout`, which no stage trains on (bundled: People's Daily 1998 paragraphs).",
    )
    eval_sequences: int = Field(64, ge=0, le=1_000_000, description="`ppl.<source>`: at most this many of the pack stage's held-out sequences per source; 0: skip.")
    max_length: int = Field(256, ge=8, le=131_072, description="Perplexity window in tokens: longer texts are scored in consecutive windows of this size.")
    arith_problems: int = Field(200, ge=0, le=100_000, description="Held-out arithmetic word problems; 0: no arithmetic metrics.")
    arith_seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Seed of the held-out problems (SFT's bundled set uses 3, DPO 1, GRPO 2; any question a training stage sees is dropped anyway)."
    )
    arith_level: Literal["all", "curriculum"] = Field(
        "all",
        description="Kind of held-out problems: all (the eight templates: two-step sums, ×, ÷, change) or curriculum (one- and two-digit + and −, "
        "a third in Chinese numerals: what the demo's cold start teaches a tiny model).",
    )
    direct_max_new_tokens: int = Field(24, ge=1, le=4096, description="`arith.greedy`: longest direct answer, in tokens.")
    cot_max_new_tokens: int = Field(96, ge=1, le=8192, description="`arith.cot` and `arith.self_consistency`: longest reasoning chain, in tokens.")
    self_consistency_k: int = Field(4, ge=1, le=64, description="`arith.self_consistency`: chains sampled per problem; the majority of their normalised answers is the answer.")
    temperature: float = Field(0.7, gt=0, le=2, description="`arith.self_consistency`: sampling temperature of the chains.")
    top_p: float = Field(0.95, gt=0, le=1, description="`arith.self_consistency`: nucleus sampling threshold.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the sampled chains.")
    sentiment_path: str = Field(
        "data/sample/eval/sentiment.jsonl",
        max_length=500,
        description="JSON lines with `text`, `label` (正向/负向) and `split` (demo: in-context examples; test: scored); empty: no ICL metrics.",
    )
    icl_shots: list[Annotated[int, Field(ge=0, le=16)]] = Field(
        [0, 3], max_length=8, description="`icl.sentiment.k<N>`: in-context examples put before each review (0: the instruction alone)."
    )
    mc_paths: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        ["data/sample/eval/mc_sample.csv"],
        max_length=1000,
        description="C-Eval/CMMLU-format CSV files (id, question, A, B, C, D, answer) for `mc.accuracy`; point them at your own C-Eval download.",
    )
    mc_scoring: Literal["mean", "sum"] = Field(
        "mean", description="Option likelihood: mean log-probability per token (long options not penalised) or the sum (the option's probability)."
    )
    batch_size: int = Field(32, ge=1, le=65_536, description="Sequences per forward pass when scoring likelihoods and perplexity.")
    generation_batch_size: int = Field(64, ge=1, le=65_536, description="Prompts per generate call (self-consistency: each with its k chains).")
    cpu_threads: int = Field(0, ge=0, le=1024, description="Torch intra-op threads while evaluating; 0: leave the process's setting.")
    samples_logged: int = Field(8, ge=0, le=1000, description="Arithmetic answers logged as an MLflow table (question, reference, greedy, chain, votes).")
    registered_model: str = Field(
        "liandan-chat", pattern=r"^[A-Za-z0-9._-]*$", max_length=200, description="Registry name of the chain's final chat model; empty: no registration and no gate."
    )
    champion_alias: str = Field("champion", pattern=r"^[A-Za-z0-9_-]+$", max_length=100, description="Alias the gate moves to a version that is no worse than the current holder.")
    gate_metrics: list[MetricName] = Field(
        ["arith.self_consistency", "ppl.heldout"],
        max_length=50,
        description="Metrics the gate compares with the champion's on the same eval sets (`ppl.*`: lower is better; the rest: higher).",
    )
    gate_tolerance: float = Field(0.0, ge=0, le=1, description="A metric counts as no worse when within this share of the champion's value (0: equal or better).")


# Settings that change no metric: a done-record of an evaluation does not depend on them, so re-tuning the gate
# or the logging never re-evaluates a model (tasks/evaluate/stage.py, flows/evaluate.py).
UNMEASURED_FIELDS = frozenset({"enabled", "cpu_threads", "samples_logged", "registered_model", "champion_alias", "gate_metrics", "gate_tolerance"})


def measured_settings(cfg: EvalConfig) -> EvalConfig:
    """Return ``cfg`` with every setting that changes no metric at its default (what an evaluation's done-record is keyed by)."""
    return EvalConfig(**cfg.model_dump(exclude=set(UNMEASURED_FIELDS)))
