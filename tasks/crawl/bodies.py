"""Content-Encoding decoding that never produces more than it is asked for.

httpx decodes gzip a network read at a time, and a 64 KiB read of a gzip bomb is 64 MiB decoded: a
256 MB bomb held 149 MB in memory before the crawler could check ``max_bytes`` (measured in
tests/test_crawl_faults.py). Here zlib is told the most output it may return, so the body of one
request never holds more than ``max_bytes`` plus one byte.
"""

from __future__ import annotations

import zlib

ACCEPT_ENCODING = "gzip, deflate"  # what BodyDecoder decodes: asking for br or zstd would bring bodies it cannot


class UnsupportedEncoding(ValueError):
    """A Content-Encoding the crawler did not ask for and cannot decode."""


class BodyDecoder:
    """Decodes one response body, chunk by chunk, returning at most ``limit`` bytes per call."""

    def __init__(self, content_encoding: str):
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise UnsupportedEncoding(f"Content-Encoding {content_encoding!r}")
        self.coding = codings[0] if codings else ""
        self.first = True
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(self.coding)
        self.zlib = zlib.decompressobj(wbits) if wbits else None

    def decode(self, data: bytes, limit: int) -> bytes:
        """Return the decoded bytes of the next raw chunk, at most ``limit`` of them (the rest comes on the next call).

        >>> BodyDecoder("gzip").decode(__import__("gzip").compress(bytes(10_000)), limit=100) == bytes(100)
        True
        """
        if limit <= 0:  # zlib reads a max_length of 0 as no limit at all
            return b""
        if self.zlib is None:
            return data[:limit]
        data = self.zlib.unconsumed_tail + data  # input zlib left unread when it reached the last call's limit
        if self.first and self.coding == "deflate":
            self.first = False
            try:  # RFC 9110 says zlib-wrapped; some servers send raw deflate, as browsers accept
                return self.zlib.decompress(data, limit)
            except zlib.error:
                self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            return self.zlib.decompress(data, limit)
        except zlib.error as e:
            raise UnsupportedEncoding(f"broken {self.coding} body: {e}") from e

    def flush(self, limit: int) -> bytes:
        """Return what the decoder still holds once the raw body has ended, at most ``limit`` bytes."""
        if self.zlib is None or limit <= 0:
            return b""
        try:
            out = self.zlib.decompress(self.zlib.unconsumed_tail, limit)
            return out if len(out) >= limit else out + self.zlib.flush()[: limit - len(out)]
        except zlib.error as e:
            raise UnsupportedEncoding(f"broken {self.coding} body: {e}") from e
