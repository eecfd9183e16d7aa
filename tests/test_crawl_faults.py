"""The crawler against servers that misbehave: real local HTTP servers written here, serving faults on purpose.

A connection dropped before or during a response, a server that stalls or trickles a body slower than
the timeout, an endless body, a gzip bomb, a body declared at 2 GB, a broken or unasked-for
Content-Encoding, 429 for ever, redirect loops, and addresses the crawler must refuse (SSRF). Every
crawl must end, and end with every URL as one row with its reason.
"""

from __future__ import annotations

import gzip
import io
import socket
import threading
import time
import tracemalloc
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tasks.crawl.addresses import address_refusal
from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import crawl_sync

pytestmark = pytest.mark.timeout(60)

LOCAL = ["127.0.0.1/32"]  # the test servers: allowed explicitly, as every crawl of this machine must be
MAX_BYTES = 1_000_000
CHUNK = b"<p>" + "无尽".encode() * 10_000 + b"</p>"  # ~60 KB of HTML, sent again and again
PAGE = '<html><head><meta charset="utf-8"></head><body><p>{}</p></body></html>'


def _gzip_bomb(size: int) -> bytes:
    """Return ``size`` zero bytes gzip-compressed (about size/1000 bytes), built without holding ``size`` bytes."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as f:
        block = bytes(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    return out.getvalue()


BOMB = _gzip_bomb(256 << 20)  # 256 MB once decoded


class FaultHandler(BaseHTTPRequestHandler):
    """Routes that each misbehave one way; the server counts hits and the bytes each route sent."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FaultServer

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.hits[path] += 1
            hit = self.server.hits[path]
        try:
            self.route(path, hit)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the crawler hung up: expected for the endless routes

    def route(self, path, hit):
        if path == "/robots.txt":
            return self.send(200, b"User-agent: *\nAllow: /\n", "text/plain")
        if path == "/ok":
            return self.send(200, PAGE.format("一切正常").encode(), "text/html; charset=utf-8")
        if path == "/drop-before-response":  # accepted, then closed without a byte
            return self.hang_up()
        if path == "/drop-mid-body":  # headers promise 10 000 bytes, 100 come, then the socket closes
            self.head(200, "text/html; charset=utf-8", {"Content-Length": "10000"})
            self.write(b"<p>" + b"x" * 97)
            return self.hang_up()
        if path == "/drop-once":  # the first attempt is cut mid-body, the retry is served whole
            if hit == 1:
                self.head(200, "text/html; charset=utf-8", {"Content-Length": "10000"})
                self.write(b"<p>half")
                return self.hang_up()
            return self.send(200, PAGE.format("第二次完整").encode(), "text/html; charset=utf-8")
        if path == "/stall":  # accepted, never answered
            self.server.stop.wait(30)
            return self.hang_up()
        if path == "/stall-body":  # headers at once, then silence
            self.head(200, "text/html; charset=utf-8", {"Content-Length": "10000"})
            self.server.stop.wait(30)
            return self.hang_up()
        if path == "/trickle":  # one byte every 0.1 s: each read is quick, the whole body never is
            self.head(200, "text/html; charset=utf-8", {"Content-Length": "10000"})
            for _ in range(10000):
                if self.server.stop.wait(0.1):
                    break
                self.write(b"x")
            return self.hang_up()
        if path == "/endless-chunked":
            self.head(200, "text/html; charset=utf-8", {"Transfer-Encoding": "chunked"})
            while not self.server.stop.is_set():
                self.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            return self.hang_up()
        if path == "/endless-until-close":  # no length at all: the body ends when the connection does
            self.head(200, "text/html; charset=utf-8", {"Connection": "close"})
            while not self.server.stop.is_set():
                self.write(CHUNK)
            return self.hang_up()
        if path == "/declared-2gb":
            self.head(200, "text/html; charset=utf-8", {"Content-Length": str(2 << 30)})
            while not self.server.stop.is_set():
                self.write(CHUNK)
            return self.hang_up()
        if path == "/gzip-bomb":
            return self.send(200, BOMB, "text/html; charset=utf-8", {"Content-Encoding": "gzip"})
        if path == "/deflate-raw":  # raw deflate without the zlib wrapper: what some servers send as "deflate"
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body = packer.compress(PAGE.format("原始压缩").encode()) + packer.flush()
            return self.send(200, body, "text/html; charset=utf-8", {"Content-Encoding": "deflate"})
        if path == "/broken-gzip":
            return self.send(200, BOMB[:20] + b"\xff" * 200, "text/html; charset=utf-8", {"Content-Encoding": "gzip"})
        if path == "/brotli":  # never asked for: Accept-Encoding names gzip and deflate only
            return self.send(200, b"\x1b\x03\x00\xf8", "text/html; charset=utf-8", {"Content-Encoding": "br"})
        if path == "/always429":
            return self.send(429, b"slow down", "text/plain", {"Retry-After": "3600"})
        if path == "/429-date":
            if hit == 1:
                return self.send(429, b"slow down", "text/plain", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
            return self.send(200, PAGE.format("限流结束").encode(), "text/html; charset=utf-8")
        if path == "/self-loop":  # back to itself, spelled with a tracking parameter
            return self.send(302, b"", "text/plain", {"Location": "/self-loop?utm_source=loop"})
        if path.startswith("/ring/"):  # /ring/0 -> /ring/1 -> /ring/2 -> /ring/0
            n = int(path.rsplit("/", 1)[1])
            return self.send(301, b"", "text/plain", {"Location": f"/ring/{(n + 1) % 3}"})
        if path == "/to-private":  # an allowed host sends the crawler to a private address
            return self.send(302, b"", "text/plain", {"Location": self.server.private_target})
        if path == "/links":
            links = "".join(f'<a href="{p}">{p}</a>' for p in self.server.linked)
            return self.send(200, PAGE.format(links).encode(), "text/html; charset=utf-8")
        return self.send(404, b"not found", "text/plain")

    def head(self, status, ctype, headers):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def send(self, status, body, ctype, headers=None):
        self.head(status, ctype, {"Content-Length": str(len(body)), **(headers or {})})
        self.write(body)

    def write(self, data):
        self.wfile.write(data)
        with self.server.lock:
            self.server.sent[urlsplit(self.path).path] += len(data)

    def hang_up(self):
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: the 16 connections a fault crawl opens at once overflow it
    # on a loaded machine, Linux drops the SYNs, and the client's retransmission after 1 s (= timeout_s) turns
    # ordinary routes into timeouts. Real servers listen with hundreds (nginx: 511).
    request_queue_size = 128

    def __init__(self, host="127.0.0.1", linked=(), private_target=""):
        super().__init__((host, 0), FaultHandler)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.connections = 0  # TCP connections accepted
        self.linked = list(linked)
        self.private_target = private_target

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-response is what these routes are for

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    @property
    def base(self):
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.shutdown()
        self.server_close()


def config(seeds, **overrides) -> CrawlConfig:
    settings = dict(
        allowed_networks=LOCAL, timeout_s=1.0, retries=1, backoff_s=0.0, retry_after_cap_s=0.2, max_bytes=MAX_BYTES,
        concurrency=16, per_host_concurrency=16,
    )
    return CrawlConfig(seeds=seeds, **{**settings, **overrides})


def rows_by_path(result) -> dict[str, dict]:
    rows = result.kept + result.rejected
    assert len(rows) == len({row["url"] for row in rows}) == result.stats.docs_in  # every URL exactly once
    assert result.stats.balanced()
    assert result.stats.rejected_by_reason == dict(Counter(row["reason"] for row in result.rejected))
    return {urlsplit(row["url"]).path: row for row in rows}


# --- drops, stalls, endless bodies ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_crawl(tmp_path_factory):
    """One crawl of every faulty route at once (they time out side by side, not one after another)."""
    paths = [
        "/ok", "/drop-before-response", "/drop-mid-body", "/drop-once", "/stall", "/stall-body", "/trickle",
        "/endless-chunked", "/endless-until-close", "/declared-2gb", "/gzip-bomb", "/always429", "/429-date",
        "/self-loop", "/ring/0", "/deflate-raw", "/broken-gzip", "/brotli",
    ]  # fmt: skip
    with FaultServer() as server:
        cfg = config([server.base + p for p in paths])
        started = time.perf_counter()
        result = crawl_sync(cfg, tmp_path_factory.mktemp("faults") / "faults.warc.gz")
        elapsed = time.perf_counter() - started
        with server.lock:
            hits, sent = Counter(server.hits), Counter(server.sent)
    return result, elapsed, hits, sent


def test_every_faulty_url_ends_as_one_row_with_a_reason(fault_crawl):
    result, *_ = fault_crawl
    rows = rows_by_path(result)
    assert {path: row.get("reason", "kept") for path, row in rows.items()} == {
        "/ok": "kept",
        "/drop-before-response": "connection_error",
        "/drop-mid-body": "connection_error",
        "/drop-once": "kept",
        "/stall": "timeout",
        "/stall-body": "timeout",
        "/trickle": "timeout",
        "/endless-chunked": "too_large",
        "/endless-until-close": "too_large",
        "/declared-2gb": "too_large",
        "/gzip-bomb": "too_large",
        "/always429": "http_status",
        "/429-date": "kept",
        "/self-loop": "redirect_loop",
        "/ring/0": "redirect_loop",
        "/deflate-raw": "kept",
        "/broken-gzip": "undecodable",
        "/brotli": "undecodable",
    }
    assert "第二次完整" in rows["/drop-once"]["text"] and "限流结束" in rows["/429-date"]["text"]
    assert "原始压缩" in rows["/deflate-raw"]["text"]
    assert rows["/brotli"]["detail"] == "Content-Encoding 'br'"
    assert rows["/broken-gzip"]["detail"].startswith("broken gzip body")


def test_dropped_connections_are_retried_then_named(fault_crawl):
    result, _, hits, _ = fault_crawl
    rows = rows_by_path(result)
    assert hits["/drop-before-response"] == hits["/drop-mid-body"] == 2  # retries=1
    assert hits["/drop-once"] == 2
    assert rows["/drop-before-response"]["detail"].startswith("RemoteProtocolError")
    assert rows["/drop-mid-body"]["detail"].startswith("RemoteProtocolError")
    assert "incomplete" in rows["/drop-mid-body"]["detail"] or "closed" in rows["/drop-mid-body"]["detail"]


def test_stalls_and_trickles_hit_one_deadline_per_attempt(fault_crawl):
    result, elapsed, hits, sent = fault_crawl
    rows = rows_by_path(result)
    for path in ("/stall", "/stall-body", "/trickle"):
        assert hits[path] == 2, path
        assert rows[path]["detail"].startswith("TimeoutError"), path
    # the trickle sent ~10 bytes per attempt: a per-read timeout (0.1 s < 1 s) alone would wait 1000 s
    assert 0 < sent["/trickle"] < 40
    # two attempts of 1 s each, 429s capped at 0.2 s, everything side by side: far from any hang
    assert elapsed < 8


def test_endless_and_huge_bodies_stop_at_max_bytes(fault_crawl):
    result, _, hits, sent = fault_crawl
    rows = rows_by_path(result)
    for path in ("/endless-chunked", "/endless-until-close", "/gzip-bomb"):
        assert rows[path]["detail"] == f"over max_bytes={MAX_BYTES} while reading", path
        assert hits[path] == 1, path  # too large is final: no retry
    assert rows["/declared-2gb"]["detail"] == f"Content-Length {2 << 30} > max_bytes={MAX_BYTES}"
    for path in ("/endless-chunked", "/endless-until-close", "/declared-2gb"):
        assert sent[path] < 32 * MAX_BYTES, path  # the crawler hung up: the server got to send little
    assert result.stats.counters["bytes_fetched"] < 5 * MAX_BYTES


def test_endless_body_memory_stays_bounded(tmp_path):
    with FaultServer() as server:
        cfg = config([server.base + "/endless-until-close", server.base + "/gzip-bomb"], concurrency=1)
        tracemalloc.start()
        try:
            result = crawl_sync(cfg, tmp_path / "endless.warc.gz")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert [row["reason"] for row in result.rejected] == ["too_large", "too_large"]
    assert peak < 5 * MAX_BYTES, f"peak {peak / 1e6:.1f} MB"


def test_429_for_ever_ends_as_http_status_with_retry_after_capped(fault_crawl):
    result, _, hits, _ = fault_crawl
    rows = rows_by_path(result)
    assert rows["/always429"]["detail"] == "429" and hits["/always429"] == 2
    assert hits["/429-date"] == 2  # a Retry-After date in the past: retried at once


def test_unwanted_bodies_are_drained_so_one_connection_serves_a_host(tmp_path):
    """A 404 sitemap.xml, the redirects of a ring and a 429 before its retry all leave their connection open for the next request."""
    with FaultServer() as server:
        cfg = config([server.base + "/ring/0", server.base + "/429-date"], concurrency=1, per_host_concurrency=1)
        result = crawl_sync(cfg, tmp_path / "keepalive.warc.gz")
        with server.lock:
            hits, connections = Counter(server.hits), server.connections
    rows = rows_by_path(result)
    assert hits["/sitemap.xml"] == 1 and hits["/429-date"] == 2 and [hits[f"/ring/{i}"] for i in range(3)] == [1, 1, 1]
    assert rows["/ring/0"]["reason"] == "redirect_loop" and "限流结束" in rows["/429-date"]["text"]
    assert connections == 1  # robots.txt, sitemap.xml, 3 redirects, a 429 and its retry: one keep-alive connection


def test_redirect_loops_are_cut(fault_crawl):
    result, _, hits, _ = fault_crawl
    rows = rows_by_path(result)
    assert rows["/self-loop"]["meta"]["redirected_to"] == []
    assert rows["/self-loop"]["detail"].endswith("/self-loop -> " + rows["/self-loop"]["url"])
    assert [p.rsplit("/", 2)[-2:] for p in rows["/ring/0"]["meta"]["redirected_to"]] == [["ring", "1"], ["ring", "2"]]
    assert hits["/self-loop"] == 1 and [hits[f"/ring/{i}"] for i in range(3)] == [1, 1, 1]


# --- addresses the crawler refuses (SSRF) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        ("8.8.8.8", None),
        ("2400:3200::1", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # an IPv4-mapped IPv6 address is its IPv4 address
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_address_refusal(address, refusal):
    assert address_refusal(address, []) == refusal


def test_address_refusal_allow_list():
    assert address_refusal("127.0.0.1", ["127.0.0.1/32"]) is None
    assert address_refusal("127.0.0.2", ["127.0.0.1/32"]) == "loopback"
    assert address_refusal("10.9.8.7", ["10.0.0.0/8"]) is None


def test_config_rejects_a_bad_network():
    with pytest.raises(ValueError, match="not an IP network"):
        CrawlConfig(allowed_networks=["127.0.0.300/32"])
    assert CrawlConfig().allowed_networks == []  # refused unless allow-listed: the default is public addresses only


def test_private_addresses_are_refused_unless_allowed(tmp_path):
    with FaultServer() as server:
        port = server.server_address[1]
        seeds = [server.base + "/ok", f"http://localhost:{port}/ok", f"http://[::1]:{port}/ok"]
        refused = crawl_sync(config(seeds, allowed_networks=[]), tmp_path / "refused.warc.gz")
        with server.lock:
            hits_refused = sum(server.hits.values())
        allowed = crawl_sync(config(seeds[:2]), tmp_path / "allowed.warc.gz")
    assert hits_refused == 0  # not even robots.txt: no connection was opened
    assert sorted(row["reason"] for row in refused.rejected) == ["blocked_address"] * 3
    details = {row["url"].split("/")[2]: row["detail"] for row in refused.rejected}
    assert "127.0.0.1 is loopback" in details[f"127.0.0.1:{port}"]
    assert "127.0.0.1 is loopback" in details[f"localhost:{port}"]  # a name is judged by what it resolves to
    assert "::1 is loopback" in details[f"[::1]:{port}"]
    assert refused.stats.counters.get("retries", 0) == 0  # a refusal is final
    assert allowed.stats.docs_kept == 2  # localhost resolves to the allowed 127.0.0.1


def test_redirect_from_an_allowed_host_to_a_private_address_is_refused(tmp_path):
    with FaultServer(host="127.0.0.2") as private, FaultServer() as public:
        public.private_target = private.base + "/ok"
        public.linked = [private.base + "/linked"]  # not the redirect's target: that URL is the redirect's row
        cfg = config([public.base + "/to-private", public.base + "/links"], allowed_domains=["127.0.0.2"])
        result = crawl_sync(cfg, tmp_path / "redirect.warc.gz")
        with private.lock:
            private_hits = sum(private.hits.values())
    rows = rows_by_path(result)
    assert private_hits == 0
    assert rows["/to-private"]["reason"] == "blocked_address"
    assert rows["/to-private"]["meta"]["redirected_to"] == [private.base + "/ok"]
    assert rows["/linked"]["reason"] == "blocked_address"
    assert rows["/links"].get("reason") is None


def test_file_and_other_schemes_are_never_fetched(tmp_path):
    with pytest.raises(ValueError):
        CrawlConfig(seeds=["file:///etc/passwd"])
    secret = tmp_path / "secret.txt"
    secret.write_text("机密", encoding="utf-8")
    with FaultServer() as server:
        server.linked = [secret.as_uri(), "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/", "/ok"]
        result = crawl_sync(config([server.base + "/links"]), tmp_path / "schemes.warc.gz")
    assert sorted(urlsplit(row["url"]).path for row in result.kept) == ["/links", "/ok"]
    assert not any(row["url"].startswith(("file:", "ftp:", "gopher:")) for row in result.kept + result.rejected)
