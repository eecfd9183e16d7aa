"""The crawl stage's one config model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tasks.crawl.addresses import parse_network

HttpUrl = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-]+$", max_length=253)]
PathPrefix = Annotated[str, Field(pattern=r"^/", max_length=1024)]
SourceName = Annotated[str, Field(min_length=1, max_length=64)]
MimeType = Annotated[str, Field(pattern=r"^[a-z0-9.+\-]+/[a-z0-9.+\-]+$", max_length=128)]
InputPath = Annotated[str, Field(min_length=1, max_length=4096)]
FieldName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length=128)]


def _network(value: str) -> str:
    parse_network(value)  # raises ValueError with the spelling to use
    return value


NetworkName = Annotated[str, Field(pattern=r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$", max_length=64), AfterValidator(_network)]


class CrawlConfig(BaseModel):
    """Crawl: which sites to fetch from which seeds, how far, how fast and how politely; and which corpus files to read.

    Every fetched page or file lands in a WARC file; HTML is decoded to text, PDFs and images are
    kept as raw bytes for OCR. Every URL discovered ends as a kept or a rejected row with a reason.
    Input files (WARC dumps, JSONL, Parquet, ``datasets`` folders) are read one task per file or chunk;
    every record in them ends as a kept or a rejected row too.
    """

    model_config = ConfigDict(extra="forbid")

    seeds: list[HttpUrl] = Field(
        default_factory=list, max_length=100_000, description="Start URLs (http or https); depth 0 of the crawl. May be empty when inputs are given."
    )
    inputs: list[InputPath] = Field(
        default_factory=list,
        max_length=100_000,
        description="Corpus files read besides (or instead of) crawling: paths, globs or fsspec URLs (`file://`; `s3://`, "
        "`hf://`, `https://` with the s3, hf or http extra) of WARC / WARC.gz dumps, JSONL (.gz, .zst), Parquet files or "
        "`datasets` folders (save_to_disk).",
    )
    input_format: Literal["auto", "warc", "jsonl", "parquet", "datasets"] = Field(
        "auto", description="Format of every input; auto tells each file by its first bytes, then by its suffix."
    )
    text_field: FieldName = Field("text", description="Field (JSONL key or column) holding a record's text in JSONL, Parquet and datasets inputs.")
    id_field: FieldName = Field("id", description="Field holding a record's id; a record without one gets the hash of its URL, else of its text.")
    url_field: FieldName = Field("url", description="Field holding a record's URL (may be absent).")
    source_field: FieldName = Field(
        "source", description="Field holding a record's source name; without one, the URL's path prefix (sources), else default_source."
    )
    chunk_bytes: int = Field(
        256_000_000,
        ge=1_000_000,
        le=1_000_000_000_000,
        description="An uncompressed JSONL, a Parquet file or a local WARC larger than this is read as several tasks of about "
        "this size (Parquet by row groups, a WARC at record starts); compressed JSONL, remote WARCs and datasets folders are one task per file.",
    )
    allowed_domains: list[HostName] = Field(
        default_factory=list,
        max_length=10_000,
        description="Extra hosts to follow links into, beyond the seeds' own hosts; each also admits its subdomains.",
    )
    allowed_networks: list[NetworkName] = Field(
        default_factory=list,
        max_length=1_000,
        description="Loopback, private or link-local networks the crawl may connect to (127.0.0.1/32 for a site served "
        "on this machine); any other non-public address a host resolves to is refused as blocked_address (SSRF).",
    )
    max_depth: int = Field(3, ge=0, le=100, description="Links followed from a seed; 0 fetches the seeds only.")
    max_pages: int = Field(
        200, ge=1, le=100_000_000, description="Most URLs fetched in one crawl; later ones are rejected as page_limit."
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once, over all hosts.")
    per_host_concurrency: int = Field(2, ge=1, le=128, description="Requests in flight at once to one host.")
    politeness_delay_s: float = Field(
        0.0, ge=0.0, le=60.0, description="Seconds between the starts of two requests to one host."
    )
    timeout_s: float = Field(
        10.0, gt=0.0, le=600.0, description="Seconds one request may take, headers and body together."
    )
    retries: int = Field(
        2, ge=0, le=10, description="Extra attempts after a 5xx, a 429, a timeout or a connection error."
    )
    backoff_s: float = Field(
        0.5, ge=0.0, le=60.0, description="First retry waits this long; each further retry waits twice as long."
    )
    retry_after_cap_s: float = Field(
        30.0, ge=0.0, le=600.0, description="Longest wait a server's Retry-After header may impose on one retry."
    )
    max_redirects: int = Field(5, ge=0, le=30, description="Redirect hops followed before a URL is rejected.")
    max_bytes: int = Field(
        5_000_000,
        ge=1_024,
        le=2_000_000_000,
        description="Largest body kept, in bytes after content decoding; reading stops past it (too_large).",
    )
    read_sitemaps: bool = Field(
        True, description="Read each seed host's sitemaps (robots.txt `Sitemap:` lines, else /sitemap.xml); their URLs are depth 1."
    )
    respect_robots: bool = Field(True, description="Fetch robots.txt once per host and skip the paths it disallows.")
    user_agent: str = Field(
        "liandan-crawler/0.1 (+https://github.com/liandan)",
        min_length=1,
        max_length=256,
        description="User-Agent header sent with every request, and the agent robots.txt rules are matched for.",
    )
    sources: dict[PathPrefix, SourceName] = Field(
        default_factory=lambda: {"/news/": "news", "/forum/": "forum", "/shop/": "product", "/docs/": "docs"},
        max_length=1_000,
        description="URL path prefix -> source name (the unit of mixture weighting); the longest matching prefix wins.",
    )
    default_source: str = Field(
        "web", min_length=1, max_length=64, description="Source of a URL whose path matches no prefix in sources."
    )
    html_types: list[MimeType] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        max_length=64,
        description="Content types decoded as HTML and searched for links.",
    )
    file_types: list[MimeType] = Field(
        default_factory=lambda: ["application/pdf", "image/png", "image/jpeg", "image/webp"],
        max_length=64,
        description="Content types kept as raw bytes (for OCR), without link extraction; any other type is rejected.",
    )
