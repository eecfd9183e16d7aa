"""Regenerate the bundled demo web site: data/sample/site/, data/sample/gold/ and site/MANIFEST.json.

    python data/sample/build_site.py            # writes everything; deterministic, rebuilds are byte-identical
    python data/sample/build_site.py --verify   # then serves site/ with http.server and checks what a crawler sees

Tool dependencies (generator only; the project itself does not need them):
    apt-get install fonts-wqy-zenhei          # WenQuanYi Zen Hei, the CJK TrueType collection for the PDF and PNGs
    pip install reportlab pillow              # reportlab: PDF with a Chinese text layer; pillow: images, scanned PDF
    pip install pypdfium2 charset-normalizer  # --verify only: read the PDFs back, detect the undeclared GBK page

All Chinese text lives in site_text.py beside this file and was written for this project. What each page is
there to exercise is in README.md and, per file, in the "features" of site/MANIFEST.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import io
import json
import posixpath
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import site_text as T

HERE = Path(__file__).resolve().parent
SITE = HERE / "site"
GOLD = HERE / "gold"
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"  # Debian package fonts-wqy-zenhei
FIXED_DATE = dt.datetime(2026, 3, 10, 12, 0, 0)  # PDF metadata dates: rebuilds are byte-identical
SECTIONS = ["news", "forum", "shop", "docs"]
LEGACY_ENCODINGS = ("gbk", "gb2312", "gb18030", "big5")

# ------------------------------------------------------------------------------------------------ text signals
# Only used to write MANIFEST "features" from the gold text, so the manifest cannot drift from the pages.
EMOJI_RE = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")
ID_RE = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
URL_RE = re.compile(r"https?://\S+|www\.[A-Za-z0-9-]+\.\S+")
REPEAT_PUNCT_RE = re.compile(r"([！？!?。，、～~…])\1{2,}")
SPAM_MARKERS = {  # distinctive phrases only; the legitimate text on the site avoids them on purpose
    "spam_gambling": ["赌场", "荷官", "百家乐", "彩金", "棋牌", "下注", "賭場"],
    "spam_porn": ["私密直播", "裸聊", "深夜福利", "美女主播"],
    "spam_game": ["私服", "一刀999", "元宝"],
    "spam_ad": ["刷单", "返现", "加微信"],
}
NO_LINE_START = "，。、；：！？）」』”"  # CJK punctuation that must not begin a wrapped line


def id_checksum_ok(s: str) -> bool:
    """True when the 18th character is the GB 11643 check digit of the first 17."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(s[:17], weights)) % 11] == s[17]


def text_features(text: str) -> list[str]:
    """The MANIFEST feature names a cleaning stage should find in `text`."""
    checks = [
        ("emoji", EMOJI_RE.search(text)),
        ("phone", PHONE_RE.search(text)),
        ("id_number", any(id_checksum_ok(m) for m in ID_RE.findall(text))),
        ("email", EMAIL_RE.search(text)),
        ("url", URL_RE.search(text)),
        ("repeated_punct", REPEAT_PUNCT_RE.search(text)),
        ("ext_b_char", any(ord(c) >= 0x20000 for c in text)),
    ]
    checks += [(name, any(w in text for w in words)) for name, words in SPAM_MARKERS.items()]
    return [name for name, hit in checks if hit]


# ------------------------------------------------------------------------------------------------ links
def rel(page: str, target: str) -> str:
    """Relative href from one site path to another."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def resolve(page: str, href: str) -> str | None:
    """Site path an href on `page` leads to (query and fragment dropped, dir/ -> dir/index.html); None if off-site."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:  # http://other, //ads.example.net, mailto:, javascript:
        return None
    if not parts.path:  # "#top", "?page=2": the page itself
        return page
    base = "/" + posixpath.dirname(page) + "/" if "/" in page else "/"
    path = parts.path if parts.path.startswith("/") else base + parts.path
    norm = posixpath.normpath(path).lstrip("/")
    if path.endswith("/") or norm in ("", "."):
        norm = posixpath.join(norm if norm not in ("", ".") else "", "index.html")
    return norm


def nav_hrefs(page: str, style: str) -> dict[str, str]:
    """Menu hrefs in one of three spellings, so the same page is reached through several URLs."""
    if style == "abs":  # absolute paths
        return {"home": "/", **{s: f"/{s}/index.html" for s in SECTIONS}}
    if style == "dir":  # directory URLs, which http.server answers with the same index.html
        return {"home": "/", **{s: f"/{s}/" for s in SECTIONS}}
    return {"home": rel(page, "index.html"), **{s: rel(page, f"{s}/index.html") for s in SECTIONS}}


def hot_links(page: dict, siblings: list[dict], n: int = 5) -> list[tuple[str, str]]:
    """Sidebar links to sibling pages in mixed spellings: relative, ./, absolute, utm query, #fragment."""
    titles = page.get("hot_titles", {})
    out = []
    for i, other in enumerate([x for x in siblings if x["path"] != page["path"]][:n]):
        target, r = other["path"], rel(page["path"], other["path"])
        href = [r, "./" + r, "/" + target, r + "?utm_source=hot&utm_medium=sidebar", "/" + target + "#comments"][i % 5]
        out.append((href, titles.get(target) or other.get("list_title", other["title"])))
    return out


