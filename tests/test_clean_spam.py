"""Ad spans in the clean stage: the exact span cut from a line, the rest of the line kept, spammers' variants
folded, and the texts that mention such words (court reports, crackdown news, a memory of a game) kept whole."""

import pytest

from tasks.clean import CleanConfig, build_steps
from tasks.clean.spam import SpamLexicon, fold_text
from tasks.records import make_doc
from tasks.steps import run_steps

REVIEW = "酒店位置很好，离地铁站步行五分钟，房间干净整洁，床品也很舒服。早餐种类丰富，服务员态度热情，下次出差还会选择这里。"
NEWS = (
    "本市今年将新开通公交线路二十条，优化调整线路四十条。交通部门表示，新开线路主要覆盖新建居住区和产业园区，"
    "首末班时间将根据客流情况动态调整。"
)


@pytest.fixture(scope="module")
def steps():
    return build_steps(CleanConfig())


@pytest.fixture(scope="module")
def lexicon():
    return SpamLexicon()


def clean_one(steps, text: str) -> dict:
    result = run_steps("clean", steps, [make_doc("t", text)])
    assert result.stats.balanced()
    return (result.kept + result.rejected)[0]


def spans(lexicon: SpamLexicon, text: str) -> list[tuple[str, str, bool]]:
    return [(text[start:end], category, whole) for start, end, category, whole in lexicon.scan(text).spans]


# ---------------------------------------------------------------- exact spans


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an ad glued to a review after its last sentence: the review stays
        (
            REVIEW + "…限时优惠成人影视天堂火爆进行中www.xpj888.com详情咨询",
            [("…限时优惠成人影视天堂火爆进行中www.xpj888.com详情咨询", "porn", False)],
        ),
        # a line that is nothing but an ad goes whole
        ("澳门新葡京火爆进行中", [("澳门新葡京火爆进行中", "gambling", True)]),
        ("贪玩蓝月限时优惠是兄弟就来砍我装备全靠打", [("贪玩蓝月限时优惠是兄弟就来砍我装备全靠打", "game", True)]),
        # a short line that keywords cover, with no call to action at all
        ("澳门新葡京", [("澳门新葡京", "gambling", True)]),
        # the ad's own opening question goes with it
        (NEWS + "急用钱？黑户可贷，当天放款，加V信：loan888", [("急用钱？黑户可贷，当天放款，加V信：loan888", "loan", False)]),
        # glued inside a clause, far enough in: the clause's head stays
        (
            "这次住的房间干净又安静特别推荐百家乐天天返水注册送彩金",
            [("百家乐天天返水注册送彩金", "gambling", False)],
        ),
    ],
)
def test_ad_spans_are_exact(lexicon, text, expected):
    assert spans(lexicon, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # spaced letters and a homophone: 澳 门 新 莆 京 is 澳门新葡京, 薇信 is 微信, 八八八… a phone number
        (REVIEW + "澳 门 新 莆 京 上线送彩金，加 薇 信 八八八八八八八", "澳 门 新 莆 京 上线送彩金，加 薇 信 八八八八八八八"),
        # full-width letters and digits, Chinese numerals: ＶＩＰ８ is vip8, 一刀九九九 is 一刀999
        (NEWS + "\n传奇私服今晚开服，上线送ＶＩＰ８，一刀九九九", "传奇私服今晚开服，上线送ＶＩＰ８，一刀九九九"),
        # 扣扣 for QQ, 威信 for 微信
        (REVIEW + "\n百家乐天天返水，加扣扣详谈", "百家乐天天返水，加扣扣详谈"),
        (REVIEW + "\n代开增值税专票，加威信 fp66688", "代开增值税专票，加威信 fp66688"),
        # a word spelled with separators between its letters: 刷·单·返·现
        (REVIEW + "\n刷·单·返·现，日结，加v", "刷·单·返·现，日结，加v"),
    ],
)
def test_variants_are_found_by_folding(lexicon, text, expected):
    assert [span for span, _, _ in spans(lexicon, text)] == [expected]


def test_fold_text_maps_folded_positions_back():
    same, folded = fold_text("注册 送 彩 金！加ＱＱ")
    assert same == "注册 送 彩 金!加qq"  # one character for one
    assert folded.text == "注册送彩金!加qq"
    start = folded.text.index("送彩金")
    assert (folded.original(start), folded.original(start + 2) + 1) == (3, 8)  # 送 彩 金 in the original


def test_extra_spam_words_extend_a_category_and_fold_too():
    lexicon = SpamLexicon(extra_words={"scam": ["代写论文"]})
    assert spans(lexicon, REVIEW + "代 写 论 文，包过，加Ｖ信") == [("代 写 论 文，包过，加Ｖ信", "scam", False)]
    assert spans(SpamLexicon(), REVIEW + "代写论文，加Ｖ信") == []  # one call to action alone is no ad


# ---------------------------------------------------------------- what stays


