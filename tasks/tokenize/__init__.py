"""Tokenize: train a byte-level BPE tokenizer on the corpus, encode it, and pack it into training sequences.

Light on import (configs, encoding, packing, compression); ``tasks.tokenize.train`` and ``.stage`` import
``transformers`` and are imported where a tokenizer is trained or loaded.
"""

from tasks.tokenize.compression import HAN_RUN, Compression, compression_report
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.encode import ENCODE_REASONS, DocumentEncoder, EncodeReason
from tasks.tokenize.pack import Packed, pack_best_fit, pack_concat, pack_records, read_packed, split_of, write_packed

__all__ = [
    "ENCODE_REASONS",
    "HAN_RUN",
    "Compression",
    "DocumentEncoder",
    "EncodeReason",
    "PackConfig",
    "Packed",
    "TokenizerConfig",
    "compression_report",
    "pack_best_fit",
    "pack_concat",
    "pack_records",
    "read_packed",
    "split_of",
    "write_packed",
]
