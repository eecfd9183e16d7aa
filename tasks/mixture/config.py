"""The mixture stage's config models: how sources are weighted and sampled to a budget (``MixtureConfig``),
and the DoReMi proxy training behind its adaptive mode (``DoremiConfig``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.train.config import ModelConfig


def tiny_proxy() -> ModelConfig:
    """Return the default proxy model: ~160K parameters with a 1K vocabulary, seconds per 100 steps on one core."""
    return ModelConfig(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=176)


class DoremiConfig(BaseModel):
    """DoReMi (Xie et al. 2023, arXiv 2305.10429): a reference model on a fixed mixture, then a proxy of the same size
    trained with Group DRO whose per-source weights rise with its excess loss over the reference; the answer is the
    weights averaged over the proxy's steps."""

    model_config = ConfigDict(extra="forbid")

    reference: Literal["uniform", "temperature"] = Field(
        "uniform",
        description="Mixture the reference model trains on: uniform over sources (the paper's choice), or the "
        "temperature weights of mixture.temperature.",
    )
    ref_steps: int = Field(200, ge=1, le=10_000_000, description="Optimizer steps of the reference model.")
    doremi_steps: int = Field(200, ge=1, le=10_000_000, description="Optimizer steps of the proxy model; the weights are updated once per step and averaged over all of them.")
    model: ModelConfig = Field(default_factory=tiny_proxy, description="Size of the reference and proxy models (both the same, as in the paper).")
    tokenizer_dir: str = Field(
        "",
        max_length=500,
        description="A saved tokenizer to encode the texts with (e.g. the run's tokenize stage); empty: train a "
        "byte-level BPE of vocab_size on the sampled texts in memory.",
    )
    vocab_size: int = Field(1024, ge=300, le=1_000_000, description="Vocabulary of the tokenizer trained on the fly (when tokenizer_dir is empty).")
    sample_chars: int = Field(
        2_000_000,
        ge=1_000,
        le=10_000_000_000,
        description="At most this many characters per source are read for the proxies (documents chosen by the same "
        "seeded hash as down-sampling), so the adaptive mode's memory does not grow with the corpus.",
    )
    seq_len: int = Field(128, ge=8, le=1_048_576, description="Tokens per training window.")
    batch_size: int = Field(
        16,
        ge=1,
        le=65_536,
        description="Windows per step, split evenly over the sources (at least one each): the per-source losses of "
        "every step are measured on the same number of tokens.",
    )
    learning_rate: float = Field(3e-3, gt=0, le=1, description="AdamW learning rate of both models (constant; tiny models take 1e-3–3e-3).")
    weight_decay: float = Field(0.1, ge=0, le=1, description="AdamW decoupled weight decay.")
    eta: float = Field(1.0, gt=0, le=100, description="Step size of the exponentiated-gradient weight update α ← α·exp(η·excess loss) (the paper's 1.0).")
    smoothing: float = Field(1e-3, ge=0, le=1, description="Each update mixes the weights with uniform by this share, so no source's weight reaches 0 (the paper's 1e-3).")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of both models' initialisation and of the windows sampled.")
    cpu_threads: int = Field(1, ge=0, le=1024, description="Torch intra-op threads while the proxies train; 0: torch's default. A tiny model gains nothing from more than 1.")


class MixtureConfig(BaseModel):
    """Per-source weights (static, temperature, or DoReMi's adaptive ones) and sampling to a character or token budget:
    down-sampling keeps a seeded subset, up-sampling repeats documents up to max_epochs."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["static", "temperature", "doremi"] = Field(
        "temperature",
        description="static: the weights below; temperature: p ∝ n^(1/T) over each source's characters n; doremi: "
        "weights learnt by small proxy models (see doremi).",
    )
    weights: dict[str, Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=dict,
        description="static: source → weight (any scale; normalised over the sources present). A named source with "
        "no documents is reported and its weight goes to the others.",
    )
    default_weight: float = Field(1.0, ge=0, le=1e9, description="static: weight of a source present in the data but not named in weights; 0 drops such sources.")
    temperature: float = Field(
        2.0,  # square-root sampling: a source 100× larger gets 10× the share; between mBERT's 1.43 and XLM-R's 3.33
        ge=1.0,
        le=1e6,
        description="temperature: T in p ∝ n^(1/T). 1 keeps the natural shares; larger flattens them towards uniform.",
    )
    budget_chars: int = Field(0, ge=0, le=10**15, description="Characters of the mixed corpus (repeats counted); 0: the natural total of the input.")
    budget_tokens: int = Field(0, ge=0, le=10**15, description="The budget in tokens instead (converted with chars_per_token); 0: use budget_chars. Not both.")
    chars_per_token: float = Field(
        1.5,  # a Chinese byte-level BPE of 32K–150K (Qwen2) encodes ~1.4–1.6 characters per token; see the tokenize stage's compression.json
        gt=0,
        le=100,
        description="Characters per token of the tokenizer the corpus will be trained with; converts budget_tokens to characters.",
    )
    max_epochs: int = Field(
        4,  # Muennighoff et al. 2023 (arXiv 2305.16264): up to ~4 epochs of repeated data are almost as good as new data
        ge=1,
        le=1000,
        description="Most copies of any document: a source's repeats stop here, and the budget it cannot take goes to "
        "the other sources. 1: never repeat (down-sampling only).",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of which documents are kept or repeated; the same seed gives the same sample.")
    doremi: DoremiConfig = Field(default_factory=DoremiConfig, description="doremi: the proxy training.")

    @model_validator(mode="after")
    def _one_budget(self) -> MixtureConfig:
        if self.budget_chars and self.budget_tokens:
            raise ValueError(f"set budget_chars ({self.budget_chars}) or budget_tokens ({self.budget_tokens}), not both")
        return self

    def budget(self, natural_chars: int) -> int:
        """Return the budget in characters, given the input's natural total."""
        if self.budget_tokens:
            return round(self.budget_tokens * self.chars_per_token)
        return self.budget_chars or natural_chars