# ------------------------------------------------------------------------------------------------ markup pieces
def esc(s: str) -> str:
    return html.escape(s, quote=False)


def style_block(variant: str, L: dict) -> str:
    common = (
        f'body{{margin:0;font:14px/1.8 "Microsoft YaHei","{L["font"]}",SimSun,sans-serif;color:#333}}\n'
        ".ad,.advert,#banner-ad{border:1px dashed #ccc;color:#c00;text-align:center;margin:8px 0}\n"
        ".share{color:#999;font-size:12px}\n#comments{border-top:2px solid #eee}\n"
    )
    extra = {
        "semantic": "header,nav,footer{background:#f6f6f6}\narticle p{text-indent:2em}\n",
        "divsoup": ".w960{width:960px;margin:0 auto}.main-l{float:left;width:680px}.main-r{float:right;width:260px}\n"
        '.clearfix:after{content:"";display:block;clear:both}\n',
        "legacy": "td{font-size:12px}.content h1{font-size:20px;text-align:center}\n",
        "forum": ".post{border:1px solid #ddd;margin:6px 0}.post-author{background:#eef}.sign{color:#aaa}\n",
        "shop": ".price{color:#e4393c;font-size:24px}.specs td{border:1px solid #eee;padding:2px 8px}\n",
    }[variant]
    return f'<style type="text/css">\n{common}{extra}</style>'


def script_head(L: dict) -> str:
    return (
        '<script type="text/javascript">\n'
        "var _hmt = _hmt || [];\n"
        "(function() {\n"
        '  var hm = document.createElement("script");\n'
        '  hm.src = "https://hm.example.net/hm.js?5f3c2a9b";\n'
        '  var s = document.getElementsByTagName("script")[0];\n'
        "  s.parentNode.insertBefore(hm, s);\n"
        "})();\n"
        f'var PAGE_CONFIG = {{channel: "{L["news"]}", commentTip: "{L["tip"]}", adSlots: ["banner-ad", "right-1"]}};\n'
        "</script>"
    )


def script_tail(L: dict) -> str:
    return (
        "<script>\n"
        "document.querySelectorAll('.share a').forEach(function (a) {\n"
        f"  a.onclick = function () {{ alert('{L['share_tip']}'); return false; }};\n"
        "});\n"
        "</script>"
    )


def head(page: dict, title_suffix: str, variant: str, L: dict) -> str:
    label = "utf-8" if page["encoding"] == "utf-8-sig" else page["encoding"]
    decl = {
        "meta": f'<meta charset="{label}">\n',
        "http-equiv": f'<meta http-equiv="Content-Type" content="text/html; charset={label}">\n',
        None: "",
    }[page["charset"]]
    desc = page["paras"][0][:60] if page.get("paras") else page["title"]
    lang = "zh-TW" if page.get("traditional") else "zh-CN"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n{decl}'
        f'<title>{esc(page["title"])}{title_suffix}</title>\n'
        f'<meta name="keywords" content="{L["site"]},{L["news_ch"]}">\n'
        f'<meta name="description" content="{html.escape(desc)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{style_block(variant, L)}\n{script_head(L)}\n</head>\n"
    )


def ad(kind: str, text: str, n: int, L: dict) -> str:
    attr = {"ad": 'class="ad"', "advert": 'class="advert"', "banner": 'id="banner-ad" class="ad-banner"'}[kind]
    return (
        f'<div {attr}><a href="//ads.example.net/click?id={n}" target="_blank" rel="nofollow">{esc(text)}</a>'
        f'<span class="ad-label">{L["ad_label"]}</span></div>'
    )


def share_bar(L: dict) -> str:
    links = " ".join(f'<a href="javascript:void(0)" class="{k}">{L[k]}</a>' for k in ("weibo", "wechat", "qzone"))
    return f'<div class="share">{L["share"]}{links}</div>'


def comments_block(comments: list, L: dict, heading: str) -> str:
    items = "\n".join(
        f'<li class="comment" id="reply-{i}"><span class="user">{esc(u)}</span> <span class="time">{esc(t)}</span>'
        f'<p class="ctext">{esc(c)}</p><a href="#reply-{i}" class="reply-link">{L["reply"]}</a></li>'
        for i, (u, t, c) in enumerate(comments, 1)
    )
    return (
        f'<div id="comments"><h3>{heading}（{len(comments)}）</h3>\n<ul class="comment-list">\n{items}\n</ul>\n'
        f'<div class="comment-form"><textarea placeholder="{L["tip"]}"></textarea>'
        f'<button>{L["post"]}</button></div></div>'
    )


def footer_html(tag: str, L: dict) -> str:
    lines = "".join(f"<p>{esc(x)}</p>" for x in L["footer"])
    return f'<footer class="site-footer">{lines}</footer>' if tag == "footer" else f'<div class="{tag}">{lines}</div>'


def link_list(items: list[tuple[str, str]], cls: str) -> str:
    return f'<ul class="{cls}">' + "".join(f'<li><a href="{esc(h)}">{esc(t)}</a></li>' for h, t in items) + "</ul>"


def paras_html(paras: list[str]) -> str:
    return "\n".join(f"<p>{esc(p)}</p>" for p in paras)


