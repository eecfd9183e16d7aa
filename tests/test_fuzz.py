"""Property tests: hostile records never fail a stage (hypothesis).

Random records — random unicode with lone surrogates and control characters, random types in every
field (the core ones and the columns stages add), huge and empty values, lines of random bytes, JSON
that is not an object — go through each document stage's step list, built from its default config as
its task builds it, and through ``liandan step``. Properties: no exception escapes; kept + rejected =
the input's non-blank lines; every reject carries a reason from the stage's own reasons or the record
reasons every stage shares; the shards and JSONL written are valid UTF-8 Parquet/JSON and hold exactly
those rows. The default profile is short and derandomized; ``pytest tests/test_fuzz.py
--hypothesis-profile=long`` searches far more by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from flows.cli import main
from flows.stages import SHARD_STAGES
from tasks.clean import CLEAN_REASONS
from tasks.dedup import DEDUP_REASONS
from tasks.deid import DEID_REASONS
from tasks.extract import EXTRACT_REASONS
from tasks.mixture import MIXTURE_REASONS
from tasks.ocr import OCR_REASONS
from tasks.quality.stage import QUALITY_REASONS
from tasks.records import RECORD_REASONS, read_jsonl, write_jsonl
from tasks.steps import run_steps
from tasks.store import StageDir

STAGE_REASONS = {
    "extract": EXTRACT_REASONS,
    "ocr": OCR_REASONS,
    "clean": CLEAN_REASONS,
    "dedup": DEDUP_REASONS,
    "deid": DEID_REASONS,
    "quality": QUALITY_REASONS,
    "mixture": MIXTURE_REASONS,
}
CAP = 50_000  # a small field cap, so huge values reach the cap's rejects without megabytes per example

SENTENCES = [
    "今天北京的天气很好，市民们纷纷走出家门，到公园里散步、放风筝。",
    "记者从市教育局获悉，今年全市将新建二十所中小学，新增学位三万个。",
    "张伟的手机号是13800138000，身份证号110101199003074518，住在海淀区中关村大街1号。",
    "澳门赌场 在线投注 加微信 稳赚不赔 充值送彩金",
    "<html><body><article><p>这是一段网页正文，介绍了一种新的农业技术。</p></article></body></html>",
    "楼主说得对！！！顶顶顶",
    "The quick brown fox jumps over the lazy dog.",
    "第一章\n\n　　山间的清晨，雾气还没有散去，老人已经背着竹篓上山采药了。",
]
HOSTILE_CHARS = ["\ud800", "\udfff", "\ud83d", "\x00", "\x1b", "\x7f", "\x85", "\ufeff", "\u200b", "\ufffd", "\u2028", "\r", "\x0b", "\x0c", "\t", "\n", "\ue000", "😀"]

any_char = st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs", "Co"])  # surrogates included
short_text = st.text(any_char, max_size=12)
text = st.one_of(
    st.lists(st.one_of(st.sampled_from(SENTENCES), st.sampled_from(HOSTILE_CHARS), short_text), max_size=10).map("".join),
    st.lists(st.one_of(st.sampled_from(SENTENCES), st.sampled_from(HOSTILE_CHARS), short_text), min_size=1, max_size=10).map("".join),
    st.builds(lambda s, n: s * n, st.sampled_from(SENTENCES), st.integers(1_000, 2_000)),  # past the cap
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), short_text)
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3), max_leaves=6)


def _field(right: st.SearchStrategy) -> st.SearchStrategy:
    """The right type for the field nine times in ten, else anything at all (so most records get past the reader)."""
    return st.integers(0, 9).flatmap(lambda k: value if k == 0 else right)


record = st.fixed_dictionaries(
    {"text": _field(text)},
    optional={
        "id": _field(short_text),
        "source": _field(st.sampled_from(["web", "news", "book", "forum", "pdf", "image", ""])),
        "url": _field(st.one_of(st.just("http://a.cn/"), short_text).map(lambda u: u and f"http://a.cn/{u}")),
        "meta": _field(st.one_of(st.dictionaries(short_text, value, max_size=3), st.sampled_from(['{"title": "标题"}', "{broken", '{"kind": "pdf"}', '{"kind": "html"}']))),
        "lang": _field(st.sampled_from(["zh", "ja", "und"])),
        "signals": _field(st.dictionaries(st.sampled_from(["spam_gambling", "chars", "stopword_ratio", "char_entropy"]), st.floats(), max_size=3)),
        "quality_score": _field(st.floats(0, 1)),
        "quality_tier": _field(st.sampled_from(["high", "medium", "low"])),
        "pii_counts": _field(st.dictionaries(st.sampled_from(["phone", "id_card", "email"]), st.integers(0, 5), max_size=2)),
        "mix_copies": _field(st.integers(0, 3)),
        "extra": value,
    },
)
line = st.one_of(
    record.map(lambda r: json.dumps(r).encode()),  # lone surrogates as \ud800 escapes
    record.map(lambda r: json.dumps(r).encode()),
    record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass")),  # raw surrogates: invalid UTF-8
    record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "replace")),  # ? in place of surrogates: valid UTF-8
    st.binary(max_size=40),
    value.map(lambda v: json.dumps(v).encode()),  # JSON that is not an object
)
lines = st.lists(line, min_size=1, max_size=8)


@pytest.fixture(scope="module")
def stage_steps():
    """Each stage's step list from its default config, built on first use (the quality classifier on a subset of its default examples)."""
    built: dict[str, list] = {}

    def steps(name: str) -> list:
        if name not in built:
            stage = SHARD_STAGES[name]
            cfg = stage.config()
            built[name] = _quality_steps(cfg) if name == "quality" else stage.build_steps(cfg)
        return built[name]

    return steps


