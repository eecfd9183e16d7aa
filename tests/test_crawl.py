"""The crawl stage against a real local HTTP server serving tests/data/crawl/ plus dynamic routes.

One module-scoped crawl of the fixture site backs most assertions; small crawls of their own cover
timeouts, page limits, politeness, refused connections and a robots.txt that answers 5xx.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from warcio.archiveiterator import ArchiveIterator

from tasks.crawl.charset import decode_html, meta_charset
from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import crawl_sync, parse_content_type, retry_after_s
from tasks.crawl.links import extract_links
from tasks.crawl.robots import robots_rules
from tasks.crawl.urls import normalize_url, on_site, source_for
from tasks.crawl.warc import read_warc_body

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parent / "data" / "crawl"

STATIC = {  # path -> (fixture file, Content-Type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/utf8.html": ("utf8.html", "text/html"),
    "/gbk_meta.html": ("gbk_meta.html", "text/html"),
    "/gbk_header.html": ("gbk_header.html", "text/html; charset=GBK"),
    "/gbk_plain.html": ("gbk_plain.html", "text/html"),
    "/big5.html": ("big5.html", "text/html"),
    "/news/today.html": ("news/today.html", "text/html; charset=utf-8"),
    "/private/secret.html": ("private/secret.html", "text/html; charset=utf-8"),
    "/robots.txt": ("robots.txt", "text/plain"),
    "/doc.pdf": ("doc.pdf", "application/pdf"),
    "/img.png": ("img.png", "image/png"),
}
REDIRECTS = {"/loop/a": "/loop/b", "/loop/b": "/loop/a", "/moved": "/landing.html", "/old-utf8": "/utf8.html"}
GARBAGE = random.Random(0).randbytes(8192)
HUGE = 64 * 1024 * 1024  # what /huge would send if nobody stopped reading
BIG_TEXT = "".join(random.Random(1).choice("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经") for _ in range(350_000))
LOCAL = ["127.0.0.1/32"]  # the fixture servers: a crawl refuses loopback addresses unless allow-listed


class SiteHandler(BaseHTTPRequestHandler):
    """The fixture site: static files, redirects, flaky and slow routes, oversize streams."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    server: SiteServer

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.log.append((time.monotonic(), path, self.headers.get("User-Agent", "")))
            self.server.hits[path] += 1
            hit = self.server.hits[path]
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            self.route(path, hit)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawler hung up: that is the point of /huge and /slow
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def route(self, path, hit):
        if path == "/robots.txt" and self.server.robots_status != 200:
            return self.send(self.server.robots_status, b"down", "text/plain")
        if path in STATIC:
            file, ctype = STATIC[path]
            return self.send(200, (DATA / file).read_bytes(), ctype, path)
        if path in REDIRECTS:
            return self.send(302, b"", "text/plain", headers={"Location": REDIRECTS[path]})
        if path.startswith("/chain/"):
            return self.send(302, b"", "text/plain", headers={"Location": str(int(path.rsplit("/", 1)[1]) + 1)})
        if path.startswith("/deep/"):
            n = int(path.rsplit("/", 1)[1])
            return self.page(path, f'<p>第{n}层</p><a href="/deep/{n + 1}">更深</a>')
        if path.startswith(("/gen/", "/wait/")):
            prefix, n = path.rsplit("/", 1)
            if prefix == "/wait":
                time.sleep(0.05)  # long enough for requests to overlap
            links = "".join(f'<a href="{prefix}/{5 * int(n) + i}">{i}</a>' for i in range(1, 6))
            return self.page(path, f"<p>页面{n}</p>{links}")
        if path.startswith("/big/"):  # ~1 MB pages: archiving one takes far longer than serving it
            n = int(path.rsplit("/", 1)[1])
            self.server.note_unstored()
            links = "".join(f'<a href="/big/{3 * n + i}">{i}</a>' for i in range(1, 4))
            return self.page(path, f"<p>大页面{n}</p>{links}<p>{BIG_TEXT}</p>")
        if path == "/sitemap.xml" and self.server.sitemap is not None:
            return self.send(200, self.server.sitemap, "application/xml")
        if path == "/orphan.html":  # linked from nowhere: only a sitemap finds it
            return self.page(path, "<p>孤立页面：只有站点地图知道它。</p>")
        if path == "/landing.html":
            return self.page(path, "<p>落地页：搬家以后的新地址。</p>")
        if path == "/flaky":
            return self.send(500, b"oops", "text/plain") if hit == 1 else self.page(path, "<p>第二次就好了。</p>")
        if path == "/ratelimited":
            if hit == 1:
                return self.send(429, b"slow down", "text/plain", headers={"Retry-After": "1"})
            return self.page(path, "<p>限流之后。</p>")
        if path == "/always500":
            return self.send(500, b"oops", "text/plain")
        if path == "/slow":
            time.sleep(2.0)
            return self.page(path, "<p>太慢了</p>")
        if path == "/garbage.html":
            return self.send(200, GARBAGE, "text/html", path)
        if path == "/data.json":
            return self.send(200, b'{"a": 1}', "application/json")
        if path == "/huge":
            return self.stream_chunked()
        if path == "/huge-declared":
            return self.stream_declared()
        return self.send(404, b"not found", "text/plain")

    def page(self, path, body_html):
        body = f'<html><head><meta charset="utf-8"></head><body>{body_html}</body></html>'.encode()
        self.send(200, body, "text/html; charset=utf-8", path)

    def send(self, status, body, ctype, path=None, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        if path is not None:
            self.server.served[path] = body

    def stream_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<p>" + "大".encode() * 20000 + b"</p>"
        for _ in range(HUGE // len(chunk)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def stream_declared(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        self.close_connection = True
        for _ in range(HUGE // 65536):
            self.wfile.write(b"a" * 65536)


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, robots_status=200, sitemap: bytes | None = None):
        super().__init__(("127.0.0.1", 0), SiteHandler)
        self.robots_status = robots_status
        self.sitemap = sitemap
        self.lock = threading.Lock()
        self.log: list[tuple[float, str, str]] = []
        self.hits: Counter[str] = Counter()
        self.served: dict[str, bytes] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.frontier: Path | None = None  # a crawl's frontier.sqlite: set, each /big/ request notes the rows not stored yet
        self.max_unstored = 0

    def note_unstored(self) -> None:
        """Record how many /big/ pages were requested (this one included) whose rows the crawl has not stored yet."""
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(self.frontier)) as db:
            stored = db.execute("SELECT count(*) FROM urls WHERE attempted = 1 AND state IN ('fetched', 'done')").fetchone()[0]
        with self.lock:
            requested = sum(n for p, n in self.hits.items() if p.startswith("/big/"))
            self.max_unstored = max(self.max_unstored, requested - stored)

    def handle_error(self, request, client_address):
        pass  # a crawler closing a connection mid-response is expected here, not a failure to print

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def site():
    server = SiteServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


SITE_CONFIG = dict(
    allowed_networks=LOCAL, max_depth=3, retries=2, backoff_s=0.05, timeout_s=5.0, max_redirects=5, max_bytes=1_000_000, concurrency=8,
    per_host_concurrency=4,
)


@pytest.fixture(scope="module")
def site_crawl(site, tmp_path_factory):
    warc = tmp_path_factory.mktemp("crawl") / "site.warc.gz"
    cfg = CrawlConfig(seeds=[site.base + "/"], **SITE_CONFIG)
    with site.lock:
        hits_before, log_start = Counter(site.hits), len(site.log)
    started = time.perf_counter()
    result = crawl_sync(cfg, warc)
    elapsed = time.perf_counter() - started
    with site.lock:
        hits = Counter(site.hits) - hits_before  # only this crawl's requests, whatever ran before
        log = site.log[log_start:]
    return result, warc, elapsed, hits, log


def by_path(rows):
    return {urlsplit(row["url"]).path if "127.0.0.1" in row["url"] else row["url"]: row for row in rows}


# --- the site crawl -------------------------------------------------------------------------------


def test_every_discovered_url_is_one_row(site_crawl):
    result, *_ = site_crawl
    rows = result.kept + result.rejected
    assert result.stats.docs_in == len(rows) == len({row["url"] for row in rows}) == len({row["id"] for row in rows})
    assert result.stats.docs_kept == len(result.kept) and result.stats.docs_rejected == len(result.rejected)
    assert result.stats.balanced()
    assert all(row["stage"] == "crawl" for row in result.rejected)


def test_kept_pages_and_files(site_crawl):
    result, *_ = site_crawl
    kept = by_path(result.kept)
    assert set(kept) == {
        "/", "/utf8.html", "/gbk_meta.html", "/gbk_header.html", "/gbk_plain.html", "/big5.html", "/news/today.html",
        "/landing.html", "/flaky", "/ratelimited", "/doc.pdf", "/img.png", "/deep/1", "/deep/2", "/deep/3",
    }  # fmt: skip
    assert {path: doc["meta"]["kind"] for path, doc in kept.items() if doc["meta"]["kind"] != "html"} == {
        "/doc.pdf": "pdf", "/img.png": "image"
    }  # fmt: skip
    assert kept["/doc.pdf"]["text"] == "" and kept["/img.png"]["meta"]["content_type"] == "image/png"
    assert kept["/news/today.html"]["source"] == "news" and kept["/utf8.html"]["source"] == "web"
    html_keys = {"kind", "content_type", "charset", "status", "fetched_at", "depth", "bytes", "warc_file",
                 "warc_offset", "redirected_from"}  # fmt: skip
    assert all(set(doc["meta"]) == html_keys for doc in result.kept if doc["meta"]["kind"] == "html")
    assert set(kept["/doc.pdf"]["meta"]) == html_keys - {"charset"}
    assert kept["/deep/3"]["meta"]["depth"] == 3 and kept["/"]["meta"]["depth"] == 0
    assert kept["/"]["meta"]["fetched_at"].endswith("Z") and kept["/"]["meta"]["status"] == 200


def test_rejected_reasons(site_crawl):
    result, *_ = site_crawl
    reasons = {path: row["reason"] for path, row in by_path(result.rejected).items()}
    assert reasons == {
        "/loop/a": "redirect_loop",
        "/chain/0": "too_many_redirects",
        "/old-utf8": "redirect_duplicate",
        "/always500": "http_status",
        "/missing": "http_status",
        "/huge": "too_large",
        "/huge-declared": "too_large",
        "/garbage.html": "undecodable",
        "/data.json": "bad_content_type",
        "/private/secret.html": "robots_disallowed",
        "/deep/4": "depth_limit",
        "http://example.com/elsewhere": "off_site",
    }
    details = {path: row["detail"] for path, row in by_path(result.rejected).items()}
    assert details["/missing"] == "404" and details["/always500"] == "500"
    assert details["/data.json"] == "application/json"
    assert result.stats.rejected_by_reason == dict(Counter(reasons.values()))


def test_decoded_chinese_text(site_crawl):
    result, *_ = site_crawl
    kept = by_path(result.kept)
    expected = {  # path -> (charset, text the page must contain)
        "/utf8.html": ("utf-8", "你好，世界！这是一个用 UTF-8 编码的测试页面。😀"),
        "/gbk_meta.html": ("gbk", "国务院关于进一步加强数据安全管理的通知"),
        "/gbk_header.html": ("gbk", "北京今天晴转多云，最高气温二十八摄氏度"),
        "/gbk_plain.html": ("gb18030", "春节是中华民族最隆重的传统佳节"),
        "/big5.html": ("big5", "佢哋話呢度嘅茶餐廳好出名"),
        "/news/today.html": ("utf-8", "长江流域迎来新一轮降雨"),
    }
    for path, (charset, text) in expected.items():
        assert kept[path]["meta"]["charset"] == charset, path
        assert text in kept[path]["text"], path


def test_warc_round_trips_every_kept_body(site, site_crawl):
    result, warc, *_ = site_crawl
    offsets = set()
    for doc in result.kept:
        meta = doc["meta"]
        assert meta["warc_file"] == warc.name
        body = read_warc_body(warc, meta["warc_offset"])
        assert body == site.served[urlsplit(doc["url"]).path], doc["url"]
        assert len(body) == meta["bytes"]
        offsets.add(meta["warc_offset"])
    assert len(offsets) == len(result.kept)
    pdf_offset = by_path(result.kept)["/doc.pdf"]["meta"]["warc_offset"]
    assert read_warc_body(warc, pdf_offset) == (DATA / "doc.pdf").read_bytes()
    with open(warc, "rb") as f:
        records = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(f)]
    assert records[0][0] == "warcinfo"
    assert sorted(uri for kind, uri in records[1:]) == sorted(doc["url"] for doc in result.kept)