def menu(nav: dict, L: dict, sep: str, wrap: str = "{}") -> str:
    return sep.join(f'<a href="{nav[k]}">{wrap.format(L[k])}</a>' for k in ["home", *SECTIONS])


# ------------------------------------------------------------------------------------------------ layouts
def render_semantic(page: dict, hot: list, L: dict) -> str:
    """HTML5 tags throughout: header, nav, main, article, aside, footer."""
    nav = nav_hrefs(page["path"], "abs" if page.get("abs_links") else "rel")
    sec = page["path"].split("/")[0]
    byline = " ".join(x for x in [page["time"], L["source"] + page["source"], page["author"]] if x)
    items = "".join(f'<li><a href="{nav[k]}">{L[k]}</a></li>' for k in ["home", *SECTIONS])
    return (
        head(page, f" - {L['news_ch']} - {L['site']}", "semantic", L)
        + '<body>\n<a id="top"></a>\n'
        f'<header class="site-header"><div class="logo"><a href="{nav["home"]}">'
        f'<img src="/images/logo.png" alt="{L["site"]}"></a></div>'
        f'<form class="search" action="/search"><input name="q" placeholder="{L["search_ph"]}">'
        f'<button>{L["search"]}</button></form></header>\n'
        f'<nav class="main-nav"><ul>{items}</ul></nav>\n'
        + ad("banner", L["ad_home"], 11, L)
        + "\n"
        f'<nav class="breadcrumb" aria-label="breadcrumb">{L["here"]}<a href="{nav["home"]}">{L["home"]}</a> &gt; '
        f'<a href="{nav[sec]}">{L[sec]}</a> &gt; {L["body"]}</nav>\n'
        '<main id="main">\n<article>\n'
        f'<h1>{esc(page["title"])}</h1>\n<div class="meta">{esc(byline)}</div>\n'
        f'<div class="article-body">\n{paras_html(page["paras"])}\n</div>\n'
        f'<div class="editor">{L["editor"]}</div>\n</article>\n'
        + share_bar(L)
        + "\n"
        + comments_block(page["comments"], L, L["comments"])
        + "\n</main>\n"
        f'<aside class="sidebar"><h3>{L["hot"]}</h3>{link_list(hot, "hot-list")}\n'
        + ad("ad", L["ad_gamble"], 12, L)
        + "</aside>\n"
        + footer_html("footer", L)
        + f'\n<noscript>{L["noscript"]}</noscript>\n{script_tail(L)}\n</body>\n</html>\n'
    )


def render_divsoup(page: dict, hot: list, L: dict) -> str:
    """No semantic tags: everything is a <div> with a class name, like many CMS templates."""
    nav = nav_hrefs(page["path"], "dir")
    sec = page["path"].split("/")[0]
    info = " ".join(x for x in [page.get("time", ""), page.get("source", ""), page.get("author", "")] if x)
    seo = (
        f'<div style="display:none">{T.HIDDEN_SEO} '
        f'<a href="http://www.lucky-bet.example/">{T.HIDDEN_SEO[:2]}</a></div>\n'
        if page.get("hidden_seo")
        else ""
    )
    sig = f'<div class="sign">{esc(page["signature"])}</div>\n' if page.get("signature") else ""
    return (
        head(page, f"_{L['site']}", "divsoup", L)
        + f'<body>\n<div id="wrap">\n<div class="top"><div class="logo"><a href="/">{L["site"]}</a></div>'
        f'<div class="menu">{menu(nav, L, " | ")}</div></div>\n'
        f'<div class="crumbs"><a href="/">{L["home"]}</a> &raquo; <a href="{nav[sec]}">{L[sec]}</a> &raquo; '
        f'{esc(page["title"][:12])}…</div>\n'
        '<div class="w960 clearfix">\n<div class="main-l">\n<!-- 正文开始 -->\n<div class="content">\n'
        f'<div class="title"><h1>{esc(page["title"])}</h1></div>\n<div class="info">{esc(info)}</div>\n'
        f'<div class="txt">\n{paras_html(page["paras"])}\n{seo}</div>\n{sig}</div>\n<!-- 正文结束 -->\n'
        + ad("advert", L["ad_game"], 21, L)
        + "\n"
        + share_bar(L)
        + "\n"
        + comments_block(page["comments"], L, L["comments"])
        + '\n</div>\n<div class="main-r">\n'
        f'<div class="box"><div class="hd">{L["hot"]}</div><div class="bd">{link_list(hot, "list")}</div></div>\n'
        + ad("ad", L["ad_porn"], 22, L)
        + "\n</div>\n</div>\n"
        + footer_html("foot", L)
        + "\n</div>\n"
        + script_tail(L)
        + "\n</body>\n</html>\n"
    )


