"""By-hand benchmark: our main-text extractor against trafilatura on the bundled sample site.

    PYTHONPATH=. python benchmarks/extract_vs_trafilatura.py [--sample data/sample] [--favor-precision] [--show]

Every page ``<sample>/site/**/*.html`` that has a gold file ``<sample>/gold/<relative path>.txt``
(the title line, then one paragraph per line) is decoded with the crawler's charset rules and
extracted by both. The score is character-level F1 over Han characters, letters and digits: the
multiset overlap of the extracted text's characters with the gold's, whitespace and punctuation
ignored, so line breaking and full-/half-width punctuation do not count, missing or extra text does.
trafilatura gets its own extracted title prepended, since the gold starts with the title.
Timing is per page, extraction only (decoding is shared), median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from tasks.crawl.charset import decode_html
from tasks.extract import ExtractConfig, extract_main_text


@dataclass
class Score:
    precision: float
    recall: float
    f1: float


def char_f1(predicted: str, gold: str) -> Score:
    """Return precision, recall and F1 of the multiset of Han/letter/digit characters."""
    pred = Counter(c for c in predicted if c.isalnum())
    ref = Counter(c for c in gold if c.isalnum())
    overlap = sum((pred & ref).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(ref.values()) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1)


def gold_path(sample: Path, rel: Path) -> Path | None:
    """Return the gold file of a page (``a/b.html.txt`` or ``a/b.txt``), or None."""
    for candidate in (sample / "gold" / f"{rel}.txt", (sample / "gold" / rel).with_suffix(".txt")):
        if candidate.is_file():
            return candidate
    return None


def ours(html: str, cfg: ExtractConfig) -> str:
    return extract_main_text(html, cfg).text


def theirs(html: str, favor_precision: bool) -> str:
    doc = trafilatura.bare_extraction(
        html, include_comments=False, include_tables=True, favor_precision=favor_precision, with_metadata=True
    )
    if doc is None:
        return ""
    return "\n".join(part for part in (doc.title, doc.text) if part)


def timed(fn, repeat: int) -> tuple[str, float]:
    """Return fn()'s result and its median wall time in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return out, statistics.median(times)


def show_diff(predicted: str, gold: str) -> None:
    """Print the gold lines we missed and the lines we added."""
    pred_lines, gold_lines = predicted.split("\n"), gold.split("\n")
    for line in gold_lines:
        if line not in pred_lines:
            print(f"      - {line}")
    for line in pred_lines:
        if line not in gold_lines:
            print(f"      + {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=Path("data/sample"))
    parser.add_argument("--favor-precision", action="store_true", help="trafilatura's favor_precision")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per page")
    parser.add_argument("--show", action="store_true", help="print missed (-) and extra (+) lines of ours")
    args = parser.parse_args()

    cfg = ExtractConfig()
    site = args.sample / "site"
    pages = sorted(site.rglob("*.html"))
    if not pages:
        raise SystemExit(f"no pages under {site}")
    rows = []
    print(f"{'page':<44} {'ours F1':>7} {'P':>5} {'R':>5} {'ms':>6} | {'traf F1':>7} {'P':>5} {'R':>5} {'ms':>6}")
    for path in pages:
        rel = path.relative_to(site)
        gold_file = gold_path(args.sample, rel)
        if gold_file is None:
            continue
        html, _ = decode_html(path.read_bytes(), None)
        gold = gold_file.read_text(encoding="utf-8").strip()
        our_text, our_ms = timed(lambda: ours(html, cfg), args.repeat)
        their_text, their_ms = timed(lambda: theirs(html, args.favor_precision), args.repeat)
        a, b = char_f1(our_text, gold), char_f1(their_text, gold)
        rows.append((a, our_ms, b, their_ms))
        print(
            f"{str(rel):<44} {a.f1:7.3f} {a.precision:5.2f} {a.recall:5.2f} {our_ms:6.1f} |"
            f" {b.f1:7.3f} {b.precision:5.2f} {b.recall:5.2f} {their_ms:6.1f}"
        )
        if args.show and a.f1 < 1.0:
            show_diff(our_text, gold)
    if not rows:
        raise SystemExit(f"no page under {site} has a gold file under {args.sample / 'gold'}")

    def mean(values) -> float:
        return sum(values) / len(rows)

    print("-" * 100)
    print(
        f"{'macro average over ' + str(len(rows)) + ' pages':<44}"
        f" {mean(r[0].f1 for r in rows):7.3f} {mean(r[0].precision for r in rows):5.2f}"
        f" {mean(r[0].recall for r in rows):5.2f} {mean(r[1] for r in rows):6.1f} |"
        f" {mean(r[2].f1 for r in rows):7.3f} {mean(r[2].precision for r in rows):5.2f}"
        f" {mean(r[2].recall for r in rows):5.2f} {mean(r[3] for r in rows):6.1f}"
    )
    print(f"trafilatura {trafilatura.__version__}, favor_precision={args.favor_precision}")


if __name__ == "__main__":
    main()