def test_duplicates_are_fetched_once_and_robots_honoured(site_crawl):
    result, _, _, hits, log = site_crawl
    assert hits["/utf8.html"] == 1  # linked bare, with a #fragment, with utm_/spm params, and via /old-utf8
    assert hits["/robots.txt"] == 1 and result.stats.counters["robots_fetched"] == 1
    assert hits["/private/secret.html"] == 0
    assert hits["/deep/4"] == 0
    assert all(ua == CrawlConfig().user_agent for _, _, ua in log)
    assert not any("mailto" in row["url"] or "javascript" in row["url"] for row in result.kept + result.rejected)


def test_redirects(site_crawl):
    result, _, _, hits, _ = site_crawl
    kept = by_path(result.kept)
    rejected = by_path(result.rejected)
    base = result.kept[0]["url"].rstrip("/")
    assert kept["/landing.html"]["meta"]["redirected_from"] == [base + "/moved"]
    assert "/moved" not in kept and "/moved" not in rejected  # one document, under its final URL
    assert kept["/utf8.html"]["meta"]["redirected_from"] == []
    assert rejected["/old-utf8"]["detail"] == base + "/utf8.html"
    assert rejected["/loop/a"]["meta"]["redirected_to"] == [base + "/loop/b"]
    assert hits["/loop/a"] == 1 and hits["/loop/b"] == 1
    assert [hits[f"/chain/{i}"] for i in range(8)] == [1, 1, 1, 1, 1, 1, 0, 0]  # 5 hops followed, the 6th refused
    assert result.stats.counters["redirects"] == 1 + 1 + 5


