"""Step 5, filters: each decides on the stored ``signals`` (and ``lang``) with thresholds from the config.

A filter is a pure function ``(doc, cfg) -> Reject | None``; the detail names the signal and the
threshold it crossed, so a rejected row explains itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tasks.clean.config import CleanConfig, FilterName
from tasks.clean.signals import DUP_NGRAMS, TOP_NGRAMS
from tasks.records import Doc, Reject

Filter = Callable[[Doc, CleanConfig], Reject | None]


def check_chatter(doc: Doc, cfg: CleanConfig) -> Reject | None:
    ratio = doc["signals"]["chatter_ratio"]
    if ratio > cfg.max_chatter_ratio:
        return Reject("chatter", f"chatter_ratio {ratio} > {cfg.max_chatter_ratio}")
    return None


def check_length(doc: Doc, cfg: CleanConfig) -> Reject | None:
    n = doc["signals"]["n_chars"]
    if n < cfg.min_chars:
        return Reject("too_short", f"n_chars {n} < {cfg.min_chars}")
    return None


def check_lang(doc: Doc, cfg: CleanConfig) -> Reject | None:
    if doc["lang"] not in cfg.keep_langs:
        return Reject("not_chinese", f"lang {doc['lang']}, han_ratio {doc['signals']['han_ratio']}")
    return None


def check_mojibake(doc: Doc, cfg: CleanConfig) -> Reject | None:
    ratio = doc["signals"]["bad_char_ratio"]
    if ratio > cfg.max_bad_char_ratio:
        return Reject("mojibake", f"bad_char_ratio {ratio} > {cfg.max_bad_char_ratio}")
    return None


def check_spam(doc: Doc, cfg: CleanConfig) -> Reject | None:
    """Reject a document that is mostly ad lines or dense in spam keywords, unless it is a report about spam."""
    s = doc["signals"]
    hits = {c: s.get(f"spam_{c}", 0) for c in cfg.spam_categories}
    if not any(hits.values()):
        return None
    if s["spam_context"] >= cfg.spam_context_guard:
        return None
    category = max(cfg.spam_categories, key=lambda c: (hits[c], -cfg.spam_categories.index(c)))
    if s["spam_line_ratio"] > cfg.max_spam_line_ratio:
        return Reject(f"spam_{category}", f"spam_line_ratio {s['spam_line_ratio']} > {cfg.max_spam_line_ratio}")
    if s["spam_density"] > cfg.max_spam_density and sum(hits.values()) >= cfg.min_spam_hits:
        return Reject(f"spam_{category}", f"spam_density {s['spam_density']} > {cfg.max_spam_density}")
    return None


def check_entropy(doc: Doc, cfg: CleanConfig) -> Reject | None:
    s = doc["signals"]
    limit = min(cfg.min_entropy, round(cfg.min_entropy_share * math.log2(max(s["n_chars"], 1)), 4))
    if s["char_entropy"] < limit:
        return Reject("low_entropy", f"char_entropy {s['char_entropy']} < {limit}")
    return None


def check_repetition(doc: Doc, cfg: CleanConfig) -> Reject | None:
    s = doc["signals"]
    if s["dup_line_char_ratio"] > cfg.max_dup_line_char_ratio:
        limit = cfg.max_dup_line_char_ratio
        return Reject("repetitive_lines", f"dup_line_char_ratio {s['dup_line_char_ratio']} > {limit}")
    if s["dup_sentence_char_ratio"] > cfg.max_dup_sentence_char_ratio:
        return Reject(
            "repetitive_lines",
            f"dup_sentence_char_ratio {s['dup_sentence_char_ratio']} > {cfg.max_dup_sentence_char_ratio}",
        )
    if s["n_words"] < cfg.repetition_min_words:
        return None
    for n, limit in zip(TOP_NGRAMS, cfg.max_top_ngram_ratios):
        if s[f"top_{n}gram_ratio"] > limit:
            return Reject("repetitive_ngrams", f"top_{n}gram_ratio {s[f'top_{n}gram_ratio']} > {limit}")
    for n, limit in zip(DUP_NGRAMS, cfg.max_dup_ngram_ratios):
        if s[f"dup_{n}gram_ratio"] > limit:
            return Reject("repetitive_ngrams", f"dup_{n}gram_ratio {s[f'dup_{n}gram_ratio']} > {limit}")
    return None


def check_symbols(doc: Doc, cfg: CleanConfig) -> Reject | None:
    ratio = doc["signals"]["symbol_ratio"]
    if ratio > cfg.max_symbol_ratio:
        return Reject("symbol_ratio", f"symbol_ratio {ratio} > {cfg.max_symbol_ratio}")
    return None


def check_stopwords(doc: Doc, cfg: CleanConfig) -> Reject | None:
    ratio = doc["signals"]["stopword_ratio"]
    if ratio < cfg.min_stopword_ratio:
        return Reject("stopword_ratio_low", f"stopword_ratio {ratio} < {cfg.min_stopword_ratio}")
    if ratio > cfg.max_stopword_ratio:
        return Reject("stopword_ratio_high", f"stopword_ratio {ratio} > {cfg.max_stopword_ratio}")
    return None


FILTERS: dict[FilterName, Filter] = {
    "chatter": check_chatter,
    "length": check_length,
    "lang": check_lang,
    "mojibake": check_mojibake,
    "spam": check_spam,
    "entropy": check_entropy,
    "repetition": check_repetition,
    "symbols": check_symbols,
    "stopwords": check_stopwords,
}
