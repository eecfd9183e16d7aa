"""Main text on the shapes real news pages take: content outside <body>, a headline split into lines, bodies
without <p>, a meta charset that lies, and the boilerplate lines inside the body (editors, sources, notices,
related lists). Every page is a tiny literal; the expected text is exact."""

import pytest

from tasks.extract import ExtractConfig, extract_main_text

CFG = ExtractConfig(keep_title=False)

P1 = "记者从市交通运输局获悉，本市今年将新开通公交线路二十条，优化调整线路四十条，进一步方便市民出行。"
P2 = "据介绍，新开线路主要覆盖新建居住区和产业园区，首末班时间将根据客流情况动态调整，确保早晚高峰运力充足。"
P3 = "交通部门提醒，线路调整期间，市民可通过官方渠道查询实时到站信息，合理安排出行时间，避免在站台长时间等候。"


def article(*lines: str, title: str = "本市今年将新开通公交线路二十条", head: str = "") -> str:
    body = "".join(f"<p>{line}</p>" for line in lines)
    return (
        f"<html><head><title>{title}_新闻频道_某某网</title>{head}</head><body>"
        "<div class='nav'><a href='/'>首页</a><a href='/n'>新闻</a></div>"
        f"<div id='content'>{body}</div>"
        "<div class='footer'>关于我们 联系我们</div></body></html>"
    )


def body_text(html: str | bytes) -> str:
    return extract_main_text(html, CFG).text


def test_content_that_lxml_puts_outside_body_is_found():
    # a header include closes </html> early; lxml puts the article in a second <html> after the first body
    html = (
        "<html><head><title>公交新线路</title></head><body><div><a href='/'>首页</a></div></body></html>"
        f"<div class='main'><p>{P1}</p><p>{P2}</p></div>"
    )
    assert body_text(html) == f"{P1}\n{P2}"


def test_headline_split_by_br_in_the_first_paragraph_is_not_body_text():
    html = (
        "<html><head><title>关于批准调整本市公交线路规划的决定__政府公报_某某市政府网</title></head><body>"
        "<div id='content'><p><strong>关于批准调整本市<br>公交线路规划的决定</strong></p>"
        f"<p>{P1}</p><p>{P2}</p></div></body></html>"
    )
    assert body_text(html) == f"{P1}\n{P2}"


def test_h1_repeating_the_title_appears_once_with_keep_title():
    html = article("本市今年将新开通公交线路二十条", P1, P2)
    page = extract_main_text(html, ExtractConfig())
    assert page.text == f"本市今年将新开通公交线路二十条\n{P1}\n{P2}"


def test_body_without_p_tags_is_one_text_node():
    html = (
        "<html><head><title>公交新线路</title></head><body><div class='menu'><a href='/a'>首页</a></div>"
        f"<div class='txt_con'>{P1}<br>{P2}</div><p></p></body></html>"
    )
    assert body_text(html) == f"{P1}\n{P2}"


def test_meta_gb2312_over_utf8_bytes_decodes_as_utf8():
    html = article(P1, P2, head='<meta http-equiv="Content-Type" content="text/html; charset=gb2312">')
    assert body_text(html.encode("utf-8")) == f"{P1}\n{P2}"


@pytest.mark.parametrize(
    "line",
    [
        "本文来源：新京报责任编辑：杜硕_NB12556",
        "（原标题：公交新线路本月开通 覆盖多个新建居住区）",
        "编辑 刘晓阳 校对 李铭",
        "新京报记者 陆一夫",
        "责任编辑：王小明",
        "来源：交通运输局",
        "您所在的位置：首页 > 快讯 > 公司",
        "https://www.example.gov.cn/",
        "（点击看清晰大图）",
        "扫码关注我们的微信公众号",
        "关注",
        "声明：本站力求信息真实、准确，文章提及内容仅供参考，不构成实质性投资建议，据此操作风险自担，转载请注明出处并保留原文链接。",
        "特别声明：以上内容(如有图片或视频亦包括在内)为自媒体平台用户上传并发布，本平台仅提供信息存储服务，不代表本平台观点。",
        "Notice: The content above (including the pictures and videos if any) is uploaded and posted by a user.",
    ],
)
def test_boilerplate_lines_inside_the_body_go(line):
    assert body_text(article(P1, P2, line, P3)) == f"{P1}\n{P2}\n{P3}"


@pytest.mark.parametrize(
    "line",
    [
        "记者了解到这一情况。",  # a sentence that starts with 记者, not a byline
        "摄影技巧",  # a subheading that starts with a role word but names nobody
        "关注民生",  # a subheading, not a follow button
        "声明发布后，公司股价当日上涨百分之五，市场普遍认为这一表态有助于稳定投资者信心。",
    ],
)
def test_body_lines_that_look_like_boilerplate_stay(line):
    assert body_text(article(P1, line, P2)) == f"{P1}\n{line}\n{P2}"


def test_related_list_after_most_of_the_article_ends_it():
    related = "延伸 · 推荐"
    teaser = "近日，某地一社区民警在开展辖区人口核查工作时平均日拨百余个电话，被电信部门误判后停机。"
    assert body_text(article(P1, P2, P3, related, teaser)) == f"{P1}\n{P2}\n{P3}"


def test_related_heading_near_the_top_does_not_end_the_article():
    # before half the article's text: a section heading of the article itself, so the rest stays
    assert body_text(article(P1, "相关阅读", P2, P3)) == f"{P1}\n{P2}\n{P3}"


def test_a_box_of_linked_headlines_with_summaries_goes_as_a_block():
    items = "".join(
        f"<div><a href='/n/{k}'>公交线路调整第{k}批名单公布</a><p>共{k}条线路调整，详见附件说明。</p></div>" for k in range(1, 4)
    )
    html = (
        "<html><head><title>公交新线路</title></head><body><div id='content'>"
        f"<p>{P1}</p><p>{P2}</p><p>{P3}</p><div class='box'>{items}</div></div></body></html>"
    )
    assert body_text(html) == f"{P1}\n{P2}\n{P3}"