def test_retries_and_retry_after(site_crawl):
    result, _, _, hits, log = site_crawl
    assert hits["/flaky"] == 2 and hits["/ratelimited"] == 2 and hits["/always500"] == 3
    assert result.stats.counters["retries"] == 1 + 1 + 2
    limited = [t for t, path, _ in log if path == "/ratelimited"]
    assert limited[1] - limited[0] >= 0.95  # Retry-After: 1, not backoff_s=0.05


def test_oversize_bodies_stop_early(site_crawl):
    result, _, elapsed, *_ = site_crawl
    rejected = by_path(result.rejected)
    assert rejected["/huge-declared"]["detail"].startswith("Content-Length")
    assert "while reading" in rejected["/huge"]["detail"]
    assert result.stats.counters["bytes_fetched"] < 3 * SITE_CONFIG["max_bytes"]  # never buffered the 64 MB
    assert elapsed < 10


# --- small crawls of their own --------------------------------------------------------------------


def test_timeout(site, tmp_path):
    cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[site.base + "/slow"], timeout_s=0.5, retries=1, backoff_s=0.0)
    started = time.perf_counter()
    result = crawl_sync(cfg, tmp_path / "slow.warc.gz")
    assert time.perf_counter() - started < 1.9
    assert [(row["reason"], row["detail"].split(":")[0]) for row in result.rejected] == [("timeout", "TimeoutError")]
    assert result.kept == [] and result.stats.counters["retries"] == 1
    assert site.hits["/slow"] == 2


