"""The quality stage's config models; their fields are the flow parameters and the recipe section.

Defaults were tuned on the dev half of benchmarks/quality_eval.py (real news pages, their boilerplate, word salad,
spam, reviews) and checked on the sample site: the labels are the seed set plus the chain's evidence (held-out
reference articles, the demo site's boilerplate, corruptions of the high examples, the clean stage's rejects), and
the classifier reads the reference LM's frequent-pair perplexity (features.py). On the demo data flow no news
article or product page is tiered low (news 9 high / 1 medium, product 2 / 4); the only document sent to low is
the site's front page, a list of links. The tests keep these honest.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.clean.stage import CleanReason
from tasks.store import resolve_data_path

QualityLabel = Literal["high", "medium", "low"]
TierAction = Literal["keep", "strict", "reject"]
Corruption = Literal["shuffled_words", "keyword_stuffing", "repeated", "shuffled_sentences", "truncated"]

LABELS: tuple[QualityLabel, ...] = ("high", "medium", "low")
NgramBound = Annotated[int, Field(ge=1, le=8)]

# Clean-stage reasons that make a rejected document a good `low` example: what it was dropped for is what
# the classifier should learn to call low. too_short, too_long, not_chinese and the stop-word rules are not
# here: a short or foreign text tells the classifier nothing about Chinese prose quality.
DEFAULT_WEAK_LOW_REASONS: list[CleanReason] = [
    "spam_gambling",
    "spam_porn",
    "spam_game",
    "spam_scam",
    "spam_loan",
    "spam_seo",
    "spam_loan",
    "low_entropy",
    "repetitive_lines",
    "repetitive_ngrams",
    "mojibake",
    "chatter",
]


resolve_path = resolve_data_path  # the name this stage's modules use


class AnnotatorConfig(BaseModel):
    """Optional LLM labelling through any OpenAI-compatible endpoint (DeepSeek, a local Ollama, vLLM …): documents
    from the weak-label folders are sent to POST {base_url}/chat/completions and the reply's label joins the training
    set. The API key is read from the environment variable named here, never from the config."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Ask the LLM for labels; off, no request is ever made.")
    base_url: str = Field(
        default="http://127.0.0.1:11434/v1",  # Ollama's OpenAI-compatible API; DeepSeek: https://api.deepseek.com
        min_length=1,
        max_length=2000,
        description="Base URL of the OpenAI-compatible API; /chat/completions is appended.",
    )
    model: str = Field(default="qwen2.5:7b", min_length=1, max_length=200, description="Model name sent in each request.")
    api_key_env: str = Field(
        default="LIANDAN_LLM_API_KEY",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable that holds the API key (sent as a Bearer token). Unset: no "
        "Authorization header (a local Ollama needs none).",
    )
    max_docs: int = Field(default=200, ge=1, le=1_000_000, description="At most this many documents are sent.")
    max_chars: int = Field(
        default=1500,
        ge=50,
        le=100_000,
        description="Each document is cut to its first this-many characters before it is sent (cost and context).",
    )
    timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0, description="Seconds to wait for one reply.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature of the request.")


