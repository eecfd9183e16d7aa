"""The extract stage on real small Chinese pages: exact titles and paragraphs, no boilerplate, exact reasons."""

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from pydantic import ValidationError

from tasks.extract import EXTRACT_REASONS, ExtractConfig, HtmlExtractor, build_steps, extract_main_text, is_html_doc
from tasks.extract.html import _drop_rules
from tasks.records import Reject, make_doc
from tasks.steps import run_steps

DATA = Path(__file__).parent / "data" / "extract"
CFG = ExtractConfig()

NEWS_TEXT = """我国科学家在量子通信领域取得新突破
本报北京5月20日电（记者李明）记者从中国科学院获悉，我国科研团队近日在量子通信领域取得重要进展，首次实现了超过一千公里的光纤量子密钥分发。
据介绍，该成果由中国科学技术大学牵头完成，相关论文已在国际学术期刊上发表。审稿人认为，这项工作“为构建广域量子通信网络奠定了坚实基础”。
从实验室走向应用
研究团队负责人表示，下一步将与通信运营商合作，推动技术在政务、金融等领域的示范应用。
目前，相关设备已完成小型化设计，体积缩小到原来的三分之一。
业内专家指出，量子通信具有理论上无条件安全的特点，未来有望在信息安全领域发挥重要作用。"""

FORUM_TEXT = """新手求助：阳台种番茄总是落花怎么办？
今年第一次在阳台种番茄，苗长得很壮，也开了不少花，
可是花开两三天就掉了，一个果都没坐住。
阳台朝南，每天浇一次水，施过两次复合肥。请问各位老师是哪里出了问题？
番茄落花多半是授粉不良，阳台没有风和昆虫，需要人工辅助授粉。
开花的时候每天上午轻轻摇动花序，或者用毛笔在花朵之间点一点。
另外夜间温度低于十五度也容易落花，注意保温。
谢谢老师！原来是授粉的问题，今天就去试试用毛笔点花。"""

GBK_TEXT = """市政府召开全市防汛工作会议
6月12日上午，市政府召开全市防汛工作会议，副市长陈喆出席会议并讲话。
会议指出，今年我市汛期降雨偏多，防汛形势严峻复杂。各区县、各部门要树牢底线思维，压紧压实防汛责任，确保安全度汛。
会议要求，要加强雨情水情监测预警，做好堤防、水库、地质灾害隐患点的巡查排查，提前转移受威胁群众。镕铸担当，守护家园。"""


def page(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def html_doc(url: str, html: str, **meta) -> dict:
    return make_doc(url, html, meta={"kind": "html", "content_type": "text/html", "charset": "utf-8", **meta})


# ---------------------------------------------------------------- extract_main_text


def test_news_page_keeps_title_and_paragraphs_in_order():
    page_text = extract_main_text(page("news.html"), CFG)
    assert page_text.title == "我国科学家在量子通信领域取得新突破"
    assert page_text.text == NEWS_TEXT
    assert page_text.paragraphs == 6
    assert page_text.container == "div#artibody.article-content"


@pytest.mark.parametrize(
    "boilerplate",
    [
        "首页", "财经", "登录",  # navigation
        "新人红包", "广告", "某某理财", "赞助商",  # ads
        "分享到", "微博", "QQ空间",  # share bar
        "网友评论", "点赞", "期待中", "发表评论", "说点什么",  # comments and the comment form
        "责任编辑", "打印", "上一篇", "下一篇", "相关新闻", "量子计算机研制",  # article furniture
        "热点排行", "当前位置", "来源：", "2024-05-21",  # sidebar, breadcrumb, byline
        "版权所有", "ICP备", "公网安备", "关于我们",  # footer
        "统计", "console", "_hmt", "text-indent", "注释",  # scripts, styles, HTML comments
        "百家乐",  # hidden SEO spam
    ],
)
def test_news_page_drops_boilerplate(boilerplate):
    assert boilerplate not in extract_main_text(page("news.html"), CFG).text


def test_forum_thread_keeps_every_post_without_user_furniture():
    thread = extract_main_text(page("forum.html"), CFG)
    assert thread.title == "新手求助：阳台种番茄总是落花怎么办？"
    assert thread.text == FORUM_TEXT
    for furniture in ("发表于", "只看该作者", "楼主", "积分", "签名", "举报", "立即注册", "Discuz", "ICP备", "下一页"):
        assert furniture not in thread.text


def test_gbk_bytes_are_decoded_as_gb18030():
    body = (DATA / "gbk.html").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("gb2312")  # the page declares gb2312 but uses GBK-only 喆 and 镕
    for charset in (None, "gb2312", "GBK"):
        decoded = extract_main_text(body, CFG, charset=charset)
        assert decoded.text == GBK_TEXT
    assert "栏目导航" not in decoded.text and "ICP备" not in decoded.text and "打印本页" not in decoded.text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>中国<b>科学</b>院</p>", "中国科学院"),
        ("<p>中国\n  <b>科学</b>\n院</p>", "中国科学院"),
        ("<p>　　中国科学院，<a href='/x'>量子</a>通信。</p>", "中国科学院，量子通信。"),
        ("<p>使用 <b>Python</b> 编程</p>", "使用 Python 编程"),
        ("<p>第一行<br>第二行<br/>第三行</p>", "第一行\n第二行\n第三行"),
        ("<div>前言<p>正文</p>后记</div>", "前言\n正文\n后记"),
        ("<table><tr><td>城市</td><td>人口</td></tr><tr><td>青溪</td><td>120万</td></tr></table>", "城市 人口\n青溪 120万"),
        ("<p>零宽\u200b字符&nbsp;和&#12288;全角空格</p>", "零宽字符 和 全角空格"),  # typed spaces stay
        ("<p>云岭明前绿茶 特级 250克罐装</p>", "云岭明前绿茶 特级 250克罐装"),
        ("<p>\n  　　第一句，\n  第二句。\n</p>", "第一句，第二句。"),  # source line breaks between Han go
    ],
)
def test_inline_elements_join_without_spaces_between_han(html, text):
    cfg = ExtractConfig(keep_title=False, min_paragraph_chars=0)
    assert extract_main_text(f"<html><body>{html}</body></html>", cfg).text == text