def test_page_limit(site, tmp_path):
    cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[site.base + "/gen/0"], max_pages=7, max_depth=5)
    result = crawl_sync(cfg, tmp_path / "gen.warc.gz")
    # level 0: gen/0; level 1: gen/1-5; level 2: gen/6-30, of which gen/6 still fits; level 3: gen/31-35.
    assert sorted(int(urlsplit(doc["url"]).path.split("/")[-1]) for doc in result.kept) == [0, 1, 2, 3, 4, 5, 6]
    assert result.stats.rejected_by_reason == {"page_limit": 24 + 5}
    assert result.rejected[0]["detail"] == "max_pages=7"
    assert result.stats.balanced()


def test_politeness_delay(tmp_path):
    server = SiteServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/gen/0"], max_pages=3, politeness_delay_s=0.2, per_host_concurrency=4)
        crawl_sync(cfg, tmp_path / "polite.warc.gz")
    finally:
        server.shutdown()
        server.server_close()
    starts = [t for t, _, _ in server.log]
    assert [path for _, path, _ in server.log][:2] == ["/robots.txt", "/sitemap.xml"]
    assert len(starts) == 5  # robots.txt, sitemap.xml (absent: 404) and three pages
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 0.18


@pytest.mark.parametrize(("concurrency", "per_host", "expected"), [(8, 3, 3), (2, 4, 2)])
def test_concurrency_limits(tmp_path, concurrency, per_host, expected):
    server = SiteServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = CrawlConfig(
            allowed_networks=LOCAL, seeds=[server.base + "/wait/0"], max_pages=16, concurrency=concurrency, per_host_concurrency=per_host
        )
        result = crawl_sync(cfg, tmp_path / "wait.warc.gz")
    finally:
        server.shutdown()
        server.server_close()
    assert result.stats.docs_kept == 16
    assert server.max_in_flight == expected  # reached, never exceeded