def render_legacy(page: dict, hot: list, L: dict) -> str:
    """2000s-style table layout; optionally paragraphs separated by <br><br> instead of <p>."""
    nav = nav_hrefs(page["path"], "rel")
    if page.get("br_paragraphs"):
        body = "\n".join("&nbsp;&nbsp;&nbsp;&nbsp;" + esc(x) + "<br><br>" for x in page["paras"])
    else:
        body = paras_html(page["paras"])
    info = f'{L["published"]}{page["time"]}　{L["source"]}{page["source"]}　{L["author"]}{page["author"]}'
    white_menu = menu(nav, L, " | ", '<font color="#ffffff">{}</font>')
    sizes = " ".join(f'<a href="javascript:setFont({n})">{L[k]}</a>' for n, k in
                     [(16, "font_big"), (14, "font_mid"), (12, "font_small")])
    return (
        head(page, f"-{L['site']}", "legacy", L)
        + '<body topmargin="0" leftmargin="0">\n'
        '<table width="960" border="0" cellpadding="0" cellspacing="0" align="center">\n'
        f'<tr><td class="top"><img src="../images/logo.gif" alt="{L["site"]}" width="180" height="60">'
        f'<font color="#999999">{L["slogan"]}</font></td></tr>\n'
        f'<tr><td class="menu" bgcolor="#0066cc">{white_menu}</td></tr>\n'
        "</table>\n"
        '<table width="960" border="0" cellpadding="0" cellspacing="0" align="center"><tr>\n'
        '<td width="680" valign="top">\n'
        f'<div class="position">{L["here_legacy"]}<a href="{nav["home"]}">{L["home"]}</a> &gt;&gt; '
        f'<a href="{nav["news"]}">{L["news_center"]}</a> &gt;&gt; {L["body"]}</div>\n'
        '<!-- 正文开始 -->\n<div class="content">\n'
        f'<h1>{esc(page["title"])}</h1>\n'
        f'<div class="info">{esc(info)}　{L["font_size"]}{sizes}{L["font_end"]}</div>\n'
        f'<div id="text">\n{body}\n</div>\n'
        f'<div class="page-tools"><a href="javascript:window.print()">{L["print_page"]}</a>'
        f'<a href="javascript:window.close()">{L["close_window"]}</a></div>\n'
        "</div>\n<!-- 正文结束 -->\n"
        + ad("advert", L["ad_game"], 31, L)
        + "\n"
        + share_bar(L)
        + "\n"
        + comments_block(page["comments"], L, L["comments"])
        + '\n</td>\n<td width="20"></td>\n<td width="260" valign="top" class="right">\n'
        f'<table width="100%" class="box"><tr><td class="hd"><b>{L["hot"]}</b></td></tr>'
        f'<tr><td>{link_list(hot, "hot")}</td></tr></table>\n'
        + ad("ad", L["ad_gamble"], 32, L)
        + "\n</td>\n</tr></table>\n"
        '<table width="960" align="center" class="footer"><tr><td align="center">'
        + "<br>".join(esc(x) for x in L["footer"])
        + "</td></tr></table>\n"
        + script_tail(L)
        + "\n</body>\n</html>\n"
    )


def render_forum(page: dict, hot: list, L: dict) -> str:
    """A bulletin-board thread: the first post is the main content; the replies sit in #comments."""
    nav = dict(nav_hrefs(page["path"], "rel"), forum="./")
    replies = "\n".join(
        f'<div class="post reply" id="reply-{i}"><div class="post-author">{i + 1}{L["floor"]} {esc(u)}</div>'
        f'<div class="post-time">{L["posted"]} {esc(t)}</div><div class="post-body">{esc(c)}</div></div>'
        for i, (u, t, c) in enumerate(page["comments"], 1)
    )
    return (
        head(page, f" - {L['forum_ch']} - {L['site']}", "forum", L)
        + f'<body>\n<div class="bbs-header"><a class="logo" href="./index.html">{L["forum_ch"]}</a>'
        f'<div class="login"><a href="#login" class="js-login">{L["login"]}</a> | '
        f'<a href="#register" class="js-register">{L["register"]}</a></div></div>\n'
        f'<div class="bbs-nav">{menu(nav, L, " ")}</div>\n'
        f'<div class="breadcrumb"><a href="{nav["home"]}">{L["site"]}</a> &rsaquo; '
        f'<a href="index.html">{L["forum_ch"]}</a> &rsaquo; {L["body"]}</div>\n'
        + ad("banner", L["ad_home"], 41, L)
        + "\n"
        '<div class="thread">\n<div class="content">\n'
        f'<h1 class="thread-title">{esc(page["title"])}</h1>\n'
        f'<div class="post first" id="post-1"><div class="post-author">{L["op"]} {esc(page["author"])}</div>'
        f'<div class="post-time">{L["posted"]} {esc(page["time"])}</div>\n'
        f'<div class="post-body">\n{paras_html(page["paras"])}\n</div></div>\n</div>\n'
        + share_bar(L)
        + "\n"
        f'<div id="comments" class="replies">\n{replies}\n</div>\n'
        f'<div class="reply-box"><textarea placeholder="{L["tip"]}"></textarea><button>{L["reply"]}</button></div>\n'
        "</div>\n"
        f'<div class="side"><h3>{L["hot"]}</h3>{link_list(hot, "hot-threads")}\n'
        + ad("ad", L["ad_gamble"], 42, L)
        + "</div>\n"
        + footer_html("bbs-footer", L)
        + "\n"
        + script_tail(L)
        + "\n</body>\n</html>\n"
    )