def _quality_steps(cfg) -> list:
    # The fuzz checks how the steps treat hostile records, not the model: 40 examples per label train it in seconds.
    from tasks.quality.stage import build_steps
    from tasks.quality.train import collect_examples, train_classifier

    examples = collect_examples(cfg)
    subset = [ex for label in sorted({ex["label"] for ex in examples}) for ex in [e for e in examples if e["label"] == label][:40]]
    return build_steps(cfg, train_classifier(subset, cfg).model)


def _input_file(folder: Path, raw_lines: list[bytes]) -> tuple[Path, int]:
    path = folder / "in.jsonl"
    data = b"\n".join(raw_lines) + b"\n"
    path.write_bytes(data)
    return path, sum(1 for chunk in data.split(b"\n") if chunk.strip())


def _strict_json_lines(path: Path) -> list[dict]:
    """Return the rows of a JSONL file, failing unless it is valid UTF-8 holding strict JSON objects (no NaN)."""
    rows = []
    for text in path.read_bytes().decode("utf-8").split("\n")[:-1]:  # not splitlines: U+2028 inside a string is JSON
        row = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
        assert isinstance(row, dict)
        rows.append(row)
    return rows


def _check_reasons(stage: str, rejected: list[dict]) -> None:
    allowed = set(STAGE_REASONS[stage]) | set(RECORD_REASONS)
    for row in rejected:
        assert row["reason"] in allowed, (row["reason"], row["detail"])
        assert row["stage"] in (stage, "read")


@pytest.mark.parametrize("stage", list(SHARD_STAGES))
@given(raw_lines=lines)
def test_hostile_lines_through_each_stage_balance_and_write(stage_steps, stage, raw_lines):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, n_lines = _input_file(folder, raw_lines)
        docs, bad = read_jsonl(path, CAP)
        assert len(docs) + len(bad) == n_lines
        if stage == "mixture":  # a batch without any text fails the mixture plan: test_hostile's xfail keeps it in view
            assume(any(d["text"] for d in docs) or len(docs) < 2)
        result = run_steps(stage, stage_steps(stage), docs, CAP)
        assert result.stats.docs_in == len(docs) and result.stats.balanced()
        assert len(result.kept) + len(result.rejected) + len(bad) == n_lines
        rejected = [*bad, *result.rejected]
        _check_reasons(stage, rejected)

        out = StageDir(folder / stage)
        out.commit_shard("part-00000.parquet", result.kept, rejected, {"stats": result.stats.to_dict()})
        for shard, rows in ((out.shard("part-00000.parquet"), result.kept), (out.rejected("part-00000.parquet"), rejected)):
            table = pq.read_table(shard)  # pyarrow checks the strings are UTF-8 as it decodes them
            assert table.num_rows == len(rows)
            assert table.column("id").to_pylist() == [r["id"] for r in rows]
            for meta in table.column("meta").to_pylist():
                assert isinstance(json.loads(meta), dict)
        write_jsonl(folder / "kept.jsonl", result.kept)
        write_jsonl(folder / "rejected.jsonl", rejected)
        assert len(_strict_json_lines(folder / "kept.jsonl")) == len(result.kept)
        assert len(_strict_json_lines(folder / "rejected.jsonl")) == len(rejected)


@pytest.mark.parametrize("stage", ["clean", "deid", "dedup"])
@given(raw_lines=lines)
def test_hostile_lines_through_liandan_step(stage, raw_lines):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, n_lines = _input_file(folder, raw_lines)
        out = folder / "out.jsonl"
        with contextlib.redirect_stdout(io.StringIO()) as stdout, contextlib.redirect_stderr(io.StringIO()):
            assert main(["step", stage, "--input", str(path), "--output", str(out), "--max-field-bytes", str(CAP)]) == 0
        kept = _strict_json_lines(out)
        rejected = _strict_json_lines(folder / "out.rejected.jsonl")
        assert len(kept) + len(rejected) == n_lines
        _check_reasons(stage, rejected)
        summary = json.loads(stdout.getvalue())
        assert (summary["docs_kept"], summary["docs_rejected"] + summary["invalid_records"]) == (len(kept), len(rejected))
