"""The tokenize stage's config models: the tokenizer to train (``TokenizerConfig``) and how the corpus is
encoded and packed into training sequences (``PackConfig``). Their fields are flow parameters and recipe sections."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TokenizerConfig(BaseModel):
    """Byte-level BPE tokenizer trained on the corpus: vocabulary size, special tokens, optional jieba pre-segmentation."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(
        4096,  # the demo corpus is small; real Chinese corpora want 32K–150K (Qwen2: 151,646)
        ge=300,
        le=1_000_000,
        description="Target vocabulary size, special tokens and the 256 byte symbols included. Training stops "
        "earlier when no pair occurs min_frequency times.",
    )
    min_frequency: int = Field(2, ge=1, le=1_000_000, description="A pair is merged only if it occurs at least this often in the training text.")
    pre_segment: Literal["none", "jieba"] = Field(
        "none",
        description="Split runs of Han characters into jieba words before BPE, so no merge crosses a word boundary. "
        "Measured by benchmarks/tokenize_throughput.py: it lowers compression; generic loaders (AutoTokenizer "
        "outside liandan) do not re-run jieba.",
    )
    split_digits: bool = Field(
        True,  # Llama and Qwen do this: arithmetic sees one token per digit, whatever the number
        description="Give every digit its own pre-token (no multi-digit tokens); off: up to 3 digits per token.",
    )
    max_train_docs: int = Field(0, ge=0, le=1_000_000_000, description="Train the tokenizer on at most this many documents, in shard order; 0: all.")
    report_docs: int = Field(2000, ge=1, le=10_000_000, description="Documents sampled (in shard order) for the compression report (chars per token per source).")
    bos_token: str = Field("<|startoftext|>", min_length=1, max_length=64, description="Beginning-of-sequence special token (not added by encoding: packing separates documents with eos).")
    eos_token: str = Field("<|endoftext|>", min_length=1, max_length=64, description="End-of-document special token, appended after every document when packing.")
    pad_token: str = Field("<|pad|>", min_length=1, max_length=64, description="Padding special token; distinct from eos so masking padding never masks a real end of document.")
    chat_start_token: str = Field("<|im_start|>", min_length=1, max_length=64, description="Opens a chat turn in the chat template (`<|im_start|>role\\n…`).")
    chat_end_token: str = Field("<|im_end|>", min_length=1, max_length=64, description="Closes a chat turn; chat models stop generating at it.")
    extra_special_tokens: list[str] = Field(default_factory=list, max_length=1000, description="More special tokens reserved in the vocabulary (tool calls, reasoning markers, …).")
    added_tokens: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Strings added whole to the vocabulary, one token each, and kept in decoded text (decoding drops special tokens, so a "
        "tag a reward reads must be one of these): e.g. the reasoning format's `<think>`, `</think>`, `<answer>`, `</answer>`, 6–9 byte tokens each otherwise.",
    )

    @property
    def special_tokens(self) -> list[str]:
        """Return the special tokens in id order: eos gets id 0, pad 1, bos 2, then the chat and extra tokens."""
        return [self.eos_token, self.pad_token, self.bos_token, self.chat_start_token, self.chat_end_token, *self.extra_special_tokens]

    @model_validator(mode="after")
    def _distinct_special_tokens(self) -> TokenizerConfig:
        tokens = self.special_tokens
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"special tokens must be distinct, got {tokens}")
        if len(set(self.added_tokens)) != len(self.added_tokens) or set(self.added_tokens) & set(tokens):
            raise ValueError(f"added_tokens must be distinct from each other and from the special tokens, got {self.added_tokens}")
        if self.vocab_size < 256 + len(tokens) + 1:
            raise ValueError(f"vocab_size {self.vocab_size} leaves no room for merges after 256 bytes and {len(tokens)} special tokens")
        return self


class PackConfig(BaseModel):
    """Encoding the corpus and packing it into fixed-length training sequences, with a held-out evaluation split."""

    model_config = ConfigDict(extra="forbid")

    seq_len: int = Field(256, ge=8, le=1_048_576, description="Tokens per training sequence (the model's context length during pretraining).")
    strategy: Literal["concat", "best_fit"] = Field(
        "concat",
        description="concat: documents joined with eos and cut every seq_len tokens (waste: one padded tail per "
        "source and shard; a document may span two sequences). best_fit: documents longer than seq_len are cut, "
        "pieces go whole into the fullest sequence they fit (best-fit decreasing; fewer truncations, more padding).",
    )
    eval_fraction: float = Field(
        0.05,
        ge=0.0,
        le=0.5,
        description="Share of documents (chosen by a hash of their id, so stable across reruns) held out for "
        "evaluation; they are packed per source, so perplexity is reported per source.",
    )
    encode_batch_docs: int = Field(4096, ge=1, le=1_000_000, description="Documents per batched encode call (the tokenizer parallelises inside a batch; larger batches keep its threads busier).")