def render_shop(page: dict, hot: list, L: dict) -> str:
    """A product page: title, price and spec table, then the description (the gold), then reviews."""
    nav = nav_hrefs(page["path"], "abs")
    specs = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in page["specs"])
    image = posixpath.basename(page["path"]).removesuffix(".html")
    return (
        head(page, f"【{L['shop_ch']}】", "shop", L)
        + f'<body>\n<header class="shop-header"><a href="/shop/index.html" class="logo">{L["shop_ch"]}</a>'
        f'<nav>{menu(nav, L, " ")} <a href="#cart" class="cart">{L["cart"]}</a></nav></header>\n'
        f'<div class="breadcrumb"><a href="/">{L["home"]}</a> / <a href="/shop/">{L["shop_ch"]}</a> / '
        f'{L["product_detail"]}</div>\n'
        '<div class="product">\n<div class="product-info">\n'
        f'<img src="img/{image}.jpg" alt="{esc(page["title"])}" width="400">\n'
        f'<h1>{esc(page["title"])}</h1>\n<div class="price">￥{page["price"]}</div>\n'
        f'<table class="specs">{specs}</table>\n'
        f'<button class="buy">{L["buy"]}</button> <button class="cart-add">{L["cart_add"]}</button>\n'
        f'</div>\n<div class="content product-desc">\n<h2>{L["product_detail"]}</h2>\n'
        f"{paras_html(page['paras'])}\n</div>\n</div>\n"
        + ad("advert", L["ad_home"], 51, L)
        + "\n"
        + share_bar(L)
        + "\n"
        + comments_block(page["comments"], L, L["reviews"])
        + "\n"
        f'<aside class="recommend"><h3>{L["also_viewed"]}</h3>{link_list(hot, "rec-list")}</aside>\n'
        + ad("ad", L["ad_gamble"], 52, L)
        + "\n"
        + footer_html("footer", L)
        + "\n"
        + script_tail(L)
        + "\n</body>\n</html>\n"
    )


def render_hub(page: dict, titles: dict[str, str], L: dict) -> str:
    """Home or section index: h1 and intro paragraphs (the gold), then link lists."""
    nav = page.get("nav") or nav_hrefs(page["path"], "rel")
    items = [(nav[k], L[k]) for k in ["home", *SECTIONS]] + page.get("nav_extra", [])
    blocks = "\n".join(
        f'<div class="block"><h2>{esc(heading)}</h2>'
        + link_list([(h, label or titles[resolve(page["path"], h)]) for h, label in links], "list")
        + "</div>"
        for heading, links in page["blocks"]
    )
    preview = ""
    if page.get("preview"):
        src, alt = page["preview"]
        preview = f'<div class="preview"><img src="{src}" alt="{alt}" width="400"></div>\n'
    return (
        head(page, f" - {L['site']}", "semantic", L)
        + '<body>\n<a id="top"></a>\n'
        f'<header class="site-header"><div class="logo"><a href="{nav["home"]}">{L["site"]}</a></div></header>\n'
        + '<nav class="main-nav"><ul>'
        + "".join(f'<li><a href="{h}">{esc(t)}</a></li>' for h, t in items)
        + "</ul></nav>\n"
        + ad("banner", L["ad_home"], 61, L)
        + "\n"
        f'<main>\n<div class="intro">\n<h1>{esc(page["title"])}</h1>\n{paras_html(page["paras"])}\n</div>\n'
        f"{blocks}\n{preview}</main>\n"
        f'<aside>{ad("ad", L["ad_gamble"], 62, L)}{ad("advert", L["ad_game"], 63, L)}</aside>\n'
        + footer_html("footer", L)
        + f'\n<p class="to-top"><a href="#top">{L["top"]}</a></p>\n</body>\n</html>\n'
    )


def render_members(page: dict, L: dict) -> str:
    """The private staff list: a PII table no crawler that honours robots.txt should ever fetch."""
    header = "".join(f"<th>{c}</th>" for c in page["columns"])
    rows = "\n".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in person) + "</tr>" for person in page["people"])
    return (
        head(page, f" - {L['site']}", "semantic", L)
        + f'<body>\n<nav><a href="index.html">{L["staff"]}</a> | <a href="/">{L["home"]}</a></nav>\n'
        f'<div class="content">\n<h1>{esc(page["title"])}</h1>\n<p>{esc(page["note"])}</p>\n'
        f'<table class="staff"><tr>{header}</tr>\n{rows}\n</table>\n</div>\n'
        + footer_html("footer", L)
        + "\n</body>\n</html>\n"
    )


LAYOUTS = {"semantic": render_semantic, "divsoup": render_divsoup, "legacy": render_legacy,
           "forum": render_forum, "shop": render_shop}


# ------------------------------------------------------------------------------------------------ pages
def encode_page(text: str, encoding: str) -> bytes:
    """Page bytes in its own encoding; © becomes &copy; where a legacy charset lacks it; anything else unencodable
    is a bug in site_text.py, never a silent '?'."""
    if encoding in LEGACY_ENCODINGS:
        text = text.replace("©", "&copy;")
    bad = sorted({c for c in text if not c.isascii() and c.encode(encoding, "replace") == b"?"})
    assert not bad, f"not encodable in {encoding}: {bad}"
    return text.encode(encoding)


