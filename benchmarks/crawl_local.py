"""Crawler throughput against a generated local site: pages per second with politeness off.

The site is ~200 UTF-8 pages of Chinese text (about 6 KB each, a five-way tree of links plus a few
cross-links), served by a stdlib threading HTTP server in its own process so that the server does not
share the crawler's GIL. Run: ``PYTHONPATH=. .venv/bin/python benchmarks/crawl_local.py [--pages 200]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import crawl_sync

PARAGRAPH = "长江流域迎来新一轮降雨，气象部门提醒沿江各地做好防汛准备。"  # 28 characters, 84 bytes in UTF-8


def site_page(n: int, pages: int) -> bytes:
    """Return page ``n`` of the generated site: text plus links to its children and three random pages."""
    rng = random.Random(n)
    targets = [c for c in range(5 * n + 1, 5 * n + 6) if c < pages] + [rng.randrange(pages) for _ in range(3)]
    links = "".join(f'<a href="/p/{t}">第{t}页</a>' for t in targets)
    body = "".join(f"<p>{PARAGRAPH}</p>" for _ in range(70))
    return f'<html><head><meta charset="utf-8"><title>第{n}页</title></head><body>{body}{links}</body></html>'.encode()


def serve(pages: int, port_queue) -> None:
    """Serve the generated site until killed; put the port on ``port_queue``."""
    bodies = {f"/p/{n}": site_page(n, pages) for n in range(pages)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls

        def log_message(self, format, *args):
            pass

        def do_GET(self):
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ports = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.pages, ports), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=10)}"
    try:
        for concurrency, per_host in [(8, 2), (8, 8), (16, 16), (32, 32)]:
            cfg = CrawlConfig(
                seeds=[base + "/p/0"], allowed_networks=["127.0.0.1/32"], max_depth=20, max_pages=args.pages, concurrency=concurrency,
                per_host_concurrency=per_host, politeness_delay_s=0.0,
            )  # fmt: skip
            rates = []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.perf_counter()
                    result = crawl_sync(cfg, Path(tmp) / "bench.warc.gz")
                    seconds = time.perf_counter() - started
                assert result.stats.docs_kept == args.pages and result.stats.balanced(), result.stats.to_dict()
                rates.append(args.pages / seconds)
            print(json.dumps({
                "pages": args.pages, "concurrency": concurrency, "per_host_concurrency": per_host,
                "pages_per_s_median": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates],
                "mb_fetched": round(result.stats.counters["bytes_fetched"] / 1e6, 2),
            }))  # fmt: skip
    finally:
        server.kill()


if __name__ == "__main__":
    main()
