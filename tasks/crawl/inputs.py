"""Corpus files as crawl input: WARC dumps, JSONL, Parquet and ``datasets`` folders, read as records.

``plan_inputs`` expands ``crawl.inputs`` (paths, globs, fsspec URLs) into ``InputChunk``s — one per
file, or per ~``chunk_bytes`` of an uncompressed JSONL (newline-aligned byte ranges), a Parquet file
(row-group ranges) or a local WARC (byte ranges cut where a record begins: a gzip member of a WARC.gz,
found by inflating the file once; a record header of a plain WARC, found by hopping Content-Lengths) —
and ``read_chunk`` streams one chunk as records: kept ones, and rejected ones with a reason, so every
record of the input is accounted for.

Not cut: a compressed JSONL (a gzip or zstd stream cannot be entered in the middle without inflating
everything before it, so N chunks would inflate the file N times over) and a remote WARC (finding its
record starts means downloading it once more). These are one task each; memory stays one shard of rows
whatever their size, since rows stream into shards committed as they fill. The shapes follow datatrove's readers
(``WarcReader``, ``JsonlReader``, ``ParquetReader`` over fsspec):

- WARC: ``response`` records only (``request``, ``metadata``, ``warcinfo``, ``revisit`` records are
  bookkeeping, counted in ``warc_records_skipped``, not documents). HTML is decoded with the crawler's
  rules (``charset.decode_html``: BOM, the HTTP ``Content-Type`` charset, then the page's ``<meta>``, then
  detection); PDFs and images are kept for OCR, their bytes copied into a WARC of the stage's own
  ``warc/`` folder so they are addressed (``meta.warc_file``/``warc_offset``) exactly as crawled ones;
  any other type is rejected. A WARC that ends inside a record (a cut gzip member, the usual damage of
  an interrupted download) yields its whole records and one ``truncated_input`` row for the rest.
- JSONL / Parquet / datasets: the configured text/id/url/source fields become the record's; other
  fields go into ``meta``. A text that looks like HTML is marked ``kind: html`` (extract turns it into
  main text); any other text is ``kind: text`` and goes past extraction unchanged.
"""

from __future__ import annotations

import glob as globlib
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from tasks.crawl.charset import decode_html
from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import kind_of, parse_content_type
from tasks.crawl.urls import source_for
from tasks.crawl.warc import WarcSink
from tasks.extract.stage import is_html_doc
from tasks.records import CORE_FIELDS, Doc, RecordError, Reject, coerce_doc, decode_line, doc_id, invalid_record, make_doc, reject_row, repair_text
from tasks.store import PROJECT_ROOT, resolve_data_path

InputFormat = Literal["warc", "jsonl", "parquet", "datasets"]

IngestReason = Literal[
    "invalid_record",  # a JSONL line or a row that is not a record, or whose text field is empty (records.py)
    "http_status",  # a WARC response record whose HTTP status is not 2xx
    "bad_content_type",  # a WARC response that is neither an HTML type nor a file type
    "undecodable",  # an HTML body that is binary or that no charset decodes
    "too_large",  # a WARC body over max_bytes
    "truncated_input",  # the input ends inside a record (a cut gzip member or WARC record): the rest is unreadable
]