class StrictConfig(BaseModel):
    """Stricter thresholds on the clean stage's stored ``signals``, applied to documents whose tier action is
    ``strict``; each failing check rejects with reason ``quality_strict_<signal>``. 0 (for a minimum) or 1 / the
    upper bound (for a maximum) turns a check off."""

    model_config = ConfigDict(extra="forbid")

    max_spam_hits: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Most spam-category keyword hits (signals `spam_<category>`, summed) allowed; the clean stage allows "
        "a few when they are sparse. Reason quality_strict_spam_hits.",
    )
    max_spam_contact: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Most contact calls (加微信, QQ群 …, signals.spam_contact) allowed. Reason quality_strict_spam_contact.",
    )
    max_chatter_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Most share of laughter, fillers and emoji (signals.chatter_ratio); clean allows 0.5. "
        "Reason quality_strict_chatter_ratio.",
    )
    min_chars: int = Field(
        default=120,
        ge=0,
        le=1_000_000,
        description="Fewest characters (signals.n_chars); clean asks for 50. Reason quality_strict_n_chars.",
    )
    max_dup_line_char_ratio: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Most share of characters in repeated lines (signals.dup_line_char_ratio); clean allows 0.2. "
        "Reason quality_strict_dup_line_char_ratio.",
    )
    max_dup_sentence_char_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Most share of characters in repeated sentences (signals.dup_sentence_char_ratio); clean allows 0.3. "
        "Reason quality_strict_dup_sentence_char_ratio.",
    )
    max_top_2gram_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Most share of word characters in the most frequent word 2-gram (signals.top_2gram_ratio); clean "
        "allows 0.2. Reason quality_strict_top_2gram_ratio.",
    )
    max_symbol_ratio: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Most share of digits and symbols (signals.symbol_ratio); clean allows 0.35. "
        "Reason quality_strict_symbol_ratio.",
    )
    min_stopword_ratio: float = Field(
        default=0.12,
        ge=0.0,
        le=1.0,
        description="Fewest share of stop words among the words (signals.stopword_ratio); clean asks for 0.06, news "
        "prose is ~0.25. Reason quality_strict_stopword_ratio.",
    )
    min_char_entropy: float = Field(
        default=6.0,
        ge=0.0,
        le=20.0,
        description="Fewest bits of character entropy (signals.char_entropy); clean asks for 5.0. "
        "Reason quality_strict_char_entropy.",
    )