def test_title_without_h1_is_the_title_tag_without_site_suffix():
    html = "<html><head><title>青溪今年新增绿道一百公里_本地新闻_青禾网</title></head><body><p>全市新增绿道一百公里，串联起二十多个公园。</p></body></html>"
    assert extract_main_text(html, CFG).title == "青溪今年新增绿道一百公里"
    html = html.replace("_本地新闻_青禾网", " - 青禾网")
    assert extract_main_text(html, CFG).title == "青溪今年新增绿道一百公里"


def test_keep_title_false_leaves_the_title_in_meta_only():
    page_text = extract_main_text(page("news.html"), ExtractConfig(keep_title=False))
    assert page_text.title == "我国科学家在量子通信领域取得新突破"
    assert page_text.text == NEWS_TEXT.split("\n", 1)[1]


def test_page_wrapped_in_a_form_is_not_dropped():
    body = page("news.html").split("<body>", 1)[1]
    head = "<html><head><title>我国科学家在量子通信领域取得新突破</title></head>"
    wrapped = f'{head}<body><form id="form1" runat="server">{body}</form></html>'
    assert extract_main_text(wrapped, CFG).text == NEWS_TEXT


def test_guard_off_drops_a_page_wrapped_in_a_form():
    body = page("news.html").split("<body>", 1)[1]
    wrapped = f'<html><body><form id="form1">{body}</form></html>'
    assert extract_main_text(wrapped, ExtractConfig(drop_guard_share=1.0)).chars == 0


def test_comment_box_larger_than_the_article_is_still_dropped():
    article = "<p>青溪市今年将新建三座公园。公园预计明年五月建成。</p><p>届时将免费开放。欢迎市民游览。</p>"
    comments = "".join(f"<li>网友{i}：支持建公园。希望多种树。</li>" for i in range(3))
    html = f"<html><body><div class='main'>{article}</div><ul id='comment_list'>{comments}</ul></body></html>"
    text = extract_main_text(html, CFG).text  # the comments hold 6 of the page's 10 sentence ends
    assert text == "青溪市今年将新建三座公园。公园预计明年五月建成。\n届时将免费开放。欢迎市民游览。"


def test_configured_class_words_are_dropped():
    html = (
        "<html><body><div class='content'><p>青溪市今年将新建三座公园，方便市民休闲。</p><p>公园预计明年五月建成，届时将免费开放。</p>"
        "<div class='promoBox'>买一送一，活动火热进行中，机会不容错过。</div></div></body></html>"
    )
    assert "买一送一" in extract_main_text(html, CFG).text
    assert "买一送一" not in extract_main_text(html, ExtractConfig(drop_class_words=["promo*"])).text


def test_complex_css_selectors_go_through_soupsieve():
    cfg = ExtractConfig(drop_selectors=["div.article-content > p:nth-of-type(2)"], drop_class_words=[])
    text = extract_main_text(page("news.html"), cfg).text
    assert "本报北京" in text and "据介绍" not in text


@pytest.mark.parametrize("name", ["news.html", "forum.html"])
def test_fast_selector_matching_agrees_with_soupsieve(name):
    soup = BeautifulSoup(page(name), "lxml")
    rules = _drop_rules(tuple(CFG.drop_selectors), ())
    fast = [id(tag) for tag in soup.find_all(True) if rules.match(tag)]
    assert fast == [id(tag) for tag in soup.select(", ".join(CFG.drop_selectors))]
    assert fast  # the fixture has something to drop