def layout_features(page: dict) -> list[str]:
    """MANIFEST features that follow from how a page is encoded and marked up."""
    f = [page["encoding"]] if page["encoding"] in LEGACY_ENCODINGS else []
    if page["encoding"] == "utf-8-sig":
        f.append("utf8_bom")
    f += {None: ["no_charset_meta"], "http-equiv": ["http_equiv_charset"]}.get(page["charset"], [])
    f += {"divsoup": ["div_soup"], "legacy": ["table_layout"]}.get(page.get("layout"), [])
    flags = [("br_paragraphs", "br_paragraphs"), ("hidden_seo", "hidden_seo_text"),
             ("traditional", "traditional_chinese"), ("signature", "signature_spam")]
    f += [feat for key, feat in flags if page.get(key)]
    if page.get("near_duplicate_of"):
        f.append("near_duplicate_of:" + page["near_duplicate_of"])
    return f


def build_pages() -> tuple[dict[str, bytes], list[dict]]:
    """All HTML pages and robots.txt as bytes, plus one record per page for the manifest and the gold."""
    files: dict[str, bytes] = {}
    records: list[dict] = []

    def add(page: dict, markup: str, section: str, features: list[str], gold: bool = True) -> None:
        files[page["path"]] = encode_page(markup, page["encoding"])
        records.append(dict(path=page["path"], section=section, encoding=page["encoding"], charset=page["charset"],
                            title=page["title"], gold=[page["title"], *page["paras"]] if gold else None,
                            comments=[c[2] for c in page.get("comments", [])], features=features))

    dup = T.FORUM_EXACT_DUP
    for section, pages in [("news", T.NEWS), ("forum", T.FORUM), ("shop", T.SHOP)]:
        siblings = pages + ([dict(dup, title=dup["list_title"])] if section == "forum" else [])
        for page in pages:
            L = T.CHROME_TRAD if page.get("traditional") else T.CHROME
            hot = hot_links(page, siblings)
            if page.get("abs_links"):  # a copy of this page lives in another folder: absolute-path links only
                hot = [("/" + x["path"], x["title"]) for x in pages[1:4]]
                hot.append(("/news/2026-03-07-fraud-warning.html?utm_source=rail&utm_medium=related#main",
                            pages[6]["title"]))
            add(page, LAYOUTS[page["layout"]](page, hot, L), section, layout_features(page))

    # the exact duplicate: the rail article's bytes at a forum URL
    files[dup["path"]] = files[dup["copy_of"]]
    src = next(r for r in records if r["path"] == dup["copy_of"])
    records.append(dict(src, path=dup["path"], section="forum",
                        features=src["features"] + ["exact_duplicate_of:" + dup["copy_of"]]))

    titles = {r["path"]: r["title"] for r in records}
    titles.update({p["path"]: p["title"] for p in (T.PRIVATE_MEMBERS,)})
    hubs = [(T.ROOT, "root"), (T.NEWS_INDEX, "news"), (T.FORUM_INDEX, "forum"), (T.SHOP_INDEX, "shop"),
            (T.DOCS_INDEX, "docs"), (T.PRIVATE_INDEX, "private")]
    for page, section in hubs:
        page = dict(page, encoding="utf-8", charset="meta")
        private = section == "private"
        add(page, render_hub(page, titles, T.CHROME), section, ["robots_disallowed"] if private else ["hub_page"],
            gold=not private)

    members = dict(T.PRIVATE_MEMBERS, encoding="utf-8", charset="meta", paras=[T.PRIVATE_MEMBERS["note"]])
    people = "\n".join(" ".join(p) for p in members["people"])
    add(members, render_members(members, T.CHROME), "private", ["robots_disallowed", *text_features(people)],
        gold=False)

    files["robots.txt"] = b"User-agent: *\nDisallow: /private/\n"
    return files, records


# ------------------------------------------------------------------------------------------------ binaries
def wrap_px(text: str, font, width: int) -> list[str]:
    """Greedy CJK line wrap by pixel width; closing punctuation never starts a line."""
    lines, cur = [], ""
    for ch in text:
        if cur and ch not in NO_LINE_START and font.getlength(cur + ch) > width:
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    return lines + [cur] if cur else lines


