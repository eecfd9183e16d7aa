"""The tokenizer: exact round trips, special tokens, the chat template's assistant mask, jieba, compression;
encoding and packing a shard without losing a token."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # an accidental download fails at once
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.records import make_doc
from tasks.store import StageDir, read_records, write_shard
from tasks.tokenize.compression import compression_report, measure
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.pack import pack_best_fit, pack_concat, read_packed, split_of
from tasks.tokenize.stage import build_tokenizer, encode_pack_shard, packed_sequence_shards, sequences_path
from tasks.tokenize.train import JiebaSegmenter, load_tokenizer, save_tokenizer, train_tokenizer

GOLD = Path(__file__).resolve().parent.parent / "data" / "sample" / "gold"

ROUND_TRIP = [
    "今天天气很好，我们去北京大学看看。",
    "Hello, world! It's 2024 — prices rose 3.5% in Q1.",
    "emoji 😀👍🏽 家庭 👨‍👩‍👧‍👦 国旗 🇨🇳 ✅",
    "生僻字：𠮷野家、𪚥、龘、靐；日本語のかな、한국어",
    "  leading and trailing spaces  \n\n\ttabs\r\nCRLF  ",
    "全角　空格，ＡＢＣ１２３，“引号”《书名》……——",
    "a<|endoftext|>b <|im_start|>user",
]


def gold_docs() -> list[dict]:
    paths = sorted(GOLD.rglob("*.txt"))
    return [make_doc(str(p.relative_to(GOLD)), p.read_text(encoding="utf-8"), source=p.parent.name) for p in paths]


@pytest.fixture(scope="module")
def tokenizer():
    cfg = TokenizerConfig(vocab_size=1024)
    return train_tokenizer((d["text"] for d in gold_docs()), cfg), cfg


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_is_exact(tokenizer, text):
    tok, _ = tokenizer
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert tok.unk_token_id is None or tok.unk_token_id not in ids  # byte-level: nothing is unknown


def test_saved_tokenizer_loads_offline_with_special_tokens_and_round_trips(tokenizer, tmp_path):
    tok, cfg = tokenizer
    save_tokenizer(tok, tmp_path, cfg)
    loaded = load_tokenizer(tmp_path)
    assert (loaded.eos_token, loaded.pad_token, loaded.bos_token) == ("<|endoftext|>", "<|pad|>", "<|startoftext|>")
    assert len({loaded.eos_token_id, loaded.pad_token_id, loaded.bos_token_id}) == 3
    assert loaded.convert_tokens_to_ids("<|im_end|>") == tok.convert_tokens_to_ids("<|im_end|>") != loaded.unk_token_id
    for text in ROUND_TRIP:
        ids = loaded.encode(text, add_special_tokens=False)
        assert ids == tok.encode(text, add_special_tokens=False)
        assert loaded.decode(ids) == text
    assert len(loaded) <= cfg.vocab_size


def test_chat_template_masks_exactly_the_assistant_turns(tokenizer):
    tok, _ = tokenizer
    messages = [
        {"role": "system", "content": "你是一个乐于助人的助手。"},
        {"role": "user", "content": "一加一等于几？"},
        {"role": "assistant", "content": "等于二。"},
        {"role": "user", "content": "再加一呢？"},
        {"role": "assistant", "content": "等于三。"},
    ]
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assistant = tok.decode([i for i, m in zip(ids, mask) if m])
    assert assistant == "等于二。<|im_end|>等于三。<|im_end|>"
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\n一加一等于几？<|im_end|>\n<|im_start|>assistant\n")


def test_special_token_strings_in_web_text_stay_text(tokenizer, tmp_path):
    tok, cfg = tokenizer
    save_tokenizer(tok, tmp_path / "tok", cfg)
    shard = tmp_path / "in" / "part-00000.parquet"
    write_shard(shard, [make_doc("u1", "页面里写着<|endoftext|>和<|im_end|>两个标记", source="web")])
    out = StageDir(tmp_path / "pack")
    encode_pack_shard(shard, out, tmp_path / "tok", PackConfig(seq_len=64, eval_fraction=0.0))
    (seq,) = read_packed(packed_sequence_shards(out.root)).to_pylist()
    real = seq["input_ids"][: seq["n_tokens"]]
    assert real.count(tok.eos_token_id) == 1 and real[-1] == tok.eos_token_id  # only the eos that ends the document
    assert tok.convert_tokens_to_ids("<|im_end|>") not in real
    assert tok.decode(real[:-1]) == "页面里写着<|endoftext|>和<|im_end|>两个标记"


def test_added_tokens_are_one_token_each_and_survive_decoding_and_saving(tmp_path):
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    cfg = TokenizerConfig(vocab_size=1024, added_tokens=tags)
    save_tokenizer(train_tokenizer((d["text"] for d in gold_docs()), cfg), tmp_path, cfg)
    tok = load_tokenizer(tmp_path)
    reply = "<think>现在有5+6=11</think><answer>11</answer>"
    ids = tok(reply, add_special_tokens=False)["input_ids"]
    assert [tok.decode([i]) for i in ids if tok.decode([i]) in tags] == tags and len(ids) < len(reply)
    assert tok.decode(ids, skip_special_tokens=True) == reply  # the rewards read decoded text: special tokens would vanish
    plain = train_tokenizer((d["text"] for d in gold_docs()), TokenizerConfig(vocab_size=1024))
    assert len(plain(reply, add_special_tokens=False)["input_ids"]) >= len(ids) + 4 * 4  # each tag is 6–9 byte tokens without
    with pytest.raises(ValidationError, match="distinct"):
        TokenizerConfig(added_tokens=["<|im_end|>"])


def test_config_refuses_duplicate_special_tokens_and_unknown_keys():
    with pytest.raises(ValidationError, match="distinct"):
        TokenizerConfig(pad_token="<|endoftext|>")
    with pytest.raises(ValidationError, match="extra"):
        TokenizerConfig(vocab=100)
    with pytest.raises(ValidationError):
        TokenizerConfig(pre_segment="pkuseg")


def test_jieba_segments_han_runs_and_no_token_crosses_a_word(tmp_path):
    seg = JiebaSegmenter()
    text = "我们在北京大学学习自然语言处理, hello 世界"
    spans = seg.words(text)
    assert "".join(text[a:b] for a, b in spans) == text
    assert [text[a:b] for a, b in spans][:4] == ["我们", "在", "北京大学", "学习"]

    corpus = [d["text"] for d in gold_docs()] + [text] * 200  # frequent enough that plain BPE merges across words
    boundaries = {x for a, b in spans for x in (a, b) if _between_han(text, x)}

    def crossings(tok) -> list[str]:
        enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
        return [text[a:b] for a, b in enc.offsets if boundaries & set(range(a + 1, b))]

    assert crossings(train_tokenizer(corpus, TokenizerConfig(vocab_size=1024)))  # the control: without jieba, tokens span words
    cfg = TokenizerConfig(vocab_size=1024, pre_segment="jieba")
    tok = train_tokenizer(corpus, cfg, seg)
    assert crossings(tok) == []
    save_tokenizer(tok, tmp_path, cfg)
    loaded = load_tokenizer(tmp_path)  # jieba re-attached from the sidecar
    for s in ROUND_TRIP + [text]:
        assert loaded.encode(s, add_special_tokens=False) == tok.encode(s, add_special_tokens=False)
        assert loaded.decode(loaded.encode(s, add_special_tokens=False)) == s


def _between_han(text: str, i: int) -> bool:
    """Whether position ``i`` lies between two Han characters (where jieba decides the boundary)."""
    return 0 < i < len(text) and all("\u4e00" <= text[j] <= "\u9fff" for j in (i - 1, i))


def test_compression_counts_han_characters_and_improves_with_vocabulary():
    docs = gold_docs()
    small = train_tokenizer((d["text"] for d in docs), TokenizerConfig(vocab_size=400))
    large = train_tokenizer((d["text"] for d in docs), TokenizerConfig(vocab_size=2000))
    c = measure(small.backend_tokenizer, ["你好abc世界𠮷"])
    assert (c.chars, c.han_chars) == (8, 5)  # 𠮷 is one character (U+20BB7) and Han
    report_small = compression_report(small.backend_tokenizer, docs)
    report_large = compression_report(large.backend_tokenizer, docs)
    assert set(report_large) == {d["source"] for d in docs} | {"all"}
    assert report_large["all"]["docs"] == len(docs)
    assert report_large["all"]["chars_per_token"] > report_small["all"]["chars_per_token"]
    assert report_large["all"]["han_chars_per_token"] > report_small["all"]["han_chars_per_token"]
    for source in report_large:
        assert report_large[source]["tokens"] < report_small[source]["tokens"]


def test_concat_packing_keeps_every_token_in_order():
    rng = random.Random(0)
    docs = [[rng.randrange(3, 500) for _ in range(rng.randrange(1, 300))] + [0] for _ in range(50)]
    packed = pack_concat(docs, 64, pad_id=1)
    assert all(len(p.input_ids) == 64 for p in packed)
    assert all(p.n_tokens == 64 for p in packed[:-1])  # only the tail is padded
    stream = [t for p in packed for t in p.input_ids[: p.n_tokens]]
    assert stream == [t for d in docs for t in d]
    assert packed[-1].input_ids[packed[-1].n_tokens :] == [1] * (64 - packed[-1].n_tokens)


def test_best_fit_packing_keeps_every_document_piece_whole():
    rng = random.Random(1)
    docs = [[1000 + i] * rng.randrange(1, 150) for i in range(60)]  # each document one distinct token value
    packed = pack_best_fit(docs, 64, pad_id=1)
    real = [p.input_ids[: p.n_tokens] for p in packed]
    assert sum(p.n_tokens for p in packed) == sum(len(d) for d in docs)
    assert sorted(t for r in real for t in r) == sorted(t for d in docs for t in d)
    for d in docs:  # a document is split only into ceil(len/64) pieces
        holding = sum(1 for r in real if d[0] in r)
        assert holding == -(-len(d) // 64)
    concat_slots = len(pack_concat(docs, 64, pad_id=1)) * 64
    assert len(packed) * 64 >= concat_slots  # fewer cuts, paid for in padding


def test_split_is_stable_and_near_its_fraction():
    ids = [f"{i:016x}" for i in range(2000)]
    evals = [i for i in ids if split_of(i, 0.1) == "eval"]
    assert 140 <= len(evals) <= 260
    assert evals == [i for i in ids if split_of(i, 0.1) == "eval"]
    assert set(evals) <= {i for i in ids if split_of(i, 0.2) == "eval"}  # a larger fraction only adds documents


def test_tokenize_and_pack_a_run_folder_balances_and_resumes(tmp_path):
    docs = gold_docs()
    docs.insert(3, make_doc("empty-page", "   \n", source="news"))
    upstream = StageDir(tmp_path / "extract")
    for i in range(0, len(docs), 12):
        upstream.commit_shard(f"part-{i // 12:05d}.parquet", docs[i : i + 12], [], {"stats": {}})
    tok_dir = StageDir(tmp_path / "tokenize")
    stats, compression = build_tokenizer(upstream.shards(), tok_dir, TokenizerConfig(vocab_size=1024))
    assert (stats.docs_in, stats.docs_kept, stats.rejected_by_reason) == (len(docs), len(docs) - 1, {"empty_text": 1})
    assert compression["all"]["docs"] == len(docs)
    again, _ = build_tokenizer(upstream.shards(), tok_dir, TokenizerConfig(vocab_size=1024))
    assert again.counters["stage_skipped"] == 1

    out = StageDir(tmp_path / "pack")
    cfg = PackConfig(seq_len=96, eval_fraction=0.2)
    total = [encode_pack_shard(p, out, tok_dir.root, cfg) for p in upstream.shards()]
    assert sum(s.docs_in for s in total) == len(docs)
    assert sum(s.docs_kept for s in total) == len(docs) - 1
    assert all(s.balanced() for s in total)
    kept = read_records(out.shards())
    assert [r["reason"] for r in read_records(out.rejected_shards())] == ["empty_text"]
    assert {r["split"] for r in kept} == {"train", "eval"}

    tokenizer = load_tokenizer(tok_dir.root)
    seqs = read_packed(packed_sequence_shards(out.root)).to_pylist()
    assert sum(s["n_tokens"] for s in seqs) == sum(r["n_tokens"] for r in kept)  # packing loses no token
    assert sum(s.counters["tokens"] for s in total) == sum(r["n_tokens"] for r in kept)
    # Each (shard, split, source) stream decodes back to its documents, each followed by eos.
    shard0 = [r for r in read_records([out.shards()[0]]) if r["split"] == "train" and r["source"] == "forum"]
    stream = [t for s in read_packed([sequences_path(out, "part-00000.parquet")]).to_pylist() if s["split"] == "train" and s["source"] == "forum" for t in s["input_ids"][: s["n_tokens"]]]
    assert tokenizer.decode(stream) == "".join(r["text"] + "<|endoftext|>" for r in shard0)

    rerun = [encode_pack_shard(p, out, tok_dir.root, cfg) for p in upstream.shards()]
    assert all(s.counters["shards_skipped"] == 1 for s in rerun)
    changed = [encode_pack_shard(p, out, tok_dir.root, cfg.model_copy(update={"seq_len": 64})) for p in upstream.shards()]
    assert not any("shards_skipped" in s.counters for s in changed)
