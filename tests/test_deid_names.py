"""The names policies (contextual, all, off) on real Chinese shapes, identifiers glued to other text, bad input, sample lines."""

import pytest

from tasks.deid import DEID_REASONS, DeidConfig, PiiMasker, find_pattern_pii, mask_sample_lines, resolve_overlaps
from tasks.deid.detectors import PII_TYPES, find_numbers
from tasks.deid.names import is_anonymous, windows
from tasks.deid.report import sample_lines
from tasks.records import Reject, make_doc
from tasks.steps import run_steps
from tasks.store import write_shard

ALL_KINDS = frozenset(PII_TYPES)


@pytest.fixture(scope="module")
def maskers() -> dict[str, PiiMasker]:
    return {policy: PiiMasker(DeidConfig(names=policy)) for policy in ("contextual", "all", "off")}  # two NER models loaded


def masked(step: PiiMasker, text: str) -> str:
    out = step.mask(make_doc("", text))
    assert not isinstance(out, Reject)
    return out["text"]


# ---------------------------------------------------------------- the names policies

OFFICIALS = "出席会议的有蔡竹林、纪鸿尚、孙天义、黄钟等同志。"
DELIVERY = "收件人：王秀英\n电话：138 1234 5678\n地址：浙江省杭州市西湖区文三路88号3栋502室\n备注：王秀英白天不在家，请放门卫。"
NEWS = (
    "本报北京１月５日讯 记者李欣报道：国务院副总理李岚清今天在中南海会见了美国总统克林顿的特使。"
    "克林顿在信中说，他期待访华。（记者 张晓明 通讯员 王磊）"
)


def test_a_list_of_officials_is_masked_whole_under_all_and_kept_under_contextual(maskers):
    assert masked(maskers["all"], OFFICIALS) == "出席会议的有<PERSON_1>、<PERSON_2>、<PERSON_3>、<PERSON_4>等同志。"
    assert masked(maskers["contextual"], OFFICIALS) == OFFICIALS
    assert masked(maskers["off"], OFFICIALS) == OFFICIALS


def test_a_delivery_form_masks_name_phone_address_and_the_later_mention(maskers):
    expected = "收件人：<PERSON_1>\n电话：<PHONE>\n地址：<ADDRESS>\n备注：<PERSON_1>白天不在家，请放门卫。"
    out = maskers["contextual"].mask(make_doc("", DELIVERY))
    assert out["text"] == expected
    assert {k: v for k, v in out["pii_counts"].items() if v} == {"phone": 1, "address": 1, "person": 2}
    assert masked(maskers["all"], DELIVERY) == expected
    assert masked(maskers["off"], DELIVERY) == "收件人：王秀英\n电话：<PHONE>\n地址：<ADDRESS>\n备注：王秀英白天不在家，请放门卫。"


def test_news_with_a_reporter_byline_and_public_figures_is_kept_under_contextual(maskers):
    assert masked(maskers["contextual"], NEWS) == NEWS
    assert masked(maskers["all"], NEWS) == (
        "本报北京１月５日讯 记者<PERSON_1>报道：国务院副总理<PERSON_2>今天在中南海会见了美国总统<PERSON_3>的特使。"
        "<PERSON_3>在信中说，他期待访华。（记者 <PERSON_4> 通讯员 <PERSON_5>）"
    )


def test_private_roles_number_each_person_consistently(maskers):
    text = "房东张建国把房子租给了租客刘洋，刘洋的手机是１３９１２３４５６７８。"
    assert masked(maskers["contextual"], text) == "房东<PERSON_1>把房子租给了租客<PERSON_2>，<PERSON_2>的手机是<PHONE>。"
    assert masked(maskers["off"], text) == "房东张建国把房子租给了租客刘洋，刘洋的手机是<PHONE>。"


def test_a_public_role_beats_a_nearby_cue_and_a_role_only_marks_its_neighbour(maskers):
    # 本人 next to 他 (not a name) and 乘客 in passing make no one private
    text = "阿拉法特强调，克林顿即将同他本人举行会晤。售票员李素丽为乘客服务了二十年。"
    assert masked(maskers["contextual"], text) == text
    assert masked(maskers["contextual"], "联系人：记者王磊，电话另告。") == "联系人：记者王磊，电话另告。"
    assert masked(maskers["contextual"], "患者李秀英今天出院。") == "患者<PERSON_1>今天出院。"