# ---------------------------------------------------------------- config


def test_config_rejects_unknown_fields_bad_selectors_and_out_of_bounds():
    with pytest.raises(ValidationError, match="extra"):
        ExtractConfig(min_char=10)
    with pytest.raises(ValidationError, match="bad CSS selector"):
        ExtractConfig(drop_selectors=["div[class="])
    with pytest.raises(ValidationError, match="lowercase"):
        ExtractConfig(drop_class_words=["Share"])
    with pytest.raises(ValidationError, match="bad regular expression"):
        ExtractConfig(drop_line_patterns=["(分享"])
    with pytest.raises(ValidationError):
        ExtractConfig(max_link_density=1.5)
    assert all(field.description for field in ExtractConfig.model_fields.values())


# ---------------------------------------------------------------- the step


def test_step_replaces_text_and_records_title_extractor_and_html_size():
    html = page("news.html")
    [out] = HtmlExtractor(CFG)([html_doc("https://news.example/tech/2.html", html)])
    assert out["text"] == NEWS_TEXT
    assert out["meta"]["title"] == "我国科学家在量子通信领域取得新突破"
    assert out["meta"]["extractor"] == "bs4_v1"
    assert out["meta"]["html_chars"] == len(html)
    assert out["meta"]["kind"] == "html" and out["meta"]["charset"] == "utf-8"


def test_step_passes_pdf_and_image_records_unchanged():
    pdf = make_doc("https://gov.example/a.pdf", "", source="pdf", meta={"kind": "pdf"})
    image = make_doc("https://gov.example/a.png", "", source="image", meta={"kind": "image"})
    plain = make_doc("", "用户自己的纯文本语料，不是网页。")  # no kind, not HTML
    assert HtmlExtractor(CFG)([pdf, image, plain]) == [pdf, image, plain]


def test_record_without_kind_that_looks_like_html_is_extracted():
    doc = {"url": "https://news.example/tech/2.html", "text": page("news.html")}
    assert is_html_doc(doc)
    [out] = HtmlExtractor(CFG)([doc])
    assert out["text"] == NEWS_TEXT


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ("   \n", "empty_html", ""),
        (page("short.html"), "too_short", "12 chars < 50"),
        (b"\x00\x01\x02\x03" * 64, "parse_error", "ValueError: binary body"),
    ],
)
def test_step_reasons(text, reason, detail):
    [out] = HtmlExtractor(CFG)([html_doc("https://x.example/", "") | {"text": text}])
    assert isinstance(out, Reject)
    assert out.reason == reason
    assert out.detail.startswith(detail) if detail else out.detail == ""


def test_gbk_record_given_as_bytes_uses_its_charset():
    doc = html_doc("https://gov.example/xw/1.html", "", charset="gb2312") | {"text": (DATA / "gbk.html").read_bytes()}
    [out] = HtmlExtractor(CFG)([doc])
    assert out["text"] == GBK_TEXT
    assert out["meta"]["title"] == "市政府召开全市防汛工作会议"


def test_run_steps_counts_kept_and_rejected_by_reason():
    docs = [
        html_doc("https://news.example/tech/2.html", page("news.html")),
        html_doc("https://bbs.example/thread-88-1-1.html", page("forum.html")),
        html_doc("https://gov.example/xw/1.html", (DATA / "gbk.html").read_bytes().decode("gb18030"), charset="gb2312"),
        html_doc("https://news.example/jump.html", page("short.html")),
        html_doc("https://news.example/blank.html", ""),
        make_doc("https://gov.example/a.pdf", "", source="pdf", meta={"kind": "pdf"}),
    ]
    result = run_steps("extract", build_steps(CFG), docs)
    assert [d["text"].split("\n", 1)[0] for d in result.kept] == [
        "我国科学家在量子通信领域取得新突破",
        "新手求助：阳台种番茄总是落花怎么办？",
        "市政府召开全市防汛工作会议",
        "",  # the PDF, untouched, waiting for OCR
    ]
    assert result.kept[3] == docs[5]
    assert [(r["url"], r["stage"], r["reason"]) for r in result.rejected] == [
        ("https://news.example/jump.html", "extract", "too_short"),
        ("https://news.example/blank.html", "extract", "empty_html"),
    ]
    assert result.rejected[0]["text"] == page("short.html")  # the rejected row keeps the original HTML
    stats = result.stats
    assert (stats.docs_in, stats.docs_kept, stats.docs_rejected) == (6, 4, 2)
    assert stats.rejected_by_reason == {"too_short": 1, "empty_html": 1}
    assert stats.balanced()
    assert set(stats.seconds_by_step) == {"extract_html"}
    assert set(stats.rejected_by_reason) <= set(EXTRACT_REASONS)
