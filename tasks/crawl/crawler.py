"""A polite breadth-first crawler: seeds to kept pages and files (in a WARC) and rejected URLs with reasons.

URLs are fetched in discovery order (breadth-first), a batch of ``BATCH_JOBS`` at a time, and the
links of a batch are admitted in that order once the batch is done, so which URL a limit cuts off
does not depend on which response came back first. Every unique normalised URL it discovers — seeds,
links and sitemap entries — ends as exactly one row: kept, or rejected with a ``CrawlReason``.
Redirect hops are part of the row of the URL that led to them, not rows of their own.

The queue, the seen set and the finished rows live in a ``Frontier`` (SQLite) rather than in memory:
``crawl`` (one WARC, rows returned in memory, for ``liandan step`` and small crawls) keeps it in a
temporary folder; ``crawl_to_shards`` (the data flow's crawl) keeps it in the stage folder, commits
shards as they fill and resumes a killed crawl where its last stored row left it.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from tasks.crawl.addresses import BlockedAddress, guarded_transport
from tasks.crawl.bodies import ACCEPT_ENCODING, BodyDecoder, UnsupportedEncoding
from tasks.crawl.charset import decode_html
from tasks.crawl.config import CrawlConfig
from tasks.crawl.frontier import Frontier, Job
from tasks.crawl.links import extract_links
from tasks.crawl.robots import MAX_ROBOTS_BYTES, robots_rules
from tasks.crawl.sitemaps import MAX_SITEMAPS, parse_sitemap
from tasks.crawl.urls import normalize_url, on_site, origin_of, source_for
from tasks.crawl.warc import WarcSink
from tasks.records import Doc, Reject, make_doc, reject_row
from tasks.steps import ShardStats
from tasks.store import StageDir, atomic_write_json

STAGE = "crawl"

CrawlReason = Literal[
    "http_status",  # a 4xx/5xx (after retries for 5xx and 429), or a redirect without a usable Location
    "timeout",  # no complete response within timeout_s, after retries
    "connection_error",  # DNS, refused, reset, protocol error, after retries
    "blocked_address",  # the host resolves only to loopback/private/link-local addresses not in allowed_networks
    "too_large",  # body (declared or read so far) over max_bytes
    "robots_disallowed",  # robots.txt forbids the URL (or the target of its redirect)
    "bad_content_type",  # neither an HTML type nor a file type
    "undecodable",  # an HTML body that is binary or no charset decodes, or a Content-Encoding that does not decode
    "too_many_redirects",  # more than max_redirects hops
    "redirect_loop",  # a hop leads back to a URL of the same chain
    "redirect_duplicate",  # a hop leads to a URL the crawl already has: that URL is counted once, there
    "off_site",  # a link (or redirect) to a host outside the seeds' hosts and allowed_domains
    "depth_limit",  # a link beyond max_depth
    "page_limit",  # a URL beyond max_pages
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BATCH_JOBS = 256  # URLs taken from the frontier at a time: what memory holds
DRAIN_BYTES = 64 * 1024  # an unwanted body (an error page, a redirect's, a 429's) up to this is read to its end: its connection is reused
CRAWL_SHARD = re.compile(r"^part-(\d{5})\.parquet$")  # the crawl's own shards; input files' shards are part-<key>-<n>
PROGRESS_FILE = "progress.json"  # the live figures of a crawl in progress, read by the flow process for MLflow


@dataclass
class CrawlResult:
    """What a crawl made of its seeds: kept + rejected = stats.docs_in, every discovered URL once."""

    kept: list[Doc]
    rejected: list[Doc]
    stats: ShardStats


@dataclass
class Response:
    """One HTTP response: headers always, the body only for a 2xx of a wanted type."""

    url: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    fetched_at: str
    kind: str = ""  # html, pdf, image or file; empty when the body was not read
    content_type: str = ""
    charset: str | None = None
    body: bytes = b""


@dataclass
class Outcome:
    """The row a job ended as, and the links it found (HTML pages only)."""

    doc: Doc
    kept: bool
    links: list[str] = field(default_factory=list)
    hops: list[str] = field(default_factory=list)  # redirect targets passed through on the way
    attempted: bool = True  # False for a URL rejected before any request (robots, page_limit)


async def crawl(cfg: CrawlConfig, warc_path: Path) -> CrawlResult:
    """Crawl from ``cfg.seeds``; write kept responses to the gzip WARC ``warc_path`` and return all rows."""
    started = time.perf_counter()
    warc_path = Path(warc_path)
    warc_path.parent.mkdir(parents=True, exist_ok=True)
    partial = warc_path.with_name(warc_path.name + ".part")  # renamed when the crawl completes
    with tempfile.TemporaryDirectory(prefix="liandan-frontier-") as tmp:
        frontier = Frontier(Path(tmp) / "frontier.sqlite")
        try:
            crawler = await run_crawler(cfg, frontier, partial, warc_name=warc_path.name)
            partial.replace(warc_path)
            kept, rejected = [], []
            for is_kept, doc in frontier.rows():
                (kept if is_kept else rejected).append(doc)
            return CrawlResult(kept=kept, rejected=rejected, stats=crawler.stats(time.perf_counter() - started))
        finally:
            frontier.close()


def crawl_sync(cfg: CrawlConfig, warc_path: Path) -> CrawlResult:
    """Return ``crawl(cfg, warc_path)`` run to completion on a fresh event loop."""
    return asyncio.run(crawl(cfg, warc_path))


async def run_crawler(cfg: CrawlConfig, frontier: Frontier, warc_path: Path, warc_name: str, on_batch=None) -> Crawler:
    """Crawl until the frontier is empty, writing kept responses to ``warc_path``; return the finished crawler."""
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    sink = WarcSink(warc_path, software=cfg.user_agent)
    try:
        # trust_env=False: no proxy or certificate settings from the environment (configs say everything).
        async with httpx.AsyncClient(
            headers={"User-Agent": cfg.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=cfg.timeout_s,
            follow_redirects=False,
            transport=guarded_transport(cfg.allowed_networks, limits),
            trust_env=False,
        ) as client:
            crawler = Crawler(cfg, client, sink, warc_name=warc_name, frontier=frontier, on_batch=on_batch)
            await crawler.run()
    finally:
        sink.close()
    return crawler


def crawl_to_shards(cfg: CrawlConfig, out: StageDir, shard_docs: int, frontier_path: Path, warc_dir: Path) -> ShardStats:
    """Crawl into ``out``'s shards, committed as they fill; resume from the frontier a killed crawl left; return the stats.

    Each session (a first run, each resume) writes its own WARC file ``crawl-<session>.warc.gz``, so a
    record a committed row points at is never rewritten.
    """
    started = time.perf_counter()
    frontier = Frontier(frontier_path)
    try:
        session = int(frontier.get("sessions", 0))
        frontier.put("sessions", session + 1)
        warc_name = f"crawl-{session:05d}.warc.gz"
        warc_dir.mkdir(parents=True, exist_ok=True)
        shards = CrawlShards(out, frontier, shard_docs)
        shards.commit(final=False)  # rows a killed session stored but did not shard yet

        def on_batch(crawler: Crawler) -> None:
            shards.commit(final=False)
            crawler.write_progress(out.root / PROGRESS_FILE, time.perf_counter() - started)

        crawler = asyncio.run(run_crawler(cfg, frontier, warc_dir / warc_name, warc_name, on_batch=on_batch))
        shards.commit(final=True)
        crawler.write_progress(out.root / PROGRESS_FILE, time.perf_counter() - started)
        stats = crawler.stats(time.perf_counter() - started)
        stats.counters = {**stats.counters, "crawl_sessions": session + 1}
        return stats
    finally:
        frontier.close()


class CrawlShards:
    """Cuts the frontier's finished rows into shards ``part-<n>.parquet``: full ones as they fill, the rest at the end."""

    def __init__(self, out: StageDir, frontier: Frontier, shard_docs: int):
        self.out = out
        self.frontier = frontier
        self.shard_docs = shard_docs

    def commit(self, final: bool) -> int:
        """Commit every full shard waiting (and, when ``final``, the partial last one); return how many were written."""
        written = 0
        while True:
            kept_waiting, rejected_waiting = self.frontier.unsharded_counts()
            full = kept_waiting >= self.shard_docs or rejected_waiting >= self.shard_docs
            if not full and not (final and (kept_waiting or rejected_waiting)):
                return written
            seqs, kept, rejected = [], [], []
            for seq, is_kept, doc in self.frontier.unsharded():
                seqs.append(seq)
                (kept if is_kept else rejected).append(doc)
                if len(kept) == self.shard_docs or len(rejected) == self.shard_docs:
                    break
            n = int(self.frontier.get("next_shard", 0))
            name = f"part-{n:05d}.parquet"
            marker = {"input": "seeds", "stats": {"docs_kept": len(kept), "docs_rejected": len(rejected)}}
            self.out.commit_shard(name, kept, rejected, marker)  # a kill before the next line rewrites this same shard
            self.frontier.sharded(seqs, n)
            written += 1