def test_robots_5xx_disallows_everything(tmp_path):
    server = SiteServer(robots_status=503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = crawl_sync(CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/", server.base + "/utf8.html"]), tmp_path / "r.warc.gz")
    finally:
        server.shutdown()
        server.server_close()
    assert [row["reason"] for row in result.rejected] == ["robots_disallowed", "robots_disallowed"]
    assert [path for _, path, _ in server.log] == ["/robots.txt"]


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody listens there
    cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[f"http://127.0.0.1:{port}/"], retries=1, backoff_s=0.0)
    result = crawl_sync(cfg, tmp_path / "refused.warc.gz")
    assert [row["reason"] for row in result.rejected] == ["connection_error"]
    assert result.stats.counters == {"robots_fetched": 1, "requests": 2, "retries": 1}
    assert (tmp_path / "refused.warc.gz").exists()


def test_robots_not_respected_when_disabled(site, tmp_path):
    cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[site.base + "/private/secret.html"], respect_robots=False)
    result = crawl_sync(cfg, tmp_path / "private.warc.gz")
    assert [doc["text"].strip() for doc in result.kept] == ["<html><body>机密</body></html>"]
    assert "robots_fetched" not in result.stats.counters


# --- pure functions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c?b=2&a=1#top", None, "http://example.com/a/c?a=1&b=2"),
        ("https://example.com:443", None, "https://example.com/"),
        ("https://example.com:8443/x", None, "https://example.com:8443/x"),
        ("/p?utm_source=wx&utm_medium=share&spm=a2c.1&from=timeline&id=7", "http://h.cn/", "http://h.cn/p?id=7"),
        ("../../x.html", "http://h.cn/a/b/c.html", "http://h.cn/x.html"),
        ("//cdn.h.cn/img.png", "https://h.cn/", "https://cdn.h.cn/img.png"),
        ("/新闻?q=中文", "http://h.cn/", "http://h.cn/%E6%96%B0%E9%97%BB?q=%E4%B8%AD%E6%96%87"),
        ("/s?wd=%d6%d0", "http://h.cn/", "http://h.cn/s?wd=%D6%D0"),  # a GBK query stays GBK
        ("/%7Euser/%2e%2e/x", "http://h.cn/", "http://h.cn/x"),
        ("http://user:pw@h.cn/", None, "http://h.cn/"),
        ("http://中文.cn/", None, "http://xn--fiq228c.cn/"),
        ("mailto:a@h.cn", None, None),
        ("javascript:void(0)", "http://h.cn/", None),
        ("ftp://h.cn/file", None, None),
        ("http://[::1/", None, None),
        ("#top", "http://h.cn/a?x=1", "http://h.cn/a?x=1"),
    ],
)
def test_normalize_url(url, base, expected):
    assert normalize_url(url, base) == expected