@pytest.mark.parametrize(
    "text",
    [
        # a court report that quotes the ad it is about
        "被告人张某以营利为目的，在境外网站开设百家乐赌局，招揽参赌人员投注，法院审理认为，其行为已构成开设赌场罪，"
        "依法判处有期徒刑三年。庭审中，检方出示了涉案网站的推广截图，截图显示“真人荷官在线发牌，注册送彩金”等字样。",
        # news on a porn crackdown
        "近日，市扫黄打非办公室联合网警开展专项行动，依法查处一批传播淫秽色情信息的网站和账号。通报称，部分账号以"
        "“深夜福利”“同城约”为噱头，诱导网民添加微信，涉嫌违法犯罪，相关线索已移交公安机关。",
        # a memory that names one game keyword
        "我小时候在网吧玩过传奇私服，那时候大家都省下零花钱去包夜，现在想起来还是很怀念那段和同学一起打怪升级的日子。",
        # a headline naming casinos: keywords cover half of it, not most
        "澳门赌场收入下降\n今年前三季度，澳门博彩毛收入同比下降一成，特区政府表示将继续推动经济适度多元发展，培育会展和文旅产业。",
    ],
)
def test_texts_that_mention_ad_words_are_kept_whole(steps, text):
    doc = clean_one(steps, text)
    assert "reason" not in doc
    assert doc["text"] == text
    assert doc["signals"]["removed_chars.ad_span"] == 0


def test_a_report_line_is_not_an_ad_but_the_same_words_as_an_ad_are(lexicon):
    assert spans(lexicon, "警方查明，该团伙在境外开设线上赌场，招募真人荷官直播发牌，涉嫌开设赌场罪。") == []
    assert spans(lexicon, "澳门首家线上赌场，真人荷官直播发牌，注册就送") != []


# ---------------------------------------------------------------- the stage


def test_the_stage_cuts_the_span_keeps_the_review_and_counts(steps):
    doc = clean_one(steps, REVIEW + "…限时优惠成人影视天堂火爆进行中www.xpj888.com详情咨询")
    assert doc["text"] == REVIEW
    # the span goes with its address: ad spans are cut before the noise step would take the URL alone
    span = "…限时优惠成人影视天堂火爆进行中www.xpj888.com详情咨询"
    assert doc["signals"]["removed_chars.ad_span"] == doc["signals"]["removed_chars.spam_porn"] == len(span)
    assert doc["signals"]["removed_chars.url"] == 0
    assert doc["signals"]["removed_lines.spam_porn"] == 0


def test_the_stage_drops_an_ad_line_between_good_lines(steps):
    doc = clean_one(steps, NEWS + "\n澳门新葡京火爆进行中\n" + REVIEW)
    assert doc["text"] == NEWS + "\n" + REVIEW
    assert (doc["signals"]["removed_lines.spam_gambling"], doc["signals"]["removed_chars.spam_gambling"]) == (1, 10)
    assert doc["signals"]["removed_chars.ad_span"] == 0


def test_a_document_that_is_mostly_ads_is_rejected_with_its_category(steps):
    text = (
        "深夜福利，美女主播一对一私密直播，寂寞的夜晚有人陪你聊天\n"
        "同城约，上门服务，全城最快半小时到达，加微信看片\n"
        "免费看片网址 www.abc.com 速来！！！\n"
        "今天天气真好，出去走走吧。"
    )
    doc = clean_one(steps, text)
    assert (doc["reason"], doc["detail"]) == ("spam_porn", "spam_line_ratio 0.6494 > 0.3")


def test_loan_ads_have_their_own_reason(steps):
    text = (
        "无抵押贷款，黑户可贷，当天放款，不看征信！\n信用卡套现、花呗提现、代办大额信用卡，手续简单利息低\n"
        "有需要的朋友加微信详情咨询，24小时在线为您服务"
    )
    assert clean_one(steps, text)["reason"] == "spam_loan"


# ---------------------------------------------------------------- span edges and guards (benchmarks/ad_spans.py, dev part)

PARK = (
    "新建的滨江公园昨天正式开放，园内种植了两百多种花木，沿江步道全长六公里，周末来散步的市民络绎不绝。"
    "公园管理处表示，园内还将陆续增设儿童游乐区、健身器材和自行车道，并在入口处设置免费饮水点。"
)


def test_an_ad_glued_before_a_sentence_leaves_the_sentence(lexicon):
    text = NEWS + "\n太阳城百家乐天天返水，加微信：bet777→→→今年春节前后全市还将加开夜间公交，方便市民出行。"
    assert spans(lexicon, text) == [("太阳城百家乐天天返水，加微信：bet777→→→", "gambling", False)]


def test_an_id_after_v_xin_without_a_colon_is_a_contact(lexicon):
    assert spans(lexicon, NEWS + "蜘蛛池出租，包收录，V信spider2024") == [("蜘蛛池出租，包收录，V信spider2024", "seo", False)]


def test_topic_words_in_prose_without_a_call_are_no_ad(steps, lexicon):
    text = "晚上路过葡京酒店，门口灯光非常耀眼。同行的朋友想进赌场看看，我们只在大堂里站了一会儿就出来了，最后去吃了猪扒包。"
    assert spans(lexicon, text) == []  # two gambling words, no call to action or contact, keywords 0.15 of the run
    assert clean_one(steps, text)["text"] == text


def test_report_words_far_from_an_ad_do_not_protect_it(steps):
    story = "记者从市交通局获悉，" + NEWS + "据了解，相关部门将加强调查，依法保障乘客权益。\n" + PARK + "\n" + REVIEW
    doc = clean_one(steps, story + "百家乐天天返水，加微信：bet777")
    assert "reason" not in doc and doc["text"] == story  # four report words, all over 100 characters away


def test_a_warning_that_quotes_an_ad_keeps_the_quote(steps):
    warning = (
        "警方提醒：近期有不法分子在社交平台发布如下广告，诱骗市民上当：\n“百家乐天天返水，加微信：bet777”\n"
        "请广大市民提高警惕，谨防受骗。" + NEWS
    )
    doc = clean_one(steps, warning)
    assert "reason" not in doc and doc["text"] == warning and doc["signals"]["removed_chars.ad_span"] == 0