STAGE = "crawl"
READ_BATCH = 1024  # Parquet / datasets rows converted at a time: memory per task stays a batch, not a file
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# fsspec protocol -> the liandan extra that installs its backend
EXTRAS = {"s3": "s3", "s3a": "s3", "hf": "hf", "http": "http", "https": "http"}
SUFFIXES: dict[str, InputFormat] = {
    ".warc": "warc", ".warc.gz": "warc", ".arc.gz": "warc",
    ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".jsonl.zst": "jsonl", ".json": "jsonl", ".json.gz": "jsonl",
    ".json.zst": "jsonl", ".ndjson": "jsonl", ".ndjson.gz": "jsonl", ".ndjson.zst": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
DATASETS_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")  # what save_to_disk writes


class InputError(ValueError):
    """An input that cannot be read at all (no such file, no backend for its URL, an unknown format): the message says why."""


@dataclass(frozen=True)
class InputChunk:
    """One task's share of the inputs: a whole file, or a byte range (JSONL) or row-group range (Parquet) of one."""

    url: str  # fsspec URL, protocol included (file:///abs/path for local files)
    format: InputFormat
    fingerprint: str  # size and modification time (or ETag) when planned: a changed file is read again
    start: int = 0  # JSONL, WARC: first byte; Parquet: first row group
    stop: int = -1  # JSONL, WARC: byte after the last; Parquet: row group after the last; -1: to the end
    size: int = 0  # bytes of the file (compressed size for compressed files)

    @property
    def key(self) -> str:
        """The chunk's name in shard and done-record names: a hash of its URL and range."""
        return hashlib.sha256(f"{self.url}|{self.start}|{self.stop}".encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        """A short readable label: file name and range."""
        tail = self.url.rstrip("/").rsplit("/", 1)[-1]
        return tail if (self.start, self.stop) == (0, -1) else f"{tail}[{self.start}:{self.stop}]"


def filesystem(url: str):
    """Return (fsspec filesystem, path) of ``url``; raise InputError naming the extra when its backend is missing."""
    import fsspec

    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:
        extra = EXTRAS.get(protocol)
        hint = f"install the `{extra}` extra: pip install 'liandan[{extra}]'" if extra else "install the fsspec backend for it"
        raise InputError(f"{url}: reading {protocol}:// needs a backend that is not installed; {hint} ({e})") from None
    except ValueError as e:
        raise InputError(f"{url}: {e}") from None


def local_pattern(pattern: str) -> str:
    """Return a relative local path or glob as given when it names something in the working directory, else under the
    project folder (as ``resolve_data_path`` does for every bundled file), so a recipe's ``data/sample/…`` input is found
    from any working directory, e.g. a Prefect worker started elsewhere; URLs and absolute paths are returned as given."""
    if "://" in pattern or Path(pattern).expanduser().is_absolute():
        return pattern
    if globlib.has_magic(pattern):
        return pattern if globlib.glob(pattern) or not globlib.glob(str(PROJECT_ROOT / pattern)) else str(PROJECT_ROOT / pattern)
    return str(resolve_data_path(pattern))


def plan_inputs(cfg: CrawlConfig) -> list[InputChunk]:
    """Return the chunks of every input file ``cfg.inputs`` names, in the order given (globs sorted)."""
    chunks: list[InputChunk] = []
    for pattern in cfg.inputs:
        fs, path = filesystem(local_pattern(pattern))
        paths = sorted(fs.glob(path)) if globlib.has_magic(path) else [path]
        if not paths:
            raise InputError(f"{pattern}: no file matches")
        for p in paths:
            if not fs.exists(p):
                raise InputError(f"{pattern}: no such file or folder")
            info = fs.info(p)
            fmt = cfg.input_format if cfg.input_format != "auto" else detect_format(fs, p, info)
            size = int(info.get("size") or 0)
            stamp = info.get("mtime") or info.get("ETag") or info.get("LastModified") or info.get("last_modified") or ""
            chunk = InputChunk(url=fs.unstrip_protocol(p), format=fmt, fingerprint=f"{size}:{stamp}", size=size)
            chunks.extend(split_chunk(fs, p, chunk, cfg.chunk_bytes))
    return chunks


def split_chunk(fs, path: str, chunk: InputChunk, chunk_bytes: int) -> list[InputChunk]:
    """Return ``chunk`` cut into pieces of about ``chunk_bytes``: plain JSONL by byte ranges, Parquet by row groups, a local WARC at record starts."""
    if chunk.size <= chunk_bytes:
        return [chunk]
    if chunk.format == "warc":
        if not chunk.url.startswith("file://"):
            return [chunk]
        with fs.open(path, "rb") as f:
            cuts = warc_cuts(f, chunk.size, chunk_bytes)
        edges = [0, *cuts, -1]
        return [InputChunk(chunk.url, "warc", chunk.fingerprint, a, b, chunk.size) for a, b in zip(edges, edges[1:])]
    if chunk.format == "jsonl":
        with fs.open(path, "rb") as f:
            if f.read(4)[:2] in (GZIP_MAGIC, ZSTD_MAGIC[:2]):
                return [chunk]  # a compressed stream cannot be entered in the middle
        edges = list(range(0, chunk.size, chunk_bytes)) + [chunk.size]
        return [InputChunk(chunk.url, "jsonl", chunk.fingerprint, a, b, chunk.size) for a, b in zip(edges, edges[1:])]
    if chunk.format == "parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        pieces, first, acc = [], 0, 0
        for g in range(meta.num_row_groups):
            acc += meta.row_group(g).total_byte_size
            if acc >= chunk_bytes:
                pieces.append((first, g + 1))
                first, acc = g + 1, 0
        if first < meta.num_row_groups or not pieces:
            pieces.append((first, meta.num_row_groups))
        return [InputChunk(chunk.url, "parquet", chunk.fingerprint, a, b, chunk.size) for a, b in pieces]
    return [chunk]


def warc_cuts(f: BinaryIO, size: int, chunk_bytes: int) -> list[int]:
    """Return the offsets, about ``chunk_bytes`` apart, where a WARC file can be cut: each the start of a record.

    A WARC.gz is cut at gzip member starts (one record per member, as WARC writers and Common Crawl
    make them); a member start is only taken when it inflates to ``WARC/``, so a file gzipped whole, or
    in blocks that split records (bgzip), is not cut. A plain WARC is cut at the record headers found by
    hopping from each header over its Content-Length. A file damaged part-way is cut before the damage.
    """
    head = f.read(2)
    f.seek(0)
    starts = gzip_member_starts(f) if head == GZIP_MAGIC else plain_warc_starts(f, size)
    cuts, want = [], chunk_bytes
    for start in starts:
        if start >= want and start < size:
            cuts.append(start)
            want = start + chunk_bytes
    if head == GZIP_MAGIC and not all(inflates_to_warc(f, cut) for cut in cuts):  # (after the scan: this moves f)
        return []
    return cuts


def gzip_member_starts(f: BinaryIO) -> Iterator[int]:
    """Yield the offset of every gzip member after the first, inflating the file once (output dropped as it comes)."""
    import zlib

    f.seek(0)
    inflater, consumed = zlib.decompressobj(31), 0  # consumed: compressed bytes fed to finished members and this one
    while block := f.read(1 << 20):
        data = block
        while data:
            try:
                inflater.decompress(data, 1 << 20)
            except zlib.error:  # damage: no member start can be trusted past it
                return
            if inflater.eof:
                consumed += len(data) - len(inflater.unused_data)
                data = inflater.unused_data
                yield consumed
                inflater = zlib.decompressobj(31)
            else:
                consumed += len(data) - len(inflater.unconsumed_tail)
                data = inflater.unconsumed_tail


def inflates_to_warc(f: BinaryIO, offset: int) -> bool:
    """Return whether the gzip member at ``offset`` begins a WARC record."""
    import zlib

    f.seek(offset)
    try:
        return zlib.decompressobj(31).decompress(f.read(1 << 16), 16).startswith(b"WARC/")
    except zlib.error:
        return False


def plain_warc_starts(f: BinaryIO, size: int) -> Iterator[int]:
    """Yield the offset of every record header of an uncompressed WARC after the first, hopping over Content-Lengths."""
    position = 0
    while position < size:
        f.seek(position)
        head = f.read(1 << 16)
        stripped = head.lstrip(b"\r\n")  # the blank lines that end the record before
        position += len(head) - len(stripped)
        end = stripped.find(b"\r\n\r\n")
        if not stripped.startswith(b"WARC/") or end < 0:
            return
        if position > 0:
            yield position
        length = next((line.split(b":", 1)[1].strip() for line in stripped[:end].split(b"\r\n") if line.lower().startswith(b"content-length:")), b"")
        if not length.isdigit():
            return
        position += end + 4 + int(length)


class Window:
    """Bytes ``start`` to ``stop`` of a file, read as a stream whose ``tell`` is the file's offset (what warcio reports)."""

    def __init__(self, f: BinaryIO, start: int, stop: int):
        f.seek(start)
        self.f = f
        self.position = start
        self.stop = stop

    def read(self, n: int = -1) -> bytes:
        left = self.stop - self.position if self.stop >= 0 else -1
        data = self.f.read(n if left < 0 else min(left, n) if n >= 0 else left)
        self.position += len(data)
        return data

    def tell(self) -> int:
        return self.position


def detect_format(fs, path: str, info: dict) -> InputFormat:
    """Return an input's format: a folder ``save_to_disk`` wrote, else by the first bytes (decompressed), else by the suffix."""
    if info.get("type") == "directory":
        if any(fs.exists(f"{path.rstrip('/')}/{m}") for m in DATASETS_MARKERS):
            return "datasets"
        raise InputError(f"{path}: a folder, but not one `datasets` save_to_disk wrote (none of {', '.join(DATASETS_MARKERS)})")
    with fs.open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head == b"PAR1":
            return "parquet"
        with decompressed(f) as stream:
            first = stream.read(64)
    if first.startswith(b"WARC/"):
        return "warc"
    if first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "jsonl"
    name = path.lower()
    for suffix, fmt in sorted(SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    raise InputError(f"{path}: cannot tell its format (starts with {first[:16]!r}); set crawl.input_format")


@contextmanager
def decompressed(raw: BinaryIO) -> Iterator[BinaryIO]:
    """Yield ``raw`` decompressed by its magic number (gzip, zstd) or as it is; ``raw`` must be at its start."""
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == GZIP_MAGIC:
        with gzip.GzipFile(fileobj=raw) as g:
            yield g
    elif head == ZSTD_MAGIC:
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as z:
            yield io.BufferedReader(z, 1 << 20)
    else:
        yield raw


# --- reading one chunk ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One record read from an input: kept, or rejected (``doc`` is then the rejected row, with its reason)."""

    doc: Doc
    kept: bool = True


def rejected(doc: Doc, reason: IngestReason, detail: str) -> Row:
    """Return the rejected row of ``doc``."""
    return Row(reject_row(doc, STAGE, Reject(reason, detail)), kept=False)


def quarantined(chunk: InputChunk, where: str, raw: str, error: str) -> Row:
    """Return the ``invalid_record`` row of one bad line or row (records.py's shape: the raw text kept)."""
    return Row(invalid_record(chunk.url, where, raw, error), kept=False)


def unreadable_tail(chunk: InputChunk, where: str, detail: str) -> Row:
    """Return the one ``truncated_input`` row that stands for the unreadable rest of an input."""
    row = {"id": doc_id(f"{chunk.url}:{where}"), "source": "", "url": "", "text": "", "meta": {"input": chunk.url, "where": where}}
    return rejected(row, "truncated_input", f"{where}: {detail}")


class BinarySink:
    """The WARC that kept PDFs and images of one input chunk are copied into, opened on the first one."""

    def __init__(self, path, software: str):
        self.path = path
        self.software = software
        self.sink: WarcSink | None = None

    def write(self, url: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, fetched_at: str) -> int:
        if self.sink is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.sink = WarcSink(self.path, software=self.software)
        return self.sink.write_response(url, status, reason, headers, body, fetched_at)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def read_chunk(chunk: InputChunk, cfg: CrawlConfig, binaries: BinarySink, counters: dict[str, int]) -> Iterator[Row]:
    """Yield every record of one chunk as a Row; ``counters`` gathers bytes read and records skipped."""
    fs, path = filesystem(chunk.url)
    if chunk.format == "warc":
        yield from read_warc(fs, path, chunk, cfg, binaries, counters)
    elif chunk.format == "jsonl":
        yield from read_jsonl_chunk(fs, path, chunk, cfg, counters)
    elif chunk.format == "parquet":
        yield from read_parquet(fs, path, chunk, cfg, counters)
    else:
        yield from read_datasets(chunk, cfg, counters)


def read_warc(fs, path: str, chunk: InputChunk, cfg: CrawlConfig, binaries: BinarySink, counters: dict[str, int]) -> Iterator[Row]:
    """Yield the ``response`` records of a WARC (or WARC.gz) file's byte range as rows; a cut or broken tail becomes one ``truncated_input`` row."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    end = chunk.start  # where the last whole record read ends
    last = chunk.stop if chunk.stop >= 0 else chunk.size
    with fs.open(path, "rb") as f:
        archive = ArchiveIterator(Window(f, chunk.start, chunk.stop))
        records = iter(archive)
        while True:
            try:
                record = next(records, None)
            except (ArchiveLoadFailed, AttributeError, ValueError, EOFError, OSError) as e:  # warcio on a header cut mid-way
                yield unreadable_tail(chunk, f"bytes {end}-{last} of {chunk.name}", f"no whole WARC record there ({type(e).__name__})")
                return
            if record is None:
                break
            if record.rec_type is None:  # blank lines between records
                continue
            if record.rec_type != "response" or record.http_headers is None:
                counters[f"warc_records_skipped.{record.rec_type}"] = counters.get(f"warc_records_skipped.{record.rec_type}", 0) + 1
                end = archive.get_record_offset() + archive.get_record_length()
                continue
            body = read_up_to(record.content_stream(), cfg.max_bytes + 1)
            limit = getattr(record.raw_stream, "limit", None)  # bytes of the record's Content-Length not read
            url = repair_text(record.rec_headers.get_header("WARC-Target-URI") or "")[0]
            fetched_at = record.rec_headers.get_header("WARC-Date") or ""
            status = int(record.http_headers.get_statuscode() or 0)
            content_type, charset = parse_content_type(record.http_headers.get_header("Content-Type") or "")
            offset = archive.get_record_offset()  # (warcio reads the record to its end here: only after the body)
            meta = {"input": chunk.url, "warc_record_offset": offset, "status": status, "fetched_at": fetched_at, "content_type": content_type}
            doc = make_doc(url=url, source=source_for(url, cfg) if url else cfg.default_source, meta=meta)
            if len(body) <= cfg.max_bytes and (limit is None or limit > 0):  # the member ended before its Content-Length
                yield rejected(doc, "truncated_input", f"record at byte {offset} of {chunk.name} is cut short")
                return
            end = archive.get_record_offset() + archive.get_record_length()
            yield warc_row(doc, record, body, status, content_type, charset, cfg, binaries, counters)
        if last and end < last:
            f.seek(end)
            rest = f.read(min(last - end, 64))
            if len(rest) == last - end and not rest.strip(b"\r\n"):  # a plain WARC's last record ends with a blank line
                return
            yield unreadable_tail(chunk, f"bytes {end}-{last} of {chunk.name}", "no whole WARC record there (a cut gzip member)")


def read_up_to(stream: BinaryIO, n: int) -> bytes:
    """Return the next ``n`` bytes of ``stream`` (fewer only at its end): one read may return less than asked."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, 1 << 20))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def warc_row(doc: Doc, record, body: bytes, status: int, content_type: str, charset: str | None, cfg: CrawlConfig, binaries: BinarySink, counters: dict[str, int]) -> Row:
    """Return the row of one WARC response: decoded HTML, a PDF or image copied for OCR, or a rejection."""
    counters["bytes_read"] = counters.get("bytes_read", 0) + len(body)
    if not 200 <= status < 300:
        return rejected(doc, "http_status", str(status))
    kind = kind_of(content_type, cfg)
    if not kind:
        return rejected(doc, "bad_content_type", content_type or "no Content-Type")
    if len(body) > cfg.max_bytes:
        return rejected(doc, "too_large", f"body over max_bytes={cfg.max_bytes}")
    meta = {**doc["meta"], "kind": kind, "bytes": len(body)}
    if kind == "html":
        try:
            text, decoded_as = decode_html(body, charset)
        except ValueError as e:
            return rejected(doc, "undecodable", str(e))
        counters["html_pages"] = counters.get("html_pages", 0) + 1
        return Row({**doc, "text": repair_text(text)[0], "meta": {**meta, "charset": decoded_as}})
    reason = record.http_headers.statusline.partition(" ")[2]
    offset = binaries.write(doc["url"], status, reason, list(record.http_headers.headers), body, meta["fetched_at"])
    counters["files"] = counters.get("files", 0) + 1
    return Row({**doc, "meta": {**meta, "warc_file": binaries.path.name, "warc_offset": offset}})


def read_jsonl_chunk(fs, path: str, chunk: InputChunk, cfg: CrawlConfig, counters: dict[str, int]) -> Iterator[Row]:
    """Yield the lines of a JSONL file (gzip or zstd by magic number), or of one byte range of a plain one, as rows."""
    with ExitStack() as stack:
        raw = stack.enter_context(fs.open(path, "rb"))
        if chunk.start > 0:
            raw.seek(chunk.start - 1)
            raw.readline()  # the line that began before this range belongs to the previous chunk
        stream = stack.enter_context(decompressed(raw)) if chunk.start == 0 else raw
        position, n = raw.tell() if chunk.start > 0 else 0, 0
        while chunk.stop < 0 or position < chunk.stop:
            try:
                line = stream.readline()
            except (EOFError, OSError, ValueError) as e:  # a gzip/zstd stream cut short, or corrupt
                yield unreadable_tail(chunk, f"after line {n} of {chunk.name}", f"{type(e).__name__}: {e}")
                return
            if not line:
                break
            n += 1
            position += len(line)
            counters["bytes_read"] = counters.get("bytes_read", 0) + len(line)
            if not line.strip():
                continue
            where = f"line {n}" if chunk.start == 0 else f"line at byte {position - len(line)}"
            yield jsonl_row(line, where, chunk, cfg)


def jsonl_row(line: bytes, where: str, chunk: InputChunk, cfg: CrawlConfig) -> Row:
    """Return the row of one JSONL line: a record, or ``invalid_record`` naming what is wrong with it."""
    text, flags = decode_line(line)
    text = text.removeprefix("\ufeff").rstrip("\r\n")
    try:
        value = json.loads(text, strict=False)
    except json.JSONDecodeError as e:
        return quarantined(chunk, where, text, f"{e.msg} at column {e.colno}")
    except (ValueError, RecursionError) as e:
        return quarantined(chunk, where, text, f"not a JSON value: {type(e).__name__}")
    return mapped_row(value, where, chunk, cfg, raw=text, flags=[f"line:{f}" for f in flags])


def mapped_row(value, where: str, chunk: InputChunk, cfg: CrawlConfig, raw: str, flags: list[str] = ()) -> Row:
    """Return the row of one JSON object or table row: the configured fields mapped onto the record's, the rest in ``meta``."""
    if not isinstance(value, dict):
        return quarantined(chunk, where, raw, f"a record must be an object, got {type(value).__name__}")
    names = {cfg.text_field: "text", cfg.id_field: "id", cfg.url_field: "url", cfg.source_field: "source"}
    row: dict = {}
    extra: dict = {}
    for key, field_value in value.items():
        if key in names:
            row[names[key]] = field_value
        elif key == "meta":
            row["meta"] = field_value
        else:
            extra[f"{key}_" if key in CORE_FIELDS else key] = field_value  # an unmapped "text" must not pose as the text
    if not row.get("text") and not row.get("url"):
        return quarantined(chunk, where, raw, f"field '{cfg.text_field}' is missing or empty")
    try:
        doc = coerce_doc({**row, **extra}, flags=flags)
    except RecordError as e:
        return quarantined(chunk, where, raw, str(e))
    meta = doc["meta"]
    for key in [k for k in doc if k not in CORE_FIELDS]:
        meta.setdefault(key, doc.pop(key))
    if not row.get("source"):
        doc["source"] = source_for(doc["url"], cfg) if doc["url"] else cfg.default_source
    if not row.get("id"):
        doc["id"] = doc_id(doc["url"] or doc["text"])
    if "kind" not in meta:
        meta["kind"] = "html" if is_html_doc({"text": doc["text"], "meta": {}}) else "text"
    if meta["kind"] not in ("pdf", "image") and not doc["text"].strip():
        return quarantined(chunk, where, raw, f"field '{cfg.text_field}' is missing or empty")
    meta.setdefault("input", chunk.url)
    return Row(doc)


def read_parquet(fs, path: str, chunk: InputChunk, cfg: CrawlConfig, counters: dict[str, int]) -> Iterator[Row]:
    """Yield the rows of a Parquet file's row-group range as rows, a batch at a time."""
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        if cfg.text_field not in pf.schema_arrow.names:
            raise InputError(f"{chunk.url}: no column {cfg.text_field!r} (columns: {', '.join(pf.schema_arrow.names)}); set crawl.text_field")
        stop = pf.metadata.num_row_groups if chunk.stop < 0 else chunk.stop
        groups = list(range(chunk.start, stop))
        n = sum(pf.metadata.row_group(g).num_rows for g in range(chunk.start))
        counters["bytes_read"] = counters.get("bytes_read", 0) + sum(pf.metadata.row_group(g).total_byte_size for g in groups)
        for batch in pf.iter_batches(batch_size=READ_BATCH, row_groups=groups):
            for value in batch.to_pylist():
                yield table_row(value, f"row {n}", chunk, cfg)
                n += 1


def read_datasets(chunk: InputChunk, cfg: CrawlConfig, counters: dict[str, int]) -> Iterator[Row]:
    """Yield the rows of a ``datasets`` folder (a Dataset, or every split of a DatasetDict) as rows, memory-mapped."""
    from datasets import Dataset, load_from_disk

    loaded = load_from_disk(chunk.url)
    splits = {"": loaded} if isinstance(loaded, Dataset) else dict(loaded)
    for split, ds in splits.items():
        if cfg.text_field not in ds.column_names:
            raise InputError(f"{chunk.url}: no column {cfg.text_field!r} (columns: {', '.join(ds.column_names)}); set crawl.text_field")
        counters["bytes_read"] = counters.get("bytes_read", 0) + int(ds.data.nbytes)
        n = 0
        for batch in ds.iter(batch_size=READ_BATCH):
            for i in range(len(batch[cfg.text_field])):
                value = {k: v[i] for k, v in batch.items()}
                row = table_row(value, f"{split + ' ' if split else ''}row {n}", chunk, cfg)
                if split and row.kept:
                    row.doc["meta"].setdefault("split", split)
                yield row
                n += 1


def table_row(value: dict, where: str, chunk: InputChunk, cfg: CrawlConfig) -> Row:
    """Return the row of one Parquet or datasets row (its quarantined form shows the row as JSON)."""
    return mapped_row(value, where, chunk, cfg, raw=json.dumps(value, ensure_ascii=False, default=str)[:4096])
