"""The links of an HTML page, resolved and normalised."""

from __future__ import annotations

import lxml.etree
import lxml.html

from tasks.crawl.urls import normalize_url

# lxml refuses str input that carries an XML encoding declaration, so the decoded text is handed over
# as UTF-8 bytes with the encoding stated.
_PARSER = lxml.html.HTMLParser(encoding="utf-8")


def extract_links(html: str, page_url: str) -> list[str]:
    """Return the normalised http(s) targets of a page's ``<a href>``, unique, in document order.

    Relative links resolve against ``<base href>`` when the page has one, else against ``page_url``.

    >>> extract_links('<base href="/docs/"><a href="a.html#x">a</a><a href="mailto:x@y.cn">m</a>', "http://h.cn/p")
    ['http://h.cn/docs/a.html']
    """
    try:
        root = lxml.html.document_fromstring(html.encode("utf-8", errors="replace"), parser=_PARSER)
    except (lxml.etree.ParserError, ValueError):
        return []  # an empty or unparseable document links nowhere
    base = page_url
    for el in root.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            base = normalize_url(href, base=page_url) or page_url
            break
    links: dict[str, None] = {}
    for el in root.iter("a"):
        href = el.get("href")
        if href and href.strip():
            url = normalize_url(href, base=base)
            if url is not None:
                links.setdefault(url, None)
    return list(links)
