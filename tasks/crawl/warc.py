"""The crawl's WARC file: one gzip member per record, so a record is read back by seeking to its offset."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# The body we store is the decoded one (that is what max_bytes was enforced on, and what readers
# want), so the headers describing the wire encoding are replaced; the original Content-Encoding is
# kept under another name for provenance.
_WIRE_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


class WarcSink:
    """The single writer of one gzip WARC file; records are written whole, one after another."""

    def __init__(self, path: Path, software: str):
        self.path = path
        self._file = open(path, "wb")
        self._writer = WARCWriter(self._file, gzip=True)
        info = self._writer.create_warcinfo_record(path.name, {"software": software, "format": "WARC File Format 1.1"})
        self._writer.write_record(info)

    def write_response(
        self, url: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, fetched_at: str
    ) -> int:
        """Write one HTTP response record and return the byte offset it starts at."""
        kept = [(k, v) for k, v in headers if k.lower() not in _WIRE_HEADERS]
        kept += [("X-Original-Content-Encoding", v) for k, v in headers if k.lower() == "content-encoding"]
        kept.append(("Content-Length", str(len(body))))
        http_headers = StatusAndHeaders(f"{status} {reason}".strip(), kept, protocol="HTTP/1.1")
        record = self._writer.create_warc_record(
            url,
            "response",
            payload=BytesIO(body),
            length=len(body),
            http_headers=http_headers,
            warc_headers_dict={"WARC-Date": fetched_at},
        )
        offset = self._file.tell()
        self._writer.write_record(record)
        return offset

    def flush(self) -> None:
        """Hand what was written to the operating system, so a killed process leaves whole records behind."""
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_warc_body(warc_path: str | Path, offset: int) -> bytes:
    """Return the HTTP body of the WARC response record starting at ``offset``."""
    with open(warc_path, "rb") as f:
        f.seek(offset)
        for record in ArchiveIterator(f):
            if record.rec_type != "response":
                raise ValueError(f"{warc_path}@{offset} holds a {record.rec_type} record, not a response")
            return record.content_stream().read()
    raise ValueError(f"{warc_path}@{offset}: no WARC record there")
