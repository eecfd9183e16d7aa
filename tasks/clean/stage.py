"""The clean stage as steps: check input → normalise → remove ad spans → remove noise → score → filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from tasks.clean.config import CleanConfig
from tasks.clean.filters import FILTERS, Filter
from tasks.clean.lang import CharCounter
from tasks.clean.noise import NoiseRemover
from tasks.clean.normalize import Normalizer, tally_prefixes
from tasks.clean.segment import Segmenter
from tasks.clean.signals import Scorer, stopword_set
from tasks.clean.spam import SpamLexicon, SpamLineRemover
from tasks.records import Doc, Reject
from tasks.steps import Step

CleanReason = Literal[
    "invalid_text",  # text is not a string, or holds lone UTF-16 surrogates
    "empty",  # text is blank on input
    "too_long",  # more than cfg.max_chars characters on input (checked before any work)
    "too_short",  # fewer than cfg.min_chars non-space characters after cleaning
    "not_chinese",  # lang is not in cfg.keep_langs
    "mojibake",  # replacement / private-use / unassigned characters above cfg.max_bad_char_ratio
    "chatter",  # laughter, fillers, emoji and !!! above cfg.max_chatter_ratio
    "spam_gambling",
    "spam_porn",
    "spam_game",
    "spam_scam",
    "spam_loan",
    "spam_seo",
    "low_entropy",  # character entropy below cfg.min_entropy
    "repetitive_lines",  # repeated lines or sentences
    "repetitive_ngrams",  # Gopher top / duplicate word n-gram rules
    "symbol_ratio",  # digits and symbols above cfg.max_symbol_ratio
    "stopword_ratio_low",
    "stopword_ratio_high",
]
CLEAN_REASONS: tuple[str, ...] = get_args(CleanReason)

_LONE_SURROGATE = re.compile("[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")


@dataclass
class InputCheck:
    """Batch step: reject what is not text to clean, re-pair split surrogates, start each document's signals."""

    max_chars: int
    name: str = "check_input"

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.check(doc) for doc in docs]

    def check(self, doc: Doc) -> Doc | Reject:
        text = doc.get("text")
        if not isinstance(text, str):
            return Reject("invalid_text", f"text is {type(text).__name__}")
        if len(text) > self.max_chars:  # before anything else: a 50 MB line must cost nothing
            return Reject("too_long", f"{len(text)} chars > {self.max_chars}")
        # every document gets the same signal names, zeros included: one Parquet schema for every shard
        signals: dict[str, int] = {"changed_chars.surrogate_pairs": 0}
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # JSON escapes an emoji as two surrogates ("\ud83d\ude00"); a reader that decoded them one by
            # one leaves a valid pair, which UTF-16 joins back. A lone half is damage we cannot undo.
            lone = _LONE_SURROGATE.search(text)
            if lone is not None:
                return Reject("invalid_text", f"lone surrogate U+{ord(lone.group()):04X} at offset {lone.start()}")
            joined = text.encode("utf-16", "surrogatepass").decode("utf-16")
            signals["changed_chars.surrogate_pairs"] = len(text) - len(joined)
            text = joined
        if not text.strip():
            return Reject("empty", "blank text")
        return {**doc, "text": text, "signals": signals}

    def tally(self, results: list) -> dict[str, int]:
        return tally_prefixes(results, ("changed_chars.surrogate_pairs",))


@dataclass
class FilterStep:
    """Batch step: one filter over the stored signals."""

    check: Filter
    cfg: CleanConfig
    name: str

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.check(doc, self.cfg) or doc for doc in docs]


def build_steps(cfg: CleanConfig) -> list[Step]:
    """Return the clean stage's steps, in order; the expensive objects (jieba, automaton) are built here once."""
    lexicon = SpamLexicon(
        cfg.spam_categories, cfg.extra_spam_words, cfg.spam_line_min_score, cfg.spam_rest_min_chars,
        cfg.spam_short_line_chars,
    )
    steps: list[Step] = [
        InputCheck(cfg.max_chars),
        Normalizer(cfg.fix_mojibake, cfg.nfkc, cfg.traditional_to_simplified),
    ]
    if cfg.remove_spam_lines:  # before noise removal, which would take an ad's address and its ！！！ first
        steps.append(SpamLineRemover(lexicon, cfg.max_spam_line_share, cfg.spam_context_guard))
    steps.append(NoiseRemover(cfg.noise_rules, cfg.boilerplate_patterns, cfg.boilerplate_max_chars))
    steps.append(
        Scorer(
            segmenter=Segmenter(cfg.segmenter, cfg.hmm, tuple(cfg.user_dicts)),
            lexicon=lexicon,
            stopwords=stopword_set(cfg.extra_stopwords),
            counter=CharCounter(),
            min_han_ratio=cfg.min_han_ratio,
            keep_tokens=cfg.keep_tokens,
        )
    )
    steps.extend(FilterStep(FILTERS[name], cfg, f"filter_{name}") for name in cfg.filters)
    return steps