def test_source_for_longest_prefix():
    cfg = CrawlConfig(sources={"/news/": "news", "/news/finance/": "finance"})
    assert source_for("http://h.cn/news/a.html", cfg) == "news"
    assert source_for("http://h.cn/news/finance/a.html", cfg) == "finance"
    assert source_for("http://h.cn/about", cfg) == "web"


def test_on_site():
    assert on_site("http://h.cn:8080/x", {"h.cn"}, [])
    assert not on_site("http://www.h.cn/x", {"h.cn"}, [])
    assert on_site("http://www.news.cn/x", {"h.cn"}, ["news.cn"])
    assert not on_site("http://fakenews.cn/x", {"h.cn"}, ["news.cn"])


@pytest.mark.parametrize(
    ("body", "header", "text", "charset"),
    [
        ('<meta charset="gbk"><p>数据安全</p>'.encode("gbk"), None, "数据安全", "gbk"),
        ("<p>天气预报</p>".encode("gbk"), "GBK", "天气预报", "gbk"),
        ("<p>朱镕基</p>".encode("gbk"), "gb2312", "朱镕基", "gb2312"),  # 镕 is GBK, not GB2312
        ("<p>𠮷野家</p>".encode("gb18030"), "gbk", "𠮷野家", "gbk"),  # a four-byte GB18030 character
        ('<meta charset="big5"><p>我哋嘅</p>'.encode("big5hkscs"), None, "我哋嘅", "big5"),  # 嘅 is HKSCS
        (b"\xef\xbb\xbf<p>\xe4\xb8\xad</p>", "gbk", "<p>中</p>", "utf-8"),  # the BOM wins
        ("<p>中文</p>".encode("utf-16-le").join([b"\xff\xfe", b""]), None, "<p>中文</p>", "utf-16-le"),
        ('<meta charset="gbk"><p>这一页其实是用 UTF-8 保存的。</p>'.encode(), None, "其实是用 UTF-8 保存", "utf-8"),
        ('<meta charset="utf-8"><p>数据安全</p>'.encode("gbk"), "gbk", "数据安全", "gbk"),  # header before meta
        ('<?xml version="1.0" encoding="gb2312"?><p>数据</p>'.encode("gbk"), None, "数据", "gb2312"),
        (b"<p>plain ascii</p>", None, "<p>plain ascii</p>", "ascii"),
        (b"", None, "", "utf-8"),
    ],
)
def test_decode_html(body, header, text, charset):
    decoded, got = decode_html(body, header)
    assert (text in decoded, got) == (True, charset)


@pytest.mark.parametrize("body", [GARBAGE, b"\x00\x01\x02\x03" * 100 + b"<html></html>"])
def test_decode_html_rejects_binary(body):
    with pytest.raises(ValueError, match="binary body"):
        decode_html(body, "utf-8")


def test_meta_charset_looks_only_at_the_head():
    assert meta_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=GB2312">') == "gb2312"
    assert meta_charset(b" " * 5000 + b'<meta charset="gbk">') is None
    assert meta_charset(b'<meta charset="utf-16">') == "utf-8"


def test_extract_links():
    html = """<html><head><base href="http://h.cn/docs/"></head><body>
      <a href="a.html#x">a</a><a href="a.html">again</a><a href="/b?utm_source=x">b</a>
      <a href="mailto:x@h.cn">m</a><a href="javascript:void(0)">j</a><a>no href</a>
      <a href="http://other.cn/c">c</a></body></html>"""
    expected = ["http://h.cn/docs/a.html", "http://h.cn/b", "http://other.cn/c"]
    assert extract_links(html, "http://h.cn/index.html") == expected
    assert extract_links("", "http://h.cn/") == []
    xhtml = '<?xml version="1.0" encoding="gbk"?><a href="x">中</a>'  # lxml refuses str with a declaration
    assert extract_links(xhtml, "http://h.cn/d/") == ["http://h.cn/d/x"]