def build_report_pdf() -> tuple[bytes, list[str]]:
    """A 2-page A4 PDF whose text is a real, selectable Chinese text layer (font subset embedded)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

    pdfmetrics.registerFont(TTFont("WQYZenHei", FONT_PATH, subfontIndex=0))
    base = dict(fontName="WQYZenHei", wordWrap="CJK")
    st_title = ParagraphStyle("t", fontSize=18, leading=28, alignment=1, spaceAfter=14, **base)
    st_head = ParagraphStyle("h", fontSize=13, leading=22, spaceBefore=8, spaceAfter=4, **base)
    st_para = ParagraphStyle("p", fontSize=11, leading=20, firstLineIndent=22, spaceAfter=6, **base)
    r = T.REPORT_PDF
    story, gold = [Paragraph(esc(r["title"]), st_title), Spacer(1, 6)], [r["title"]]
    for i, page in enumerate(r["pages"]):
        if i:
            story.append(PageBreak())
        for kind, text in page:
            story.append(Paragraph(esc(text), st_head if kind == "h" else st_para))
            gold.append(text)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=25 * mm, rightMargin=25 * mm, topMargin=25 * mm,
                            bottomMargin=25 * mm, title=r["title"], author=r["author"], subject=r["subject"],
                            creator="liandan data/sample/build_site.py", invariant=1)
    doc.build(story)
    return buf.getvalue(), gold


def build_scan_pdf() -> tuple[bytes, list[str]]:
    """Two A4 page images at 150 dpi, grayscale JPEG in a PDF, slightly skewed: no text layer at all."""
    from PIL import Image, ImageDraw, ImageFont

    s = T.SCAN_PDF
    W, H, margin = 1240, 1754, 150
    f_head, f_title, f_body = (ImageFont.truetype(FONT_PATH, n, index=0) for n in (24, 44, 30))
    images, gold = [], [s["title"]]
    for pno, paras in enumerate(s["pages"], 1):
        im = Image.new("L", (W, H), 250)  # scanner white, not pure white
        d = ImageDraw.Draw(im)
        d.text((margin, 70), s["header"], font=f_head, fill=60)
        d.line((margin, 108, W - margin, 108), fill=90, width=2)
        y = 170
        if pno == 1:
            d.text(((W - d.textlength(s["title"], font=f_title)) / 2, y), s["title"], font=f_title, fill=15)
            y += 110
        for para in paras:
            article = para.startswith("第")  # 第N条 paragraphs: indented; the rest is the right-aligned signature
            for k, line in enumerate(wrap_px(para, f_body, W - 2 * margin - 60)):
                x = margin + (60 if k == 0 else 0) if article else W - margin - d.textlength(line, font=f_body)
                d.text((x, y), line, font=f_body, fill=20)
                y += 52
            y += 18
            gold.append(para)
        footer = s["footer"].format(page=pno, pages=len(s["pages"]))
        d.text(((W - d.textlength(footer, font=f_head)) / 2, H - 110), footer, font=f_head, fill=60)
        images.append(im.rotate(0.4, resample=Image.BICUBIC, fillcolor=250))
    buf = io.BytesIO()
    stamp = FIXED_DATE.timetuple()  # pillow writes a struct_time as a PDF date
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=150.0, quality=60,
                   title=s["title"], creationDate=stamp, modDate=stamp)
    return buf.getvalue(), gold


def build_notice_png() -> tuple[bytes, list[str]]:
    """An 800 px wide black-on-white notice; its gold is the text line by line, as drawn."""
    from PIL import Image, ImageDraw, ImageFont

    lines = T.NOTICE_PNG
    f_title, f_body = (ImageFont.truetype(FONT_PATH, n, index=0) for n in (40, 24))
    W, H = 800, 120 + 44 * (len(lines) - 1) + 40
    im = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(im)
    d.text(((W - d.textlength(lines[0], font=f_title)) / 2, 30), lines[0], font=f_title, fill=0)
    y = 110
    for i, line in enumerate(lines[1:], 1):
        x = W - 40 - d.textlength(line, font=f_body) if i == len(lines) - 1 else 40  # signature right-aligned
        d.text((x, y), line, font=f_body, fill=0)
        y += 44
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue(), list(lines)


# ------------------------------------------------------------------------------------------------ write
def visible_text(markup: str) -> str:
    """Tag-stripped, entity-decoded text of a page, scripts and styles removed (a crude check, not an extractor)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", markup)))


def manifest_entry(r: dict, markup: str) -> dict:
    feats = list(r["features"])
    if r["gold"] is not None:
        vis = visible_text(markup)
        for line in r["gold"]:  # the gold must be exactly what the page shows
            assert line in vis, (r["path"], line[:30])
        feats += [f for f in text_features("\n".join(r["gold"])) if f not in feats]
    feats += ["comment_" + f for f in text_features("\n".join(r["comments"])) if f != "ext_b_char"]
    if r["comments"]:
        feats.append("comments")
    encoding = "utf-8" if r["encoding"] == "utf-8-sig" else r["encoding"]
    return dict(path=r["path"], section=r["section"], encoding=encoding,
                declares_charset=r["charset"] is not None, title=r["title"], features=feats,
                gold=f"gold/{r['path']}.txt" if r["gold"] is not None else None)