def test_anonymous_forms_are_not_names():
    assert [is_anonymous(n) for n in ("李女士", "王某某", "张总", "刘老师", "王秀英", "小王")] == [True, True, True, True, False, False]


def test_addresses_need_a_person_or_cue_except_under_all(maskers):
    shop = "新开的书店在北京市朝阳区建国路88号，周末人很多。"
    assert masked(maskers["contextual"], shop) == shop
    assert masked(maskers["all"], shop) == "新开的书店在<ADDRESS>，周末人很多。"
    assert masked(maskers["contextual"], "他家住在北京市朝阳区建国路88号院3号楼1201。") == "他家住在<ADDRESS>。"
    assert masked(maskers["all"], "我住在北京，四川省的朋友来了。") == "我住在北京，四川省的朋友来了。"  # place names are not addresses


def test_ner_reads_only_the_windows_around_identifiers_and_cues():
    text = "今天天气很好。" * 20 + "联系人：蔡利。" + "明天下雨。" * 20
    [(lo, hi)] = windows(text, [(text.index("联系人"), text.index("联系人") + 3)], 32)
    assert text[lo:hi] == "联系人：蔡利。"  # the sentence bounds the window


# ---------------------------------------------------------------- identifiers wherever the text puts them


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("…新增全部贷款的１银行卡号624662355489497309０％…", [("624662355489497309", "bank_card")]),
        ("…１０米跳联系电话18448537153台…", [("18448537153", "phone")]),
        ("银行卡号62466235548949730901%", [("624662355489497309", "bank_card")]),
        ("身份证号码110101198506120311２５", [("110101198506120311", "id_card")]),
        ("新增99110101198506120311万人", [("110101198506120311", "id_card")]),  # a GB 11643 check digit inside a longer run
        ("我的手机138 1234 5678，备用１３９－１２３４－５６７８", [("138 1234 5678", "phone"), ("１３９－１２３４－５６７８", "phone")]),
        ("手机：１３８１２３４５６７８", [("１３８１２３４５６７８", "phone")]),
        ("卡号6222 0212 3456 7890 128", [("6222 0212 3456 7890 128", "bank_card")]),
    ],
)
def test_glued_spaced_and_full_width_identifiers(text, found):
    spans = resolve_overlaps(find_pattern_pii(text, ALL_KINDS))
    assert [(text[s.start : s.end], s.kind) for s in spans] == found


@pytest.mark.parametrize(
    "text",
    [
        "共有13800138000人参加，收入13800138000元。",  # counts and amounts
        "编号99110101198506120311",  # an ID-shaped run after a code label is a code
        "订单号：138001380001234，快递单号 620000123456789012",
        "2024031512345678901234567",  # a long serial with no valid ID inside
        "全国13900000000户，同比增长18448537153％",
        "今年GDP达到622202123456789012元",
        "会议于2024年3月15日召开，编号20240315。",
        "电话：400-810-8888，邮编100083",
    ],
)
def test_hard_negatives_stay(text):
    assert resolve_overlaps(find_pattern_pii(text, ALL_KINDS)) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("手机/微信：15012345678 张先生", [("15012345678", "phone")]),  # 张 after a space is no unit here
        ("电话（微信同号）：15012345678 张先生", [("15012345678", "phone")]),
        ("微信：15012345678", [("15012345678", "phone")]),  # digits after 微信 that are a phone number are one
        ("加微信13800138000咨询", [("13800138000", "phone")]),
        ("微信：1234567890，微信号：wxabc123", [("1234567890", "wechat"), ("wxabc123", "wechat")]),
    ],
)
def test_a_phone_shaped_number_is_a_phone_whatever_contact_label_precedes_it(text, found):
    spans = resolve_overlaps(find_pattern_pii(text, ALL_KINDS))
    assert [(text[s.start : s.end], s.kind) for s in spans] == found


def test_a_name_field_masks_rare_surnames_the_ner_misses(maskers):
    # LAC reads 亓官正清 as 亓 + 官正清 and 东方明 as an organisation; as the value of a name field they are names
    text = "联系人：亓官正清，手机13800138000。亓官正清白天在家。"
    assert masked(maskers["contextual"], text) == "联系人：<PERSON_1>，手机<PHONE>。<PERSON_1>白天在家。"
    assert masked(maskers["all"], "收件人：东方明电话13800138000") == "收件人：<PERSON_1>电话<PHONE>"
    assert masked(maskers["contextual"], "患者：仉大明，男，45岁") == "患者：<PERSON_1>，男，45岁"
    for kept in ("联系人：客服部，电话<PHONE>", "姓名：本人", "联系人：王女士", "联系人：北京", "联系人：待定", "联系人：记者王磊，电话另告。"):
        assert masked(maskers["contextual"], kept) == kept
    assert masked(maskers["off"], text) == "联系人：亓官正清，手机<PHONE>。亓官正清白天在家。"


