"""Train a byte-level BPE tokenizer with HF ``tokenizers`` and wrap it as a ``transformers`` fast tokenizer.

Byte-level, with no normalizer: every string (Chinese, emoji, 𠮷 outside the BMP) encodes and decodes back
exactly, and no character is ever unknown. The pre-tokenizer is Qwen2's split regex (letters, single digits,
punctuation runs, whitespace), so a run of Han characters is one pre-token and merges form inside it.
With ``pre_segment="jieba"`` Han runs are cut into jieba words first. That step is Python and cannot be
serialized into ``tokenizer.json``: the saved file holds the plain pipeline and ``liandan_tokenizer.json``
says to re-attach jieba, which ``load_tokenizer`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import NormalizedString, PreTokenizedString, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tasks.tokenize.compression import HAN_RUN
from tasks.tokenize.config import TokenizerConfig

TOKENIZER_VERSION = "bbpe_v1"
SIDECAR = "liandan_tokenizer.json"

# Qwen2's pre-tokenizer regex (tokenizer.json of Qwen/Qwen2-0.5B), with the digit rule configurable.
_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|DIGITS| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# ChatML, as Qwen uses; {% generation %} marks what the assistant says, so
# apply_chat_template(..., return_assistant_tokens_mask=True) gives the assistant-only loss mask.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def split_pattern(split_digits: bool) -> str:
    """Return the pre-tokenizer regex: one digit per pre-token, or up to three."""
    return _SPLIT.replace("DIGITS", r"\p{N}" if split_digits else r"\p{N}{1,3}")


class JiebaSegmenter:
    """A tokenizers pre-tokenizer that cuts each run of Han characters into jieba words; other text passes whole.

    Holds its own ``jieba.Tokenizer`` (the dictionary loads once per instance, ~1 s), never jieba's global one.
    """

    def __init__(self) -> None:
        import jieba

        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()

    def words(self, text: str) -> list[tuple[int, int]]:
        """Return (start, end) character spans covering ``text``: jieba words inside Han runs, the rest as is."""
        spans: list[tuple[int, int]] = []
        pos = 0
        for run in HAN_RUN.finditer(text):
            if run.start() > pos:
                spans.append((pos, run.start()))
            spans.extend((run.start() + a, run.start() + b) for _, a, b in self._jieba.tokenize(run.group()))
            pos = run.end()
        if pos < len(text):
            spans.append((pos, len(text)))
        return spans

    def _split(self, _i: int, piece: NormalizedString) -> list[NormalizedString]:
        return [piece[a:b] for a, b in self.words(str(piece))]

    def pre_tokenize(self, pretok: PreTokenizedString) -> None:
        pretok.split(self._split)


def pre_tokenizer(cfg: TokenizerConfig, segmenter: JiebaSegmenter | None = None) -> pre_tokenizers.PreTokenizer:
    """Return the pre-tokenizer pipeline; with a segmenter, jieba runs first (not serializable)."""
    steps = [
        pre_tokenizers.Split(Regex(split_pattern(cfg.split_digits)), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ]
    if segmenter is not None:
        steps.insert(0, pre_tokenizers.PreTokenizer.custom(segmenter))
    return pre_tokenizers.Sequence(steps)


def train_bpe(texts: Iterable[str], cfg: TokenizerConfig, segmenter: JiebaSegmenter | None = None) -> Tokenizer:
    """Return a byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts`` (streamed, never held in memory).

    ``segmenter`` is used when ``cfg.pre_segment`` is jieba (one is built when not given).
    """
    if cfg.pre_segment == "jieba" and segmenter is None:
        segmenter = JiebaSegmenter()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer(cfg, segmenter if cfg.pre_segment == "jieba" else None)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=cfg.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not: nothing is ever unknown
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def wrap_tokenizer(tok: Tokenizer, cfg: TokenizerConfig) -> PreTrainedTokenizerFast:
    """Return ``tok`` as a transformers fast tokenizer with bos/eos/pad, the chat tokens, the added tokens and the chat template."""
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=cfg.bos_token,
        eos_token=cfg.eos_token,
        pad_token=cfg.pad_token,
        extra_special_tokens=[cfg.chat_start_token, cfg.chat_end_token, *cfg.extra_special_tokens],
        chat_template=CHAT_TEMPLATE.replace("<|im_start|>", cfg.chat_start_token).replace("<|im_end|>", cfg.chat_end_token),
        clean_up_tokenization_spaces=False,  # decode must give back the exact text
    )
    wrapped.add_tokens(list(cfg.added_tokens))  # plain (not special) tokens: matched whole in any text, kept when decoding
    return wrapped


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, segmenter: JiebaSegmenter | None = None) -> PreTrainedTokenizerFast:
    """Return a fast tokenizer trained on ``texts`` with ``cfg``."""
    if cfg.pre_segment == "jieba" and segmenter is None:
        segmenter = JiebaSegmenter()
    tok = train_bpe(texts, cfg, segmenter)
    if cfg.pre_segment != "jieba":
        return wrap_tokenizer(tok, cfg)
    tok.pre_tokenizer = pre_tokenizer(cfg)  # the wrapper deep-copies the tokenizer, and a Python pre-tokenizer cannot be copied
    wrapped = wrap_tokenizer(tok, cfg)
    wrapped.backend_tokenizer.pre_tokenizer = pre_tokenizer(cfg, segmenter)
    return wrapped


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out_dir: str | Path, cfg: TokenizerConfig | None, extra: dict | None = None) -> Path:
    """Save with ``save_pretrained`` plus the liandan sidecar (version, config, ``extra``); return the folder.

    ``cfg`` is None for a tokenizer that liandan did not train (a base model's own).
    """
    out = Path(out_dir)
    backend = tokenizer.backend_tokenizer
    live = backend.pre_tokenizer
    if cfg is not None and cfg.pre_segment == "jieba":
        backend.pre_tokenizer = pre_tokenizer(cfg)  # the serializable part; load_tokenizer re-attaches jieba
    try:
        tokenizer.save_pretrained(str(out))
    finally:
        backend.pre_tokenizer = live
    sidecar = {"version": TOKENIZER_VERSION, "config": cfg.model_dump() if cfg is not None else None, **(extra or {})}
    (out / SIDECAR).write_text(json.dumps(sidecar, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Return the tokenizer saved in ``path`` (local only), with jieba re-attached when it was trained with it."""
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    sidecar = Path(path) / SIDECAR
    saved = (json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}).get("config")
    if saved and saved.get("pre_segment") == "jieba":
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizer(TokenizerConfig.model_validate(saved), JiebaSegmenter())
    return tokenizer


def iter_documents(paths: Iterable[Path], columns: tuple[str, ...] = ("source", "text"), batch_rows: int = 1024) -> Iterator[dict]:
    """Yield rows of Parquet shards, reading only ``columns`` a batch at a time (memory stays flat)."""
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=list(columns)):
            yield from batch.to_pylist()


def iter_texts(paths: Iterable[Path], max_docs: int = 0) -> Iterator[str]:
    """Yield the non-blank texts of shards, at most ``max_docs`` of them (0: all)."""
    n = 0
    for row in iter_documents(paths, ("text",)):
        text = row["text"] or ""
        if not text.strip():
            continue
        yield text
        n += 1
        if max_docs and n >= max_docs:
            return