def build() -> list[dict]:
    """Write site/, gold/ and site/MANIFEST.json from scratch; returns the manifest."""
    files, records = build_pages()
    binaries = {
        "docs/report.pdf": (build_report_pdf(), T.REPORT_PDF["title"], ["pdf_text"]),
        "docs/scan.pdf": (build_scan_pdf(), T.SCAN_PDF["title"], ["pdf_scanned", "page_header_footer"]),
        "docs/notice.png": (build_notice_png(), T.NOTICE_PNG[0], ["image_text"]),
    }
    for d in (SITE, GOLD):
        if d.exists():
            shutil.rmtree(d)

    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    manifest = []
    for r in records:
        manifest.append(manifest_entry(r, files[r["path"]].decode(r["encoding"])))
        if r["gold"] is not None:
            write(GOLD / f"{r['path']}.txt", ("\n".join(r["gold"]) + "\n").encode("utf-8"))
    for path, data in files.items():
        write(SITE / path, data)
    manifest.append(dict(path="robots.txt", section="root", encoding="utf-8", declares_charset=False, title="",
                         features=["robots_txt"], gold=None))
    for path, ((data, gold), title, feats) in binaries.items():
        assert len(data) < 300_000, (path, len(data))
        write(SITE / path, data)
        write(GOLD / f"{path}.txt", ("\n".join(gold) + "\n").encode("utf-8"))
        feats = feats + [f for f in text_features("\n".join(gold)) if f not in feats]
        manifest.append(dict(path=path, section="docs", encoding="binary", declares_charset=False, title=title,
                             features=feats, gold=f"gold/{path}.txt"))
    manifest.sort(key=lambda m: m["path"])
    (SITE / "MANIFEST.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    n_html = sum(m["path"].endswith(".html") for m in manifest)
    print(f"wrote {len(manifest)} files ({n_html} HTML pages) under {SITE}, gold under {GOLD}")
    return manifest


# ------------------------------------------------------------------------------------------------ --verify
def verify() -> None:
    """Serve site/ with python's http.server and check what a crawler and the extract/OCR stages would see."""
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request
    from html.parser import HTMLParser

    import charset_normalizer
    import pypdfium2 as pdfium

    manifest = json.loads((SITE / "MANIFEST.json").read_text(encoding="utf-8"))
    by_path = {m["path"]: m for m in manifest}
    on_disk = {p.relative_to(SITE).as_posix() for p in SITE.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert on_disk == set(by_path), on_disk ^ set(by_path)
    assert all((HERE / m["gold"]).exists() for m in manifest if m["gold"])
    assert 24 <= sum(p.endswith(".html") for p in by_path) <= 36

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(SITE)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"

    def get(path: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, "", b""

    def decode(m: dict, body: bytes) -> tuple[str, str]:
        declared = re.search(rb'charset="?([\w-]+)', body[:1024])
        assert (declared is not None) == m["declares_charset"], m["path"]
        if declared:
            label = declared.group(1).decode().lower()
            assert label == m["encoding"], (m["path"], label)
            return body.decode(label), "declared"
        best = charset_normalizer.from_bytes(body).best()
        assert best is not None and best.encoding in ("gbk", "gb2312", "gb18030"), (m["path"], best)
        return body.decode(best.encoding), "detected " + best.encoding

    try:
        for _ in range(100):
            try:
                get("robots.txt")
                break
            except OSError:
                time.sleep(0.05)
        texts = {}
        for m in manifest:
            status, ctype, body = get(m["path"])
            assert status == 200 and body == (SITE / m["path"]).read_bytes(), m["path"]
            if not m["path"].endswith(".html"):
                continue
            assert ctype == "text/html", (m["path"], ctype)  # no charset from the server: the page must carry it
            text, how = decode(m, body)
            assert "\ufffd" not in text, m["path"]
            if m["gold"]:
                vis = visible_text(text)
                for line in (HERE / m["gold"]).read_text(encoding="utf-8").splitlines():
                    assert line in vis, (m["path"], line[:20])
            texts[m["path"]] = text
            print(f"  ok  {m['path']:<40} {m['encoding']:<8} {how}")

        # the same page under several URLs, a dead link, the robots file
        assert get("shop/")[2] == get("shop/index.html")[2]
        assert get("news/2026-03-01-rail.html?utm_source=weibo")[2] == get("news/2026-03-01-rail.html")[2]
        assert get("forum/thread-1008.html")[2] == get("news/2026-03-01-rail.html")[2]
        assert get("news/archive/2025.html")[0] == 404
        assert get("robots.txt")[2] == b"User-agent: *\nDisallow: /private/\n"

        class Hrefs(HTMLParser):
            def __init__(self):
                super().__init__()
                self.hrefs = []

            def handle_starttag(self, tag, attrs):
                href = dict(attrs).get("href")
                if tag == "a" and href:
                    self.hrefs.append(href)

        # breadth-first over <a href>, same host only, robots ignored: every file within depth 3
        depth, frontier, offsite, dead = {"index.html": 0}, ["index.html"], set(), set()
        while frontier:
            nxt = []
            for path in frontier:
                if path not in texts:
                    continue
                parser = Hrefs()
                parser.feed(texts[path])
                for href in parser.hrefs:
                    target = resolve(path, href)
                    if target is None:
                        offsite.add(href)
                    elif target not in by_path:
                        dead.add(target)
                    elif target not in depth:
                        depth[target] = depth[path] + 1
                        nxt.append(target)
            frontier = nxt
        assert set(by_path) - set(depth) == {"robots.txt"}, set(by_path) - set(depth)
        assert max(depth.values()) <= 3
        print(f"  ok  every file reachable from /index.html within depth {max(depth.values())}; "
              f"{len(offsite)} off-site/non-http hrefs; links to missing files: {sorted(dead)}")
    finally:
        server.terminate()
        server.wait()

    report = pdfium.PdfDocument(str(SITE / "docs/report.pdf"))
    layer = re.sub(r"\s+", "", "".join(report[i].get_textpage().get_text_range() for i in range(len(report))))
    assert len(report) == 2
    for line in (GOLD / "docs/report.pdf.txt").read_text(encoding="utf-8").splitlines():
        assert re.sub(r"\s+", "", line) in layer, line[:20]
    scan = pdfium.PdfDocument(str(SITE / "docs/scan.pdf"))
    assert len(scan) == 2 and all(scan[i].get_textpage().get_text_range().strip() == "" for i in range(2))
    print("  ok  report.pdf text layer holds the gold text; scan.pdf: 2 pages, no text layer")
    print("verify: all checks passed")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Regenerate data/sample/site/ and data/sample/gold/.")
    ap.add_argument("--verify", action="store_true", help="after building, serve the site and check it")
    args = ap.parse_args()
    build()
    if args.verify:
        verify()