def test_a_name_glued_to_a_private_role_is_masked_where_the_clause_misleads_the_ner(maskers):
    # in the clause LAC reads 谢艳 as 谢 (thank) + 艳 and 单雷 as 单 (single) + 雷; after 我叫 they are names
    assert masked(maskers["contextual"], "患者谢艳，女，45岁，因腹痛入院。谢艳今日出院。") == "患者<PERSON_1>，女，45岁，因腹痛入院。<PERSON_1>今日出院。"
    assert masked(maskers["contextual"], "租客单雷签订了为期一年的合同。") == "租客<PERSON_1>签订了为期一年的合同。"
    assert masked(maskers["all"], "收件人谢艳电话13800138000") == "收件人<PERSON_1>电话<PHONE>"
    assert masked(maskers["contextual"], "考生李华同学成绩优异。") == "考生<PERSON_1>同学成绩优异。"  # the name, not 李华同
    for kept in ("患者家属表示感谢医护人员。", "患者出院后恢复良好。", "顾客满意度明显提升。", "乘客安全须知", "业主委员会召开会议。", "患者王某，男"):
        assert masked(maskers["contextual"], kept) == kept
    assert masked(maskers["off"], "患者谢艳，女") == "患者谢艳，女"


def test_two_glued_phones_are_two():
    text = "电话 13800138000 13900139000 2 人"
    assert [text[s.start : s.end] for s in find_numbers(text)] == ["13800138000", "13900139000"]


# ---------------------------------------------------------------- bad input never fails the shard


def test_bad_input_gets_a_reason_and_the_shard_goes_on(maskers):
    long_line = ("今天天气很好，大家都去公园散步。" * 70_000)[:1_000_000] + "联系电话13800138000"
    garbage = "".join(chr(c) for c in range(0, 32)) * 40 + "ÿþ\x7f\x80\x81"
    assert maskers["contextual"].mask({"id": "a", "text": 12345}) == Reject("not_text", "text is int")
    docs = [
        {"id": "i", "text": 12345},
        {"id": "f", "text": 1.5},
        {"id": "l", "text": ["联系人：蔡利"]},
        {"id": "b", "text": b"\x89PNG\r\n\x1a\n"},
        {"id": "c", "text": garbage},
        make_doc("https://a.example/d", long_line),
        make_doc("https://a.example/e", "联系人：蔡利，电话13800138000。"),
    ]
    result = run_steps("deid", [maskers["contextual"]], docs)
    assert [(r["id"], r["reason"], r["detail"]) for r in result.rejected] == [
        ("i", "not_text", "text is int"),
        ("f", "not_text", "text is float"),
        ("l", "not_text", "text is list"),
        ("b", "not_text", "text is bytes"),
        ("c", "binary_text", "87% control or replacement characters"),
    ]
    assert result.stats.balanced() and set(result.stats.rejected_by_reason) <= set(DEID_REASONS)
    assert result.stats.chars_in == len(garbage) + len(long_line) + len(docs[-1]["text"])  # a non-string counts no characters
    assert result.kept[0]["text"].endswith("散步。联系电话<PHONE>") and len(result.kept[0]["text"]) == 1_000_011
    assert result.kept[1]["text"] == "联系人：<PERSON_1>，电话<PHONE>。"


# ---------------------------------------------------------------- what may be logged


def test_mask_sample_lines_uses_policy_all():
    assert mask_sample_lines([OFFICIALS, "电话13800138000"]) == [
        "出席会议的有<PERSON_1>、<PERSON_2>、<PERSON_3>、<PERSON_4>等同志。",
        "电话<PHONE>",
    ]


def test_sample_lines_are_drawn_from_the_masked_output_placeholders_first(tmp_path):
    shard = tmp_path / "part-00000.parquet"
    rows = [make_doc(f"u{i}", f"第{i}行普通文字。\n联系人：<PERSON_1>，电话<PHONE>，第{i}号。") for i in range(30)]
    write_shard(shard, rows)
    lines = sample_lines([shard], n=20)
    assert len(lines) == 20 and all("<PERSON_1>" in line for line in lines)
    assert sample_lines([shard], n=20) == lines  # the same run gives the same sample
