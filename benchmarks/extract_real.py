"""By-hand benchmark: our main-text extractor against trafilatura on real Chinese news pages.

    PYTHONPATH=. python benchmarks/extract_real.py [--pages ../shared/realpages] [--part dev|heldout|all] [--show]

The pages are ``<pages>/pages/*.html`` with hand-made gold text in ``<pages>/gold.json`` (see its
README): the body, one line per paragraph, the title not included, plus ``optional_lines`` that
neither reward nor penalise. Each page's raw bytes are decoded with the crawler's charset rules (a
``<meta>`` that declares gb2312 over UTF-8 bytes included) and extracted by liandan and by
trafilatura, default and ``favor_precision``. The score is the extraction benchmark's character F1
(benchmarks/extract_vs_trafilatura.py): the multiset overlap of Han/letter/digit characters, so line
breaks and punctuation widths do not count, missing or extra text does. Ours is scored on its body
(``keep_title=False``), so a title repeated as the first body line costs precision; trafilatura on its
``text``. An optional line found in an output is cut from it before scoring.

Split: pages are grouped by site (the file name before ``__``) and the sites sorted by the SHA-1 of
their name; the first sites up to 10 pages are the held-out part, the rest (20 pages) the dev part.
The extractor's rules were tuned on the dev part only; the held-out part was scored at the end.
Speed: extraction only (decoding excluded), MB of HTML (UTF-8) per second on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from tasks.crawl.charset import decode_html
from tasks.extract import ExtractConfig, extract_main_text

HELD_OUT_PAGES = 10


@dataclass
class Score:
    precision: float
    recall: float
    f1: float


def alnum(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def char_f1(predicted: str, gold: str) -> Score:
    """Return precision, recall and F1 of the multiset of Han/letter/digit characters."""
    pred, ref = Counter(alnum(predicted)), Counter(alnum(gold))
    overlap = sum((pred & ref).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(ref.values()) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1)


def without_optional(predicted: str, optional: list[str]) -> str:
    """Return the Han/letter/digit characters of ``predicted`` with one occurrence of each optional line cut."""
    text = alnum(predicted)
    for line in optional:
        key = alnum(line)
        if key:
            text = text.replace(key, "", 1)
    return text


def split_pages(names: list[str]) -> tuple[list[str], list[str]]:
    """Return (dev, held-out) page names: whole sites, by the SHA-1 of the site name, held-out first."""
    sites: dict[str, list[str]] = {}
    for name in sorted(names):
        sites.setdefault(name.split("__")[0], []).append(name)
    held_out: list[str] = []
    dev: list[str] = []
    for site in sorted(sites, key=lambda s: hashlib.sha1(s.encode()).hexdigest()):
        (held_out if len(held_out) < HELD_OUT_PAGES else dev).extend(sites[site])
    return dev, held_out


def ours(html: str, cfg: ExtractConfig) -> str:
    return extract_main_text(html, cfg).text


def theirs(html: str, favor_precision: bool) -> str:
    doc = trafilatura.bare_extraction(
        html, include_comments=False, include_tables=True, favor_precision=favor_precision, with_metadata=True
    )
    return (doc.text or "") if doc is not None else ""


def show_diff(predicted: str, gold: str) -> None:
    """Print the gold lines we missed and the lines we added (whitespace-insensitive)."""
    pred = {alnum(line) for line in predicted.split("\n")}
    ref = {alnum(line) for line in gold.split("\n")}
    for line in gold.split("\n"):
        if alnum(line) not in pred:
            print(f"      - {line[:120]}")
    for line in predicted.split("\n"):
        if alnum(line) not in ref:
            print(f"      + {line[:120]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, default=Path("../shared/realpages"))
    parser.add_argument("--part", choices=["dev", "heldout", "all"], default="dev")
    parser.add_argument("--show", action="store_true", help="print missed (-) and extra (+) lines of ours")
    args = parser.parse_args()

    gold = json.loads((args.pages / "gold.json").read_text(encoding="utf-8"))
    dev, held_out = split_pages(list(gold))
    parts = {"dev": [("dev", dev)], "heldout": [("held-out", held_out)], "all": [("dev", dev), ("held-out", held_out)]}
    cfg = ExtractConfig(keep_title=False)
    systems = ("liandan", "trafilatura", "traf. precision")
    for part_name, names in parts[args.part]:
        print(f"\n{part_name}: {len(names)} pages")
        print(f"{'page':<24} {'ours F1':>7} {'P':>5} {'R':>5} | {'traf F1':>7} {'P':>5} {'R':>5} | {'prec F1':>7}")
        totals = {s: [0.0, 0.0, 0.0] for s in systems}
        html_bytes, our_seconds = 0, 0.0
        for name in names:
            entry = gold[name]
            html, _ = decode_html((args.pages / "pages" / name).read_bytes(), None)
            t0 = time.perf_counter()
            our_text = ours(html, cfg)
            our_seconds += time.perf_counter() - t0
            html_bytes += len(html.encode("utf-8"))
            outputs = {"liandan": our_text, "trafilatura": theirs(html, False), "traf. precision": theirs(html, True)}
            optional = entry.get("optional_lines", [])
            scores = {s: char_f1(without_optional(out, optional), entry["text"]) for s, out in outputs.items()}
            for s, score in scores.items():
                totals[s][0] += score.f1
                totals[s][1] += score.precision
                totals[s][2] += score.recall
            a, b, c = scores["liandan"], scores["trafilatura"], scores["traf. precision"]
            print(
                f"{name:<24} {a.f1:7.3f} {a.precision:5.2f} {a.recall:5.2f} |"
                f" {b.f1:7.3f} {b.precision:5.2f} {b.recall:5.2f} | {c.f1:7.3f}"
            )
            if args.show and a.f1 < 0.99:
                show_diff(our_text, entry["text"])
        n = len(names)
        print("-" * 80)
        for s in systems:
            f1, p, r = (v / n for v in totals[s])
            print(f"{part_name} mean {s:<16} F1 {f1:.3f}  P {p:.3f}  R {r:.3f}")
        print(f"liandan extraction speed: {html_bytes / our_seconds / 1e6:.2f} MB/s of HTML on one core")
    print(f"trafilatura {trafilatura.__version__}")


if __name__ == "__main__":
    main()