class Crawler:
    """The state of one crawl: its frontier, robots rules, per-host slots and clocks, and counters."""

    def __init__(self, cfg: CrawlConfig, client: httpx.AsyncClient, sink: WarcSink, warc_name: str, frontier: Frontier, on_batch=None):
        self.cfg = cfg
        self.client = client
        self.sink = sink
        self.warc_name = warc_name
        self.frontier = frontier
        self.on_batch = on_batch
        self.seed_hosts = {urlsplit(u).hostname for u in (normalize_url(s) for s in cfg.seeds) if u}
        self.claimed_hops: set[str] = set()  # redirect targets of jobs in flight, stored with their rows
        self.counters: Counter[str] = Counter(frontier.get("counters", {}))
        self.robots: dict[str, RobotFileParser] = {}
        self.robots_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.slots = asyncio.Semaphore(cfg.concurrency)  # requests in flight (robots.txt and sitemaps included)
        self.jobs = asyncio.Semaphore(cfg.concurrency)  # jobs between their first request and their stored row
        self.host_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(cfg.per_host_concurrency)
        )
        self.host_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.host_next_start: dict[str, float] = {}
        self.warc_lock = asyncio.Lock()
        self.fetched_this_session = 0
        self.robots_answered: set[str] = set()  # origins whose robots.txt request got an HTTP response

    async def run(self) -> None:
        """Crawl a batch at a time, in discovery order, until no URL is left to fetch."""
        if not self.frontier.get("seeded", False):
            with self.frontier.transaction():
                for seed in self.cfg.seeds:
                    url = normalize_url(seed)
                    if url is None:  # passed the config's pattern yet is no URL (a bad port, a broken IPv6 literal)
                        self.counters["invalid_seeds"] += 1
                    else:
                        self.frontier.discover(url, 0)
                self.frontier.put("seeded", True)
                self.frontier.put("counters", dict(self.counters))
        admitted = self.frontier.attempted()
        while jobs := self.frontier.pending(BATCH_JOBS):
            origins = sorted({origin_of(job.url) for job in jobs})
            await asyncio.gather(*(self.robots_for(origin) for origin in origins))
            sitemap_links = await self.read_sitemaps(origins)
            batch = []
            for job in jobs:
                if job.fetched:  # stored by a killed session: its links are admitted below, it is not fetched again
                    continue
                if not await self.allowed(job.url):
                    self.record(job, self.rejected_outcome(job, [job.url], Reject("robots_disallowed", "robots.txt"), attempted=False))
                elif admitted >= self.cfg.max_pages:
                    self.record(job, self.rejected_outcome(job, [job.url], Reject("page_limit", f"max_pages={self.cfg.max_pages}"), attempted=False))
                else:
                    admitted += 1
                    batch.append(job)
            await asyncio.gather(*(self.fetch_and_record(job) for job in batch))
            with self.frontier.transaction():  # links admitted in discovery order, whatever order responses came in
                for job in jobs:
                    self.admit_links(self.frontier.links_of(job), job.depth + 1)
                    self.frontier.finish(job)
                for origin, links in sitemap_links.items():
                    self.admit_links(links, 1)
                    self.frontier.put(f"sitemaps:{origin}", True)
                self.frontier.put("counters", dict(self.counters))
            self.claimed_hops.clear()
            if self.on_batch is not None:
                self.on_batch(self)

    async def fetch_and_record(self, job: Job) -> None:
        """Crawl one job and store its row at once, so a killed crawl never fetches it again.

        The job holds one of ``concurrency`` job slots until its row is stored, not only while its request
        is in flight: otherwise answered responses waiting to be decoded and archived pile up behind new
        requests, and a kill makes the rerun fetch all of them again instead of at most ``concurrency``.
        """
        async with self.jobs:
            outcome = await self.crawl_one(job)
            self.fetched_this_session += 1
            self.record(job, outcome)

    def record(self, job: Job, outcome: Outcome) -> None:
        self.frontier.record(job, outcome.doc, outcome.kept, outcome.links, outcome.attempted, outcome.hops, dict(self.counters))

    def admit_links(self, links: list[str], depth: int) -> None:
        """Queue the links not seen before; reject off-site and too-deep ones on the spot."""
        for url in links:
            if self.frontier.seen(url):
                continue
            if not on_site(url, self.seed_hosts, self.cfg.allowed_domains):
                self.reject(url, depth, "off_site", urlsplit(url).hostname or "")
            elif depth > self.cfg.max_depth:
                self.reject(url, depth, "depth_limit", f"max_depth={self.cfg.max_depth}")
            else:
                self.frontier.discover(url, depth)

    async def read_sitemaps(self, origins: list[str]) -> dict[str, list[str]]:
        """Return the page URLs listed in the sitemaps of the seed origins not read before (robots.txt's, else /sitemap.xml)."""
        found: dict[str, list[str]] = {}
        if not self.cfg.read_sitemaps:
            return found
        for origin in origins:
            if urlsplit(origin).hostname not in self.seed_hosts or self.frontier.get(f"sitemaps:{origin}", False):
                continue
            if self.cfg.respect_robots and origin not in self.robots_answered:  # the host did not answer for robots.txt
                found[origin] = []
                continue
            rules = self.robots.get(origin)
            todo = list((rules.site_maps() if rules is not None else None) or [origin + "/sitemap.xml"])
            links: list[str] = []
            read = 0
            while todo and read < MAX_SITEMAPS:
                url = todo.pop(0)
                body = await self.fetch_sitemap(url)
                read += 1
                locs, is_index = parse_sitemap(body)
                normalized = [u for u in (normalize_url(loc, base=url) for loc in locs) if u]
                if is_index:
                    todo.extend(normalized)
                else:
                    links.extend(normalized)
            self.counters["sitemap_urls"] += len(links)
            found[origin] = links
        return found

    async def fetch_sitemap(self, url: str) -> bytes:
        """Return the body of one sitemap (empty when it is missing, unreachable or over max_bytes)."""
        if not await self.allowed(url):
            return b""
        self.counters["sitemaps_fetched"] += 1
        try:  # one attempt: a sitemap is a hint, and its pages are found by links too
            response = await self.fetch_once(url, any_type=True)
        except (BlockedAddress, TimeoutError, httpx.HTTPError, httpx.InvalidURL, OSError):
            return b""
        if isinstance(response, Reject) or not 200 <= response.status < 300:
            return b""
        return response.body

    async def crawl_one(self, job: Job) -> Outcome:
        """Return the row ``job`` ends as: fetched through its redirects, decoded, archived."""
        chain = [job.url]
        while True:
            response = await self.fetch(chain[-1])
            if isinstance(response, Reject):
                return self.rejected_outcome(job, chain, response)
            if response.status not in REDIRECT_STATUSES:
                break
            target, verdict = await self.follow(response, chain)
            if verdict is not None:
                return self.rejected_outcome(job, chain, verdict, status=response.status)
            chain.append(target)
        if not 200 <= response.status < 300:
            return self.rejected_outcome(job, chain, Reject("http_status", str(response.status)), response.status)
        if response.kind == "html":
            try:
                text, charset, links = await asyncio.to_thread(read_html, response)
            except ValueError as e:
                return self.rejected_outcome(job, chain, Reject("undecodable", str(e)), response.status)
        else:
            text, charset, links = "", None, []
        async with self.warc_lock:  # one writer: records never interleave
            offset = await asyncio.to_thread(
                self.sink.write_response,
                response.url, response.status, response.reason, response.headers, response.body, response.fetched_at,
            )
            self.sink.flush()  # on disk (for this process's death) before the row that points at it is stored
        self.counters["html_pages" if response.kind == "html" else "files"] += 1
        meta = {
            "kind": response.kind,
            "content_type": response.content_type,
            **({"charset": charset} if response.kind == "html" else {}),
            "status": response.status,
            "fetched_at": response.fetched_at,
            "depth": job.depth,
            "bytes": len(response.body),
            "warc_file": self.warc_name,
            "warc_offset": offset,
            "redirected_from": chain[:-1],
        }
        doc = make_doc(url=response.url, text=text, source=source_for(response.url, self.cfg), meta=meta)
        return Outcome(doc, kept=True, links=links, hops=chain[1:])

    async def follow(self, response: Response, chain: list[str]) -> tuple[str, Reject | None]:
        """Return the normalised target of a redirect, or why the chain stops there."""
        location = dict((k.lower(), v) for k, v in response.headers).get("location", "")
        target = normalize_url(location, base=response.url) if location.strip() else None
        if target is None:
            return "", Reject("http_status", f"{response.status} without an http(s) Location: {location!r}")
        if target in chain:
            return target, Reject("redirect_loop", " -> ".join([*chain, target]))
        if len(chain) - 1 >= self.cfg.max_redirects:
            return target, Reject("too_many_redirects", f"max_redirects={self.cfg.max_redirects}")
        if not on_site(target, self.seed_hosts, self.cfg.allowed_domains):
            return target, Reject("off_site", f"redirect to {target}")
        if target in self.claimed_hops or self.frontier.seen(target):
            return target, Reject("redirect_duplicate", target)
        if not await self.allowed(target):
            return target, Reject("robots_disallowed", f"redirect to {target}")
        self.claimed_hops.add(target)  # stored as a hop with the row of the URL that led here
        self.counters["redirects"] += 1
        return target, None

    async def fetch(self, url: str) -> Response | Reject:
        """Return the response to GET ``url``, retrying 5xx, 429, timeouts and connection errors with backoff."""
        verdict = Reject("connection_error", "no attempt made")
        for attempt in range(self.cfg.retries + 1):
            wait = self.cfg.backoff_s * 2**attempt
            try:
                response = await self.fetch_once(url)
            except BlockedAddress as e:
                return Reject("blocked_address", str(e))  # final: the address will not change by waiting
            except (TimeoutError, httpx.TimeoutException) as e:
                verdict = Reject("timeout", f"{type(e).__name__}: no response within {self.cfg.timeout_s}s")
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as e:
                verdict = Reject("connection_error", f"{type(e).__name__}: {e}")
            else:
                if isinstance(response, Reject) or not (response.status == 429 or response.status >= 500):
                    return response
                verdict = Reject("http_status", str(response.status))
                after = retry_after_s(dict((k.lower(), v) for k, v in response.headers).get("retry-after"))
                if after is not None:
                    wait = min(after, self.cfg.retry_after_cap_s)
            if attempt < self.cfg.retries:
                self.counters["retries"] += 1
                await asyncio.sleep(wait)
        return verdict

    async def fetch_once(self, url: str, any_type: bool = False) -> Response | Reject:
        """Return one GET of ``url``: the body is streamed, and only for a 2xx of a wanted type (any type for a sitemap)."""
        host = urlsplit(url).netloc
        async with self.host_slots[host]:
            await self.wait_turn(host)
            async with self.slots, asyncio.timeout(self.cfg.timeout_s) as deadline:
                self.counters["requests"] += 1
                async with self.client.stream("GET", url) as r:
                    response = Response(
                        url=url,
                        status=r.status_code,
                        reason=r.reason_phrase,
                        headers=list(r.headers.multi_items()),
                        fetched_at=utc_now(),
                    )
                    if not 200 <= r.status_code < 300:
                        await drain(r, deadline.when())
                        return response
                    response.content_type, response.charset = parse_content_type(r.headers.get("content-type", ""))
                    response.kind = kind_of(response.content_type, self.cfg)
                    if not response.kind and not any_type:
                        await drain(r, deadline.when())
                        return Reject("bad_content_type", response.content_type or "no Content-Type")
                    declared = r.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.cfg.max_bytes:
                        return Reject("too_large", f"Content-Length {declared} > max_bytes={self.cfg.max_bytes}")
                    try:
                        body = await read_body(r, self.cfg.max_bytes, self.counters)
                    except UnsupportedEncoding as e:
                        return Reject("undecodable", str(e))
                    if body is None:  # reading stopped there: the rest is never downloaded
                        return Reject("too_large", f"over max_bytes={self.cfg.max_bytes} while reading")
                    response.body = body
                    return response

    async def wait_turn(self, host: str) -> None:
        """Sleep until ``politeness_delay_s`` has passed since the last request to ``host`` started."""
        if self.cfg.politeness_delay_s <= 0:
            return
        loop = asyncio.get_running_loop()
        async with self.host_locks[host]:
            delay = self.host_next_start.get(host, 0.0) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.host_next_start[host] = loop.time() + self.cfg.politeness_delay_s

    async def robots_for(self, origin: str) -> RobotFileParser | None:
        """Return the robots rules of ``origin``, fetched on first use; None when robots are not respected."""
        if not self.cfg.respect_robots:
            return None
        async with self.robots_locks[origin]:
            if origin not in self.robots:
                self.robots[origin] = await self.fetch_robots(origin)
        return self.robots[origin]

    async def fetch_robots(self, origin: str) -> RobotFileParser:
        """Return the rules of ``origin``'s robots.txt (redirects followed, as RFC 9309 asks)."""
        host = urlsplit(origin).netloc
        self.counters["robots_fetched"] += 1
        try:
            async with self.host_slots[host]:
                await self.wait_turn(host)
                async with self.slots, asyncio.timeout(self.cfg.timeout_s):
                    async with self.client.stream("GET", origin + "/robots.txt", follow_redirects=True) as r:
                        self.robots_answered.add(origin)
                        decoder = BodyDecoder(r.headers.get("content-encoding", ""))
                        body = bytearray()
                        async for raw in r.aiter_raw():
                            body += decoder.decode(raw, MAX_ROBOTS_BYTES - len(body))
                            if len(body) >= MAX_ROBOTS_BYTES:  # RFC 9309 2.5: the rest may be ignored
                                break
                        return robots_rules(r.status_code, bytes(body).decode("utf-8", "replace"))
        except (TimeoutError, httpx.HTTPError, OSError, UnsupportedEncoding):
            return robots_rules(None)

    async def allowed(self, url: str) -> bool:
        """Return whether robots.txt lets this crawler fetch ``url``."""
        rules = await self.robots_for(origin_of(url))
        return rules is None or rules.can_fetch(self.cfg.user_agent, url)

    def reject(self, url: str, depth: int, reason: CrawlReason, detail: str) -> None:
        """Store ``url`` as rejected where it was discovered, without fetching it."""
        meta = {"depth": depth, "status": None, "redirected_to": []}
        doc = make_doc(url=url, source=source_for(url, self.cfg), meta=meta)
        self.frontier.reject_new(url, depth, reject_row(doc, STAGE, Reject(reason, detail)))

    def rejected_outcome(self, job: Job, chain: list[str], verdict: Reject, status: int | None = None, attempted: bool = True) -> Outcome:
        """Return the rejected row of ``job``, with the redirect hops it took and the final status, if one came."""
        meta = {"depth": job.depth, "status": status, "redirected_to": chain[1:]}
        doc = make_doc(url=job.url, source=source_for(job.url, self.cfg), meta=meta)
        return Outcome(reject_row(doc, STAGE, verdict), kept=False, hops=chain[1:], attempted=attempted)

    def stats(self, seconds: float) -> ShardStats:
        """Return the stats of the finished crawl, from its frontier: kept + rejected = every URL discovered."""
        totals = self.frontier.totals()
        assert totals["queued"] == 0 and totals["docs"] == totals["seen"] - totals["hops"], "every discovered URL ends as exactly one row"
        rejected = totals["docs"] - totals["kept"]
        return ShardStats(
            docs_in=totals["docs"],
            docs_kept=totals["kept"],
            docs_rejected=rejected,
            rejected_by_reason=totals["rejected_by_reason"],
            chars_out=totals["chars"],
            seconds=seconds,
            counters=dict(self.counters),
        )

    def write_progress(self, path: Path, seconds: float) -> None:
        """Write the live figures of the crawl (pages done, pages/s this session, rejections by reason) for the flow to log."""
        totals = self.frontier.totals()
        atomic_write_json(path, {
            "seconds": round(seconds, 3),
            "pages_done": totals["docs"],
            "pages_kept": totals["kept"],
            "queued": totals["queued"],
            "pages_per_s": round(self.fetched_this_session / seconds, 3) if seconds > 0 else 0.0,
            "bytes_fetched": int(self.counters.get("bytes_fetched", 0)),
            "rejected_by_reason": totals["rejected_by_reason"],
        })  # fmt: skip