class QualityConfig(BaseModel):
    """Quality classification: a linear model over hashed jieba words and character n-grams scores each document
    0-1 and puts it in a tier (high / medium / low); each tier is kept, re-checked with stricter thresholds, or
    rejected as the actions say. Trained from a labelled seed set, weak labels from the clean stage's rejects
    and, optionally, an LLM annotator."""

    model_config = ConfigDict(extra="forbid")

    # ---- labels
    seed_path: str = Field(
        default="data/sample/quality/seed.jsonl",
        min_length=1,
        max_length=2000,
        description="Labelled JSONL ({text, label, reason} per line) the classifier is trained on. A relative path is "
        "looked up in the working directory, then in the project folder (where the bundled seed set lives).",
    )
    label_paths: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="More labelled JSONL files of the same shape (your own labels, earlier LLM annotations).",
    )
    weak_labels: bool = Field(
        default=True,
        description="Add weak labels from the clean stage's folders given to the training task: rejected documents "
        "whose reason is in weak_low_reasons become `low`; kept documents of the sources in weak_source_labels get "
        "that label.",
    )
    weak_low_reasons: list[CleanReason] = Field(
        default=DEFAULT_WEAK_LOW_REASONS,
        max_length=18,
        description="Clean-stage rejection reasons whose documents are `low` examples.",
    )
    weak_source_labels: dict[str, QualityLabel] = Field(
        default_factory=dict,
        description="Kept documents of these sources get this label (e.g. {news: high} for a curated news feed).",
    )
    weak_max_per_label: int = Field(
        default=2000,
        ge=0,
        le=10_000_000,
        description="At most this many weak examples per label (a seeded sample), so weak labels cannot drown the "
        "hand-labelled ones.",
    )
    min_chars: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Labelled and weak examples shorter than this are left out of training.",
    )
    reference_path: str = Field(
        default="data/sample/quality/reference.txt.gz",
        min_length=1,
        max_length=2000,
        description="Clean reference text (UTF-8, one paragraph a line, .gz allowed) the reference LM is trained on, "
        "with the kept documents of the sources weak_source_labels marks high. Bundled: People's Daily, Jan 1998.",
    )
    reference_order: int = Field(
        default=3,  # order 4: 2.1x the keys, ~4x slower to score, perplexity on held-out news 44 vs 49: not worth it
        ge=1,
        le=6,
        description="Characters per n-gram of the reference LM (3: a character and the two before it).",
    )
    reference_label_share: float = Field(
        default=0.2,
        ge=0.0,
        le=0.9,
        description="Share of the reference paragraphs (and of the trusted sources' documents, by id) held out of the "
        "LM and used as `high` examples instead: a text the LM was trained on would look better than new news does.",
    )
    reference_max_examples: int = Field(
        default=400,  # quality_eval dev half: AUC 0.94 at 100, 0.96 at 400 (with the evidence defaults below)
        ge=0,
        le=1_000_000,
        description="At most this many `high` examples from the reference set (articles of 2-6 paragraphs).",
    )
    boilerplate_paths: list[str] = Field(
        default_factory=lambda: ["data/sample/site"],  # the bundled demo site: 68 blocks of nav, lists, footers
        max_length=100,
        description="HTML files or folders: the visible text of each page that the extract stage does not keep "
        "(navigation, related lists, footers) becomes `low` examples, one per block of consecutive lines.",
    )
    boilerplate_max: int = Field(
        default=2000, ge=0, le=10_000_000, description="At most this many boilerplate examples (a seeded sample)."
    )
    corruptions: bool = Field(
        default=True,
        description="Make examples from the `high` ones: shuffled words, keyword stuffing and a repeated sentence "
        "(`low`), shuffled sentences and truncated fragments (`medium`).",
    )
    corruption_kinds: list[Corruption] = Field(
        default=["shuffled_words", "keyword_stuffing", "shuffled_sentences", "truncated"],
        max_length=5,
        description="Which corruptions to make. `repeated` is left out by default: the clean stage already rejects "
        "repeated lines (weak labels bring those rejects in), and a sentence repeated has the normalised n-gram "
        "counts of the sentence itself (quality_eval dev half: AUC 0.96 without it; 0.90 with it and a repeated-lines "
        "feature, which taught the classifier little else).",
    )
    corruptions_per_kind: int = Field(
        default=100, ge=0, le=1_000_000, description="At most this many examples of each corruption."
    )

    # ---- features and model (stored with the model: scoring always uses the model's own settings)
    hash_bits: int = Field(
        default=20,  # 2^20 buckets per block, 2M in all: fastText's default bucket count
        ge=10,
        le=24,
        description="Each feature block (jieba word n-grams, character n-grams) is hashed into 2^hash_bits buckets.",
    )
    word_ngram_range: list[NgramBound] = Field(
        default=[1, 2],
        min_length=2,
        max_length=2,
        description="Smallest and largest jieba word n-gram hashed (fastText's wordNgrams=2 is [1, 2]).",
    )
    char_ngram_range: list[NgramBound] = Field(
        default=[1, 3],
        min_length=2,
        max_length=2,
        description="Smallest and largest character n-gram hashed.",
    )
    max_chars: int = Field(
        default=3000,
        ge=50,
        le=10_000_000,
        description="Only the first this-many characters of a document are featurised: quality shows in a page's "
        "opening, and a book must not cost a thousand pages.",
    )
    ppl_weight: float = Field(
        default=10.0,  # quality_eval dev half, evidence labels: AUC 0.96 at 10 (C 0.1), 0.89 at 5 (C 0.3); 0 seed-only: 0.90
        ge=0.0,
        le=100.0,
        description="Scale of the dense block (the reference LM's perplexity over frequent-character pairs, its ratio "
        "to their unigram perplexity, line layout) beside the hashed blocks; 0 leaves it out of the classifier "
        "(ppl_ref is still stored).",
    )
    C: float = Field(
        default=0.1,  # with the evidence labels (quality_eval dev half): AUC 0.96 at 0.1, 0.91 at 1; the seed set alone preferred 1-3
        gt=0.0,
        le=1e6,
        description="Inverse L2 regularisation strength of the logistic regression (larger fits the labels closer).",
    )
    max_iter: int = Field(
        default=200, ge=10, le=100_000, description="Most Newton-CG iterations of the fit (6 suffice on the seed set)."
    )
    class_weight: Literal["balanced", "none"] = Field(
        default="balanced",
        description="balanced: weigh each label by the inverse of its frequency, so a flood of weak `low` labels "
        "does not bias the scores.",
    )
    balance_origins: bool = Field(
        default=False,  # quality_eval dev half: AUC 0.954 on, 0.964 off; spam tiered low 9% either way
        description="Within each label, weigh every label source (seed file, reference, boilerplate, each corruption, "
        "weak, llm) the same in all, so the most plentiful source does not decide what the label means.",
    )
    test_fraction: float = Field(
        default=0.25,
        ge=0.05,
        le=0.5,
        description="Share of the labelled examples held out (stratified by label) for accuracy, F1 and the confusion "
        "matrix.",
    )
    refit_on_all: bool = Field(
        default=False,
        description="After evaluation, fit the saved model on every example, held-out ones included. Off, the saved "
        "model is exactly the one the held-out metrics measure.",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the split and of the weak-label samples.")

    # ---- scoring and routing
    high_cutoff: float = Field(
        default=0.65,
        gt=0.0,
        lt=1.0,
        description="quality_score = P(high) + 0.5·P(medium); a score at or above this is tier high.",
    )
    low_cutoff: float = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="A score below this is tier low; between the cut-offs, medium. Must be below high_cutoff.",
    )
    max_ppl_ref: float = Field(
        default=0.0,
        ge=0.0,
        le=1e9,
        description="Reject a document whose reference-LM perplexity (ppl_ref) is above this, whatever its tier "
        "(reason quality_ppl); 0 turns the threshold off.",
    )
    ppl_head_max: float = Field(
        default=60.0,
        gt=0.0,
        le=1e9,
        description="ppl_bucket head: ppl_ref at or below this (CCNet's head/middle/tail split).",
    )
    ppl_tail_min: float = Field(
        default=150.0,
        gt=0.0,
        le=1e9,
        description="ppl_bucket tail: ppl_ref above this; between the two, middle. Must not be below ppl_head_max.",
    )
    high_action: TierAction = Field(default="keep", description="What happens to a high-tier document.")
    medium_action: TierAction = Field(
        default="strict",
        description="What happens to a medium-tier document: keep, strict (kept only if it passes the strict "
        "thresholds), or reject (reason quality).",
    )
    low_action: TierAction = Field(default="reject", description="What happens to a low-tier document.")
    strict: StrictConfig = Field(default_factory=StrictConfig, description="Thresholds of the strict action.")
    batch_size: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description="Documents featurised and scored at once (memory: ~max_chars × 3 hashed features each).",
    )

    # ---- registry
    registered_model: str = Field(
        default="liandan-quality",
        min_length=1,
        max_length=200,
        description="Name of the classifier in the MLflow Model Registry.",
    )
    model_version: str = Field(
        default="",
        max_length=200,
        description="Registry version (a number) or alias (e.g. champion) to score with; empty: train a new model in "
        "this run and score with it.",
    )
    annotator: AnnotatorConfig = Field(default_factory=AnnotatorConfig, description="Optional LLM annotator.")

    @model_validator(mode="after")
    def _ordered(self) -> QualityConfig:
        if self.low_cutoff >= self.high_cutoff:
            raise ValueError(f"low_cutoff {self.low_cutoff} must be below high_cutoff {self.high_cutoff}")
        if self.ppl_tail_min < self.ppl_head_max:
            raise ValueError(f"ppl_tail_min {self.ppl_tail_min} must not be below ppl_head_max {self.ppl_head_max}")
        for name in ("word_ngram_range", "char_ngram_range"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} [{lo}, {hi}]: the smallest n-gram must not exceed the largest")
        return self

    def action(self, tier: QualityLabel) -> TierAction:
        """Return the configured action for a tier."""
        return {"high": self.high_action, "medium": self.medium_action, "low": self.low_action}[tier]