def test_robots_rules():
    rules = robots_rules(200, "User-agent: *\nDisallow: /private/\n")
    assert not rules.can_fetch("liandan-crawler/0.1", "http://h.cn/private/a.html")
    assert rules.can_fetch("liandan-crawler/0.1", "http://h.cn/public.html")
    assert robots_rules(404).can_fetch("bot", "http://h.cn/private/")
    assert robots_rules(None).can_fetch("bot", "http://h.cn/private/")
    assert not robots_rules(500).can_fetch("bot", "http://h.cn/")


def test_retry_after_and_content_type():
    assert retry_after_s("3") == 3.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert retry_after_s("soon") is None and retry_after_s(None) is None
    assert parse_content_type("Text/HTML; charset=gb2312") == ("text/html", "gb2312")
    assert parse_content_type("") == ("", None)


def test_config_bounds():
    with pytest.raises(ValueError):
        CrawlConfig(seeds=["ftp://h.cn/"])
    with pytest.raises(ValueError):
        CrawlConfig(concurrency=0)
    with pytest.raises(ValueError):
        CrawlConfig(max_depth=3, unknown=1)
    assert all(f.description for f in CrawlConfig.model_fields.values())


# --- the crawl at scale: shards while crawling, a persisted frontier, sitemaps --------------------


def stage_rows(out):
    from tasks.store import read_shard

    return [row for p in out.shards() for row in read_shard(p)] + [row for p in out.rejected_shards() for row in read_shard(p)]