async def drain(r: httpx.Response, deadline: float) -> None:
    """Read and drop the body of a response that is not kept, so that its keep-alive connection goes back to the pool.

    A response closed before its body ends closes its connection, and the next request to the host (the
    retry of a 429, a redirect's target, the first page after a 404 sitemap.xml) pays a new TCP (and TLS)
    handshake; on a busy server each of those is one more SYN in a listen queue that may be full. A body
    over ``DRAIN_BYTES``, broken, or not done within half the time left is cut instead: its status is
    already known, and it is all the crawl needs.
    """
    declared = r.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_BYTES:
        return
    loop = asyncio.get_running_loop()
    read = 0
    try:
        async with asyncio.timeout_at(loop.time() + (deadline - loop.time()) / 2):
            async for raw in r.aiter_raw():
                read += len(raw)
                if read > DRAIN_BYTES:
                    return
    except (TimeoutError, httpx.HTTPError):
        return


async def read_body(r: httpx.Response, max_bytes: int, counters: Counter[str]) -> bytes | None:
    """Return the decoded body of a streamed response, or None as soon as it passes ``max_bytes``.

    Raw chunks are decoded here, not by httpx, so that a gzip bomb is cut at ``max_bytes`` decoded
    bytes instead of one network read inflating a thousandfold; raises UnsupportedEncoding.
    """
    decoder = BodyDecoder(r.headers.get("content-encoding", ""))
    body = bytearray()
    async for raw in r.aiter_raw():
        counters["bytes_fetched"] += len(raw)
        body += decoder.decode(raw, max_bytes + 1 - len(body))
        if len(body) > max_bytes:
            return None
    body += decoder.flush(max_bytes + 1 - len(body))
    return None if len(body) > max_bytes else bytes(body)


def read_html(response: Response) -> tuple[str, str, list[str]]:
    """Return (text, charset, links) of an HTML response; raise ValueError when it cannot be decoded."""
    text, charset = decode_html(response.body, response.charset)
    return text, charset, extract_links(text, response.url)


def parse_content_type(value: str) -> tuple[str, str | None]:
    """Return (mime type, charset parameter) of a Content-Type header value.

    >>> parse_content_type('text/html; Charset="GBK"')
    ('text/html', 'GBK')
    """
    mime, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def kind_of(content_type: str, cfg: CrawlConfig) -> str:
    """Return how a content type is kept: html, pdf, image or file; empty when it is not wanted."""
    if content_type in cfg.html_types:
        return "html"
    if content_type in cfg.file_types:
        return "pdf" if content_type == "application/pdf" else "image" if content_type.startswith("image/") else "file"
    return ""


def retry_after_s(value: str | None) -> float | None:
    """Return the seconds a Retry-After header asks to wait (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def utc_now() -> str:
    """Return the current UTC time as ISO-8601 with a Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
