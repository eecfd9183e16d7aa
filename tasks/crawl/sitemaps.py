"""Sitemaps (sitemaps.org protocol 0.9): the page URLs a site lists, so a crawl finds pages no link reaches.

A site's sitemaps are the ``Sitemap:`` lines of its robots.txt, else ``/sitemap.xml``. A sitemap is a
``<urlset>`` of ``<loc>`` page URLs or a ``<sitemapindex>`` of further sitemaps (followed one level
deep, as the protocol nests no further); either may be gzip-compressed (``sitemap.xml.gz``).
"""

from __future__ import annotations

import gzip
import html
import re
import zlib

MAX_SITEMAPS = 50  # sitemaps read per site: an index may list thousands; the first ones hold the main sections
MAX_SITEMAP_URLS = 50_000  # the protocol's own cap on URLs per sitemap

_LOC = re.compile(rb"<loc>\s*([^<\s][^<]*?)\s*</loc>", re.IGNORECASE)
_INDEX = re.compile(rb"<sitemapindex[\s>]", re.IGNORECASE)


def parse_sitemap(body: bytes) -> tuple[list[str], bool]:
    """Return (locations, is_index) of a sitemap body, gunzipped when it is gzip.

    >>> parse_sitemap(b"<urlset><url><loc> https://a.cn/x?a=1&amp;b=2 </loc></url></urlset>")
    (['https://a.cn/x?a=1&b=2'], False)
    """
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            return [], False
    locs = [html.unescape(m.group(1).decode("utf-8", "replace")) for m in _LOC.finditer(body)]
    return locs[:MAX_SITEMAP_URLS], _INDEX.search(body[:4096]) is not None
