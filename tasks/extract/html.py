"""The main text of an HTML page: its title and article paragraphs, without navigation, ads or comments.

How, in four passes over a BeautifulSoup (lxml) tree:

1. Remove what is never text (scripts, styles, HTML comments) and the configured boilerplate (CSS
   selectors, class/id words), except an element holding nearly all of the page's sentences — the
   guard that keeps an article wrapped in an ASP.NET ``<form>`` or a div named ``content-sidebar-wrap``.
2. Cut the page into lines: block elements and ``<br>`` end a line, inline elements join without a
   space (``<p>中国<b>科学</b>院</p>`` is ``中国科学院``), a source line break between two CJK
   characters goes, as browsers render it; typed spaces stay.
3. Score every element as the characters of its article-like lines (long enough, punctuated, few
   links) minus the characters of its boilerplate lines (link lists, 分享到, 版权所有 …) and a quarter
   of its other lines, with a bonus inside ``<article>``/``<main>``/``articleBody``/content-named
   blocks. The best element is the main block. This is readability's content score counted in
   characters, not words or commas, because Chinese has no spaces; subtracting the boilerplate makes
   the smallest block that holds the article win. When the winner's branch repeats among its
   siblings (forum posts, ``<div class="para">`` runs) and the repeats add half again its text, their
   parent is the main block instead.
4. Keep the main block's lines minus link lists and whole-line boilerplate (分享到, 上一篇, 责任编辑 …).

The title is the page heading that matches ``<title>`` (so it survives a dropped ``<header>``), else
the main block's ``<h1>``, else ``<title>`` without its " - 站点名" / "_频道_网站" suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import soupsieve
from bs4 import BeautifulSoup, NavigableString, Tag

from tasks.crawl.charset import decode_html
from tasks.extract.config import ExtractConfig

EXTRACTOR_VERSION = "bs4_v1"

# Elements that end a line. Table cells are blocks only when they hold blocks (layout tables);
# otherwise a row's cells share one line, separated by a space.
BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog dir div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li main menu nav "
    "ol p pre section summary table tbody tfoot thead tr ul".split()
)
CELL_TAGS = frozenset({"td", "th"})
NEVER_TEXT_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "canvas", "object", "embed", "video", "audio"}
)
# Class/id words of content blocks across common CMSs: TRS_Editor and zoom (government sites),
# artibody (sina), endText (163), rich_media_content (WeChat), postmessage (Discuz posts).
CONTENT_CLASS_WORDS = frozenset(
    "article articles content contents post entry text main detail details story body artibody endtext zoom editor"
    " postmessage".split()
)
SEMANTIC_BONUS = 1.25  # a content block must gain a quarter more article text to lose to its wrapper
REPEAT_GAIN = 1.5  # sibling blocks of the main block's shape join it when they add half again its text
OTHER_LINE_COST = 0.25  # short unpunctuated lines (dates, bylines, captions) cost a little

# A line needs one of these to count as prose: commas and stops, not the colons of "电话：…" labels.
# An ASCII period counts only before a space or the end, not inside a URL, a number or an e-mail address.
_PUNCT = re.compile(r"[，。！？；、,!?;…]|\.(?=\s|$)")
# The guard measures text by its sentence ends: footers and menus rarely have any, articles many.
_SENTENCE_END = re.compile(r"[。！？!?]|\.(?=\s|$)")
_CJK = (  # CJK radicals and punctuation, kana, bopomofo, ideographs (BMP and extensions), fullwidth forms
    "\u2e80-\u2fff\u3001-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\ufe30-\ufe4f\uff01-\uff60\U00020000-\U0003134f"
)
# CSS Text 3 segment-break rule: a run of white space holding a line break, between two East Asian
# wide characters, disappears (HTML source wrapped mid-sentence); a typed space stays ("绿茶 特级").
_CJK_BREAK = re.compile(f"(?<=[{_CJK}])[^\\S\\n]*\\n\\s*(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_CELL = "\ue000"  # private-use marker between table cells, a space in the output
_CELL_RUN = re.compile(f" ?{_CELL}[ {_CELL}]*")
_TITLE_SEPARATORS = re.compile(r"\s+[-–—|·:]\s+|\s*[_|｜]\s*|\s*[—－]{1,2}\s*")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True)
class Extracted:
    """The main text of one page and how it was found."""

    title: str
    text: str  # the title (when cfg.keep_title) and the body paragraphs, one per line
    paragraphs: int  # body lines, title excluded
    chars: int  # non-whitespace characters of the body, title excluded
    link_density: float  # share of the main block's characters inside links
    container: str  # the main block, as tag#id.class (for debugging a bad pick)


LineKind = Literal["prose", "boilerplate", "other"]


@dataclass
class _Line:
    text: str
    chars: int
    link_chars: int
    punct: int
    owner: Tag
    kind: LineKind = "other"

    @property
    def link_density(self) -> float:
        return self.link_chars / self.chars if self.chars else 0.0


def extract_main_text(html: str | bytes, cfg: ExtractConfig, charset: str | None = None) -> Extracted:
    """Return the title and main paragraphs of an HTML page.

    Bytes are decoded first, by the crawler's rules: ``charset`` (the HTTP header's), BOM, ``<meta>``,
    detection; GB2312/GBK as GB18030 and Big5 as Big5-HKSCS. Raises ValueError on a binary body.
    """
    if isinstance(html, bytes):
        html, _ = decode_html(html, charset)
    soup = BeautifulSoup(html, "lxml")
    for tag in _elements(soup):
        if tag.name in NEVER_TEXT_TAGS and not tag.decomposed:
            tag.decompose()
    title_tag = soup.find("title")
    page_title = _normalize(title_tag.get_text()) if title_tag else ""
    # The whole document, not its <body>: a stray </html> in a header include makes lxml put the rest of
    # the page in a second <html> after the first body. The <head> holds no text once <title> is read.
    for head in soup.find_all("head"):
        head.decompose()
    root = soup
    headings = [_normalize(h.get_text()) for h in _elements(root) if h.name in ("h1", "h2")]
    headings = [h for h in headings if h]
    _drop_boilerplate(root, cfg)

    lines = _cut_lines(root)
    _classify(lines, cfg)
    main = _main_block(root, lines)
    in_main = [line for line in lines if _inside(line.owner, main)]

    title = _choose_title(page_title, headings, main)
    body = _keep_lines(in_main, main, title, page_title, cfg)
    chars = sum(line.chars for line in in_main)
    link_density = sum(line.link_chars for line in in_main) / chars if chars else 0.0
    text_lines = ([title] if cfg.keep_title and title else []) + [line.text for line in body]
    return Extracted(
        title=title,
        text="\n".join(text_lines),
        paragraphs=len(body),
        chars=sum(line.chars for line in body),
        link_density=round(link_density, 4),
        container=_describe(main),
    )


def _elements(root: Tag) -> list[Tag]:
    """Return the elements under ``root`` in document order (faster than find_all(True))."""
    return [node for node in root.descendants if isinstance(node, Tag)]


def _drop_boilerplate(root: Tag, cfg: ExtractConfig) -> None:
    """Remove the elements named by the drop selectors and class words, unless one holds most of the text."""
    rules = _drop_rules(tuple(cfg.drop_selectors), tuple(cfg.drop_class_words))
    matched = [tag for tag in _elements(root) if rules.match(tag)]
    if not matched:
        return
    page_ends = len(_SENTENCE_END.findall(root.get_text()))
    for tag in matched:
        if tag.decomposed:
            continue
        if page_ends and len(_SENTENCE_END.findall(tag.get_text())) / page_ends > cfg.drop_guard_share:
            continue
        tag.decompose()


@dataclass(frozen=True)
class _DropRules:
    """The drop selectors and class words, compiled; simple selectors skip soupsieve, which is slow per element."""

    tags: frozenset[str]
    attributes: tuple[tuple[str, str, str], ...]  # (name, operator: "" present, "=" equals, "*=" contains; value)
    css: soupsieve.SoupSieve | None  # every other selector
    words: frozenset[str]
    prefixes: tuple[str, ...]

    def match(self, tag: Tag) -> bool:
        if tag.name in self.tags:
            return True
        for name, op, value in self.attributes:
            if name in tag.attrs:
                have = tag.attrs[name]
                have = " ".join(have) if isinstance(have, list) else str(have)
                if not op or (op == "=" and have == value) or (op == "*=" and value in have):
                    return True
        if (self.words or self.prefixes) and ("class" in tag.attrs or "id" in tag.attrs):
            if any(w in self.words or w.startswith(self.prefixes) for w in _class_id_words(tag)):
                return True
        return self.css is not None and self.css.match(tag)


_SIMPLE_SELECTOR = re.compile(
    r"(?P<tag>[a-z][a-z0-9]*)"  # nav
    # [a], [a=v], [a*='v']
    r"""|\[\s*(?P<attr>[a-z][\w-]*)\s*(?:(?P<op>\*?=)\s*(?P<q>['"]?)(?P<value>[^'"\]]*)(?P=q)\s*)?\]""",
    re.I,
)


@lru_cache(maxsize=32)
def _drop_rules(selectors: tuple[str, ...], class_words: tuple[str, ...]) -> _DropRules:
    tags: set[str] = set()
    attributes: list[tuple[str, str, str]] = []
    complex_selectors: list[str] = []
    for selector in selectors:
        simple = _SIMPLE_SELECTOR.fullmatch(selector.strip())
        if simple is None:
            complex_selectors.append(selector)
        elif simple["tag"]:
            tags.add(simple["tag"].lower())
        else:
            attributes.append((simple["attr"].lower(), simple["op"] or "", simple["value"] or ""))
    return _DropRules(
        tags=frozenset(tags),
        attributes=tuple(attributes),
        css=soupsieve.compile(", ".join(complex_selectors)) if complex_selectors else None,
        words=frozenset(w for w in class_words if not w.endswith("*")),
        prefixes=tuple(w[:-1] for w in class_words if w.endswith("*")),
    )


def _class_id_words(tag: Tag) -> list[str]:
    """Return the lowercase words of a tag's class and id: "topAD share_bar" gives top, ad, share, bar."""
    classes = tag.get("class") or []
    if isinstance(classes, str):
        classes = [classes]
    ident = tag.get("id") or ""
    return [w.lower() for value in (*classes, ident) for w in _WORDS.findall(str(value))]


def _cut_lines(root: Tag) -> list[_Line]:
    """Return the page's text lines in document order, each with the block element that holds it."""
    lines: list[_Line] = []
    parts: list[tuple[str, bool]] = []  # (text, inside a link)
    blocks: list[Tag] = [root]
    links = 0
    pres = 0

    def flush() -> None:
        if parts:
            line = _make_line(parts, blocks[-1])
            if line is not None:
                lines.append(line)
            parts.clear()

    # An explicit stack instead of recursion: some pages nest deeper than Python's recursion limit.
    stack: list[tuple[object, bool, bool, bool]] = [(child, False, False, False) for child in reversed(root.contents)]
    while stack:
        node, closing, is_block, is_link = stack.pop()
        if closing:
            if is_block:
                flush()
                blocks.pop()
                if node.name == "pre":
                    pres -= 1
            if is_link:
                links -= 1
            continue
        if isinstance(node, NavigableString):
            if type(node) is NavigableString:  # not a comment, doctype, CDATA or ruby annotation
                if pres and "\n" in node:
                    for k, piece in enumerate(str(node).split("\n")):
                        if k:
                            flush()
                        parts.append((piece, links > 0))
                else:
                    parts.append((str(node), links > 0))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if name == "br":
            flush()
            continue
        block = name in BLOCK_TAGS or (name in CELL_TAGS and node.find(_BLOCK_OR_BR) is not None)
        if block:
            flush()
            blocks.append(node)
            if name == "pre":
                pres += 1
        elif name in CELL_TAGS:
            parts.append((_CELL, False))
        link = name == "a" and node.has_attr("href")
        if link:
            links += 1
        stack.append((node, True, block, link))
        stack.extend((child, False, False, False) for child in reversed(node.contents))
    flush()
    return lines


_BLOCK_OR_BR = sorted(BLOCK_TAGS | {"br"})


def _make_line(parts: list[tuple[str, bool]], owner: Tag) -> _Line | None:
    """Return one normalized line, or None when it holds no visible text."""
    text = _normalize("".join(text for text, _ in parts))
    if not text:
        return None
    link_chars = sum(_count_chars(text) for text, in_link in parts if in_link)
    chars = _count_chars(text)
    return _Line(text=text, chars=chars, link_chars=min(link_chars, chars), punct=_count_punct(text), owner=owner)


def _normalize(text: str) -> str:
    """Return ``text`` with whitespace collapsed, source line breaks between CJK characters removed, cells spaced."""
    text = _INVISIBLE.sub("", text)
    text = _CJK_BREAK.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _CELL_RUN.sub(" ", text)
    return text.strip()


def _count_chars(text: str) -> int:
    return len("".join(text.split())) - text.count(_CELL)


def _count_punct(text: str) -> int:
    return len(_PUNCT.findall(text))


def _classify(lines: list[_Line], cfg: ExtractConfig) -> None:
    """Set each line's kind: boilerplate (link list, short link, boilerplate pattern), prose, or other."""
    boilerplate = _compiled(tuple(cfg.drop_line_patterns))
    notice = _compiled(tuple(cfg.notice_patterns))
    for line in lines:
        if (
            line.link_density > cfg.max_link_density
            or (line.link_chars and line.chars < cfg.min_paragraph_chars)
            or (boilerplate is not None and line.chars <= cfg.boilerplate_max_chars and boilerplate.search(line.text))
            or (notice is not None and notice.match(line.text))
        ):
            line.kind = "boilerplate"
        elif line.chars >= cfg.min_paragraph_chars and line.punct:
            line.kind = "prose"
        else:
            line.kind = "other"


def _line_score(line: _Line) -> tuple[float, float]:
    """Return (article characters, boilerplate cost) of one line."""
    if line.kind == "prose":
        return float(line.chars), 0.0
    if line.kind == "boilerplate":
        return 0.0, float(line.chars)
    return 0.0, OTHER_LINE_COST * line.chars


def _main_block(root: Tag, lines: list[_Line]) -> Tag:
    """Return the element whose article text, less its boilerplate, is largest (the smallest on a tie)."""
    good: dict[int, float] = {}
    cost: dict[int, float] = {}
    elements: dict[int, Tag] = {}
    for line in lines:
        line_good, line_cost = _line_score(line)
        for el in (line.owner, *line.owner.parents):
            key = id(el)
            good[key] = good.get(key, 0.0) + line_good
            cost[key] = cost.get(key, 0.0) + line_cost
            elements[key] = el
            if el is root:
                break
    depth, in_content = _content_blocks(root)
    best, best_key = root, (0.0, 0)
    for key, el in elements.items():
        if not good[key]:
            continue
        score = good[key] * (SEMANTIC_BONUS if in_content.get(key) else 1.0) - cost[key]
        rank = (score, depth.get(key, 0))
        if score > 0 and rank > best_key:
            best, best_key = el, rank
    return _widen_to_repeats(best, root, good)


def _widen_to_repeats(top: Tag, root: Tag, good: dict[int, float]) -> Tag:
    """Return the nearest ancestor of ``top`` whose children repeat top's branch and add half again its text.

    A forum thread's posts, or an article split across sibling ``<div class="para">`` blocks, are
    siblings of one shape (tag and class); the best single one wins the score, the list is the text.
    """
    node = top
    while node is not root and node.parent is not None:
        parent = node.parent
        shape = _shape(node)
        repeats = [child for child in parent.find_all(True, recursive=False) if _shape(child) == shape]
        if len(repeats) > 1 and sum(good.get(id(c), 0.0) for c in repeats) >= REPEAT_GAIN * good.get(id(node), 0.0):
            return parent
        node = parent
    return top


def _shape(el: Tag) -> tuple[str, tuple[str, ...]]:
    classes = el.get("class") or []
    return el.name, tuple(sorted([classes] if isinstance(classes, str) else classes))


def _content_blocks(root: Tag) -> tuple[dict[int, int], dict[int, bool]]:
    """Return each element's depth and whether it is, or sits inside, a block that says it holds the article.

    Such blocks are semantic tags (article, main, itemprop=articleBody, role=main) and content-like
    class or id names. One pass in document order: a parent is always seen before its children.
    """
    depth: dict[int, int] = {id(root): 0}
    inside: dict[int, bool] = {id(root): False}
    for tag in _elements(root):
        parent = id(tag.parent)
        depth[id(tag)] = depth.get(parent, 0) + 1
        inside[id(tag)] = inside.get(parent, False) or (
            tag.name in ("article", "main")
            or tag.get("itemprop") == "articleBody"
            or tag.get("role") == "main"
            or any(w in CONTENT_CLASS_WORDS for w in _class_id_words(tag))
        )
    return depth, inside


def _inside(el: Tag, ancestor: Tag) -> bool:
    """Return whether ``el`` is ``ancestor`` or below it (by identity: bs4's == compares markup)."""
    return el is ancestor or any(parent is ancestor for parent in el.parents)


def _keep_lines(lines: list[_Line], main: Tag, title: str, page_title: str, cfg: ExtractConfig) -> list[_Line]:
    """Return the lines of the main block that are not boilerplate, link lists, a trailing related list or the title.

    The title again: before the first prose line, a line that is the title, or a piece of it at least four
    characters long (a headline broken by ``<br>`` into three lines), goes.
    """
    link_lists = _link_list_blocks(lines, main, cfg.max_block_link_density)
    end = _compiled(tuple(cfg.end_patterns))
    total = sum(line.chars for line in lines if line.kind == "prose")
    titles = [_compact(t) for t in (title, page_title) if t]
    kept: list[_Line] = []
    seen = 0  # prose characters so far
    title_seen = False
    for line in lines:
        if end is not None and line.chars <= cfg.boilerplate_max_chars and end.match(line.text):
            if total and seen >= cfg.end_after_share * total:
                break
        if line.kind == "boilerplate" or any(id(el) in link_lists for el in _owners_below(line.owner, main)):
            continue
        if not title_seen and title and line.text == title:
            title_seen = True
            continue
        if not seen and titles:
            piece = _compact(line.text)
            if piece in titles or (len(piece) >= 4 and line.kind != "prose" and any(piece in t for t in titles)):
                continue
        if line.kind == "prose":
            seen += line.chars
        kept.append(line)
    return kept


def _compact(text: str) -> str:
    return "".join(text.split())


def _owners_below(el: Tag, main: Tag) -> list[Tag]:
    """Return ``el`` and its ancestors below ``main``."""
    out = []
    while el is not None and el is not main:
        out.append(el)
        el = el.parent
    return out


def _link_list_blocks(lines: list[_Line], main: Tag, max_density: float) -> set[int]:
    """Return the ids of elements inside ``main`` holding three or more lines, more than ``max_density`` link text.

    A related-articles box lists linked headlines with a line of unlinked summary under each: no single
    summary line is a link, but the box as a whole is.
    """
    chars: dict[int, int] = {}
    link_chars: dict[int, int] = {}
    count: dict[int, int] = {}
    for line in lines:
        for el in _owners_below(line.owner, main):
            key = id(el)
            chars[key] = chars.get(key, 0) + line.chars
            link_chars[key] = link_chars.get(key, 0) + line.link_chars
            count[key] = count.get(key, 0) + 1
    return {key for key, n in count.items() if n >= 3 and link_chars[key] > max_density * chars[key]}


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I) if patterns else None


def _choose_title(page_title: str, headings: list[str], main: Tag) -> str:
    """Return the heading that matches <title>, else the main block's <h1>, else <title> minus its site suffix."""
    parts = [p for p in _TITLE_SEPARATORS.split(page_title) if p.strip()] if page_title else []
    matching = [h for h in headings if any(_same_title(h, p) for p in parts)]
    if matching:
        return max(matching, key=len)
    h1 = main.find("h1")
    if h1 is not None and _normalize(h1.get_text()):
        return _normalize(h1.get_text())
    return parts[0].strip() if parts else page_title


def _same_title(heading: str, part: str) -> bool:
    """Return whether a heading and a <title> part name the same thing (one may be truncated)."""
    part = part.strip()
    if heading == part:
        return True
    short, long = sorted((heading, part), key=len)
    return len(short) >= 4 and short in long and len(short) / len(long) >= 0.6


def _describe(el: Tag) -> str:
    """Return tag#id.class.class for a log line."""
    ident = f"#{el['id']}" if el.has_attr("id") else ""
    classes = el.get("class") or []
    classes = [classes] if isinstance(classes, str) else classes
    return f"{el.name}{ident}" + "".join(f".{c}" for c in classes)