def test_sitemap_urls_are_crawled(tmp_path):
    server = SiteServer(sitemap=b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                               b"<url><loc>/orphan.html</loc></url><url><loc>http://elsewhere.example.cn/x</loc></url></urlset>")  # fmt: skip
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = crawl_sync(CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/deep/1"], max_depth=1), tmp_path / "s.warc.gz")
        unread = crawl_sync(CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/deep/1"], max_depth=1, read_sitemaps=False), tmp_path / "n.warc.gz")
    finally:
        server.shutdown()
        server.server_close()
    kept = by_path(result.kept)
    assert "孤立页面" in kept["/orphan.html"]["text"] and kept["/orphan.html"]["meta"]["depth"] == 1
    assert by_path(result.rejected)["http://elsewhere.example.cn/x"]["reason"] == "off_site"
    assert result.stats.counters["sitemap_urls"] == 2 and result.stats.balanced()
    assert "/orphan.html" not in by_path(unread.kept)


def test_crawl_commits_shards_and_skips_when_done(tmp_path):
    from tasks.crawl.task import crawl_seeds
    from tasks.store import StageDir

    server = SiteServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/gen/0"], max_pages=40, max_depth=5)
        out = StageDir(tmp_path / "crawl")
        part = crawl_seeds(out, cfg, shard_docs=10)
        again = crawl_seeds(out, cfg, shard_docs=10)
    finally:
        server.shutdown()
        server.server_close()
    rows = stage_rows(out)
    assert part.stats.docs_kept == 40 and len(rows) == part.stats.docs_in == len({r["url"] for r in rows})
    from tasks.store import read_shard

    sizes = [(len(read_shard(out.shard(n))), len(read_shard(out.rejected(n)))) for n in part.shards]
    assert all(k <= 10 and r <= 10 and (k == 10 or r == 10) for k, r in sizes[:-1])  # each shard committed when full
    assert sum(k for k, _ in sizes) == 40 and sum(r for _, r in sizes) == part.stats.docs_rejected == 161
    assert again.stats.counters["stage_skipped"] == 1 and again.shards == part.shards
    assert server.hits["/gen/0"] == 1  # the rerun fetched nothing


def test_requests_answered_but_not_stored_stay_within_concurrency(tmp_path):
    """A job keeps its slot until its row is stored: what a kill can make a rerun fetch again is at most `concurrency` URLs."""
    from tasks.crawl.task import FRONTIER_FILE, crawl_seeds
    from tasks.store import StageDir

    server = SiteServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = StageDir(tmp_path / "crawl")
    server.frontier = out.root / FRONTIER_FILE
    try:
        cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/big/0"], max_pages=24, concurrency=2, per_host_concurrency=2, max_bytes=4_000_000)
        part = crawl_seeds(out, cfg, shard_docs=10)
    finally:
        server.shutdown()
        server.server_close()
    assert part.stats.docs_kept == 24
    assert 1 <= server.max_unstored <= cfg.concurrency


def test_sigkilled_crawl_resumes_without_refetching_or_duplicating(tmp_path):
    """A crawl killed with SIGKILL mid-way, then rerun: no finished URL is fetched again, every URL ends in one row."""
    import json
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    from tasks.crawl.task import FRONTIER_FILE, WARC_DIR, crawl_seeds
    from tasks.store import StageDir

    server = SiteServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = CrawlConfig(allowed_networks=LOCAL, seeds=[server.base + "/wait/0"], max_pages=150, max_depth=6, concurrency=4, per_host_concurrency=4)
        reference = crawl_sync(cfg, tmp_path / "ref.warc.gz")  # the same crawl, never interrupted
        expected = {row["url"] for row in reference.kept + reference.rejected}
        with server.lock:
            server.hits.clear()
        out = StageDir(tmp_path / "crawl")
        script = (
            "import sys; from pathlib import Path; from tasks.crawl.config import CrawlConfig; from tasks.crawl.task import crawl_seeds; "
            "from tasks.store import StageDir; crawl_seeds(StageDir(Path(sys.argv[2])), CrawlConfig.model_validate_json(sys.argv[1]), 10)"
        )
        proc = subprocess.Popen([sys.executable, "-c", script, cfg.model_dump_json(), str(out.root)], cwd=Path(__file__).resolve().parent.parent)
        frontier = out.root / FRONTIER_FILE
        stored: set[str] = set()
        deadline = time.monotonic() + 120
        while len(stored) < 60 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            if frontier.exists():
                try:
                    with sqlite3.connect(frontier) as db:
                        stored = {u for (u,) in db.execute("SELECT url FROM urls WHERE state IN ('fetched', 'done') AND attempted = 1")}
                except sqlite3.OperationalError:  # the schema is being created
                    continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the crawl finished before it could be killed"
        with sqlite3.connect(frontier) as db:
            stored = {u for (u,) in db.execute("SELECT url FROM urls WHERE state IN ('fetched', 'done') AND attempted = 1")}
        shards_at_kill = len(out.shards())
        with server.lock:
            first_hits = Counter(server.hits)
        part = crawl_seeds(out, cfg, shard_docs=10)  # the rerun resumes
        with server.lock:
            second_hits = Counter(server.hits) - first_hits
    finally:
        server.shutdown()
        server.server_close()
    assert 60 <= len(stored) < 150 and shards_at_kill >= 1  # killed mid-way, shards already committed
    stored_paths = {urlsplit(u).path for u in stored}
    refetched = {p for p in second_hits if p.startswith("/wait/") and first_hits[p]}
    assert not refetched & stored_paths  # no finished URL was fetched again
    # only jobs in flight at the kill are repeated: a job keeps its slot until its row is stored
    assert len(refetched) <= cfg.concurrency
    assert all(n == 1 for p, n in second_hits.items() if p.startswith("/wait/"))
    rows = stage_rows(out)
    assert len(rows) == len({r["url"] for r in rows}) == part.stats.docs_in  # nothing duplicated
    assert {r["url"] for r in rows} == expected  # nothing lost
    assert part.stats.docs_kept == 150 and part.stats.counters["crawl_sessions"] == 2
    kept = [r for p in out.shards() for r in __import__("tasks.store", fromlist=["read_shard"]).read_shard(p)]
    assert {r["meta"]["warc_file"] for r in kept} == {"crawl-00000.warc.gz", "crawl-00001.warc.gz"}
    for row in kept:  # every kept row's body is in the WARC of the session that fetched it
        body = read_warc_body(out.root / WARC_DIR / row["meta"]["warc_file"], row["meta"]["warc_offset"])
        assert f"页面{row['url'].rsplit('/', 1)[1]}".encode() in body
    assert json.loads((out.root / "progress.json").read_text())["pages_done"] == len(rows)
