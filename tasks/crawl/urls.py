"""URL normalisation (one spelling per page, so each page is fetched once), site scope and source mapping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urljoin, urlsplit, urlunsplit

from tasks.crawl.config import CrawlConfig

DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that only say who sent the visitor, never what the page shows: Google Analytics'
# utm_*, Alibaba's spm/scm, the "from"/share parameters WeChat, Weibo and Bilibili append to shared
# links, and the ad click ids. Two URLs differing only by these are the same page.
TRACKING_PARAMS = frozenset(
    {
        "spm", "scm", "from", "fbclid", "gclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid",
        "_hsenc", "_hsmktg", "share_source", "share_medium", "share_from", "vd_source", "isappinstalled",
    }
)
TRACKING_PREFIXES = ("utm_",)

# RFC 3986 section 2.3: these never need escaping, so %7E and ~ are one URL.
_UNRESERVED_ESCAPE = re.compile(r"%(2[dDeE]|5[fF]|7[eE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])")
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = "/:@!$'()*,;-._~?"


def normalize_url(url: str, base: str | None = None) -> str | None:
    """Return the canonical form of ``url`` (resolved against ``base``), or None when it is not a valid http(s) URL.

    Lower-cases scheme and host, drops default ports, credentials and fragments, removes ``.``/``..``
    segments, percent-encodes non-ASCII as UTF-8, drops tracking parameters and sorts the rest.

    >>> normalize_url("HTTP://Example.COM:80/a/./b/../c?utm_source=x&b=2&a=1#top")
    'http://example.com/a/c?a=1&b=2'
    >>> normalize_url("mailto:someone@example.com") is None
    True
    """
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base is not None else url.strip())
        port = parts.port
    except ValueError:  # a malformed IPv6 literal or port: no page to fetch
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    host = _ascii_host(host)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dot_segments(_normalize_escapes(quote(parts.path or "/", safe=_PATH_SAFE)))
    return urlunsplit((scheme, netloc, path, _normalize_query(parts.query), ""))


def source_for(url: str, cfg: CrawlConfig) -> str:
    """Return the source name of ``url``: the one mapped to the longest matching path prefix, else the default."""
    path = urlsplit(url).path or "/"
    matches = [prefix for prefix in cfg.sources if path.startswith(prefix)]
    return cfg.sources[max(matches, key=len)] if matches else cfg.default_source


def on_site(url: str, seed_hosts: Iterable[str], allowed_domains: Iterable[str]) -> bool:
    """Return whether ``url``'s host is a seed host, or an allowed domain or one of its subdomains."""
    host = (urlsplit(url).hostname or "").lower()
    if host in seed_hosts:
        return True
    return any(host == d or host.endswith("." + d) for d in (d.lower().strip(".") for d in allowed_domains))


def origin_of(url: str) -> str:
    """Return ``scheme://host[:port]`` of a normalised URL: the scope of one robots.txt."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _ascii_host(host: str) -> str:
    host = host.lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return quote(host, safe=".-")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _normalize_escapes(s: str) -> str:
    s = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), s)
    return _ESCAPE.sub(lambda m: m.group(0).upper(), s)


def _normalize_query(query: str) -> str:
    if not query:
        return ""
    # Percent-encode raw non-ASCII as UTF-8 first, then split as latin-1 so that already-escaped
    # bytes in another encoding (GBK queries are common) come back out exactly as they went in.
    ascii_query = quote(query, safe="".join(chr(c) for c in range(33, 127)))
    pairs = [
        (k, v)
        for k, v in parse_qsl(ascii_query, keep_blank_values=True, encoding="latin-1")
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    return "&".join(
        f"{quote(k, safe=_QUERY_SAFE, encoding='latin-1')}={quote(v, safe=_QUERY_SAFE, encoding='latin-1')}"
        for k, v in sorted(pairs)
    )
