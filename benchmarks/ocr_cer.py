"""By-hand benchmark: OCR character error rate (CER) and seconds per page for candidate detector settings.

    PYTHONPATH=. .venv/bin/python benchmarks/ocr_cer.py [--configs max960,min736] [--fonts zenhei,uming] [--repeat 3]

Inputs, each read through the stage's own path (``OcrReader.read_bytes``: decode, detect, recognise,
reading order, headers/footers):

* Chinese text rendered here from the sample's news gold texts (``data/sample/gold/news``) with every
  CJK font installed of WenQuanYi Zen Hei (sans), AR PL UMing (Song/Ming) and AR PL UKai (Kai), at
  the sizes the web serves: a text-line image (~560x48, 24 px), a paragraph image (800 px wide, 20 px),
  a phone screenshot (1080x1920, 40 px, JPEG), an A4 page at 150 dpi (1240x1754, 23 px = 11 pt, JPEG),
  an A4 page at 300 dpi (2480x3508, 46 px) and a long image (1080x5400, 40 px, cut into strips).
* The sample's ``docs/notice.png``, ``docs/scan.pdf`` (two scanned pages) and ``docs/report.pdf``
  forced through OCR (its text layer ignored, pages rendered at ``render_dpi``), against
  ``data/sample/gold/docs/*.txt``.

CER = Levenshtein distance / gold length, over characters, whitespace removed from both sides and
NFKC applied (full- and half-width punctuation count as equal; line breaks do not count). Seconds are
per page (an image is a page), engine built and warmed up: CPU seconds of the process (with one
onnxruntime thread, core-seconds) and wall seconds.

Measured on the 2-core development machine (onnxruntime 1.32 CPU, rapidocr 3.10 with its bundled
PP-OCRv6 small det/rec, one onnxruntime thread; the machine was shared with other jobs, so CPU seconds
are the figure to compare, wall seconds were 1.5-4x higher). Mean CER over 15 inputs, 17 pages (6
sizes x 2 fonts, zenhei + uming, plus the 3 sample files), CPU s/page:

    det setting                 mean CER   CPU s/page
    min 736 (rapidocr default)    0.0004      8.65     text-line image 2.95 s: upscaled ~15x
    max 960 (chosen)              0.0002      3.95     text-line image 0.10 s
    max 1280                      0.0004*     4.78
    max 1600                      0.0006*     5.30
    (* after edge_key was made punctuation-blind; before it, OCR reading the scan's header bracket
       differently on its two pages kept the header in: CER 0.097 on scan.pdf)

    per input at max 960        CER      CPU s/page
    line (~560x48)              0.0000   0.10-0.13
    paragraph (800 px wide)     0.0000   1.6-1.8
    screenshot (1080x1920)      0.0000   3.2-4.2
    A4 page, 150 dpi            0.0000   6.1-6.7    (~40 lines)
    A4 page, 300 dpi            0.0000   6.1-6.2
    long image (1080x5400)      0.0012-0.0019  11  (two punctuation marks missed; 3 strips)
    sample notice.png           0.0000   1.0-1.4
    sample scan.pdf             0.0000   1.9-2.5    (200 dpi render)
    sample report.pdf (OCR'd)   0.0000   2.2-3.2    (its text layer, the default path, takes 0.01 s)

Render dpi for PDF pages at max 960 (median of 3 runs, sample PDFs): 150 dpi 1.9-2.2, 200 dpi 2.2-2.4,
300 dpi 2.0-2.8 CPU s/page, CER 0 for all three. 200 stays the default: the sample's smallest print is
10.5 pt, and footnote-size print (8 pt) is only ~17 px high at 150 dpi. The 0/180 degree line
classifier (use_angle_cls) cost nothing measurable here and changed nothing on upright text: off.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tasks.ocr import OcrConfig, OcrReader

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"

FONTS = {
    "zenhei": Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    "uming": Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
    "ukai": Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),
}

# Candidate settings: the name, and what differs from OcrConfig's defaults.
CONFIGS: dict[str, dict] = {
    "min736": {"det_limit_type": "min", "det_limit_side_len": 736},  # rapidocr's Det default (its 2000 px pre-scale stays off)
    "max960": {"det_limit_type": "max", "det_limit_side_len": 960},
    "max1280": {"det_limit_type": "max", "det_limit_side_len": 1280},
    "max1600": {"det_limit_type": "max", "det_limit_side_len": 1600},
    "max2048": {"det_limit_type": "max", "det_limit_side_len": 2048},
    "max960-dpi150": {"det_limit_type": "max", "det_limit_side_len": 960, "render_dpi": 150},
    "max960-dpi300": {"det_limit_type": "max", "det_limit_side_len": 960, "render_dpi": 300},
    "max960-cls": {"det_limit_type": "max", "det_limit_side_len": 960, "use_angle_cls": True},
}


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    gold: str
    pages: int
    force_ocr: bool = False  # ignore a PDF's text layer


def normalize(text: str) -> str:
    """Return the text as compared: NFKC, whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def levenshtein(a: str, b: str) -> int:
    """Return the edit distance between two strings (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(pred: str, gold: str) -> float:
    p, g = normalize(pred), normalize(gold)
    return levenshtein(p, g) / max(len(g), 1)


def drawable(text: str) -> str:
    """Return ``text`` without what these fonts cannot draw (emoji, characters beyond the BMP)."""
    keep = []
    for ch in text:
        if ord(ch) > 0xFFFF or unicodedata.category(ch) in ("So", "Cs", "Co", "Cn"):
            continue
        keep.append(ch)
    return "".join(keep)


def news_paragraphs() -> list[str]:
    paras = []
    for path in sorted((SAMPLE / "gold" / "news").glob("2026-*.txt")):
        paras += [drawable(line.strip()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [p for p in paras if p]


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, indent: int = 0) -> list[str]:
    """Greedy pixel wrap for Chinese (no word boundaries); the first line is ``indent`` px narrower."""
    lines, cur = [], ""
    for ch in text:
        limit = width - (indent if not lines else 0)
        if cur and font.getlength(cur + ch) > limit:
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    return lines + [cur] if cur else lines


def render(
    paras: list[str], font_path: Path, size: int, width: int, height: int | None, margin: int, jpeg: bool
) -> tuple[bytes, str]:
    """Return (image bytes, the text drawn): paragraphs with a two-character first-line indent until the canvas is full."""
    font = ImageFont.truetype(str(font_path), size, index=0)
    pitch = int(size * 1.6)
    placed: list[tuple[int, int, str]] = []  # x, y, line
    drawn: list[str] = []
    y = margin
    for para in paras:
        lines = wrap(para, font, width - 2 * margin, indent=2 * size)
        if height is not None:
            lines = lines[: max(0, (height - margin - y) // pitch)]
        if not lines:
            break
        for k, line in enumerate(lines):
            placed.append((margin + (2 * size if k == 0 else 0), y, line))
            y += pitch
        drawn.append("".join(lines))
        y += size // 2  # paragraph spacing
    im = Image.new("L", (width, height or y + margin), 255)
    d = ImageDraw.Draw(im)
    for x, y, line in placed:
        d.text((x, y), line, font=font, fill=20)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=75) if jpeg else im.save(buf, "PNG")
    return buf.getvalue(), "\n".join(drawn)


def synthetic_cases(fonts: list[str]) -> list[Case]:
    paras = news_paragraphs()
    cases = []
    for k, font_name in enumerate(fonts):
        font_path = FONTS[font_name]
        if not font_path.exists():
            print(f"skip font {font_name}: {font_path} not installed")
            continue
        rot = paras[k * 7 :] + paras[: k * 7]  # each font draws different text
        line = rot[0][:22]
        specs = [
            ("line", [line], 24, None, None, 12, False),
            ("paragraph", rot[1:3], 20, 800, None, 30, False),
            ("screenshot", rot[3:], 40, 1080, 1920, 48, True),
            ("page150", rot[5:], 23, 1240, 1754, 150, True),
            ("page300", rot[8:], 46, 2480, 3508, 300, False),
            ("long", rot[12:] + rot[:12], 40, 1080, 5400, 48, True),
        ]
        for name, texts, size, width, height, margin, jpeg in specs:
            if width is None:  # a text-line image: as wide as its text
                f = ImageFont.truetype(str(font_path), size, index=0)
                width = int(f.getlength(line)) + 2 * margin
                height = size + 2 * margin
            data, gold = render(texts, font_path, size, width, height, margin, jpeg)
            cases.append(Case(f"{name}/{font_name}", data, gold, 1))
    return cases


def sample_cases() -> list[Case]:
    docs, gold = SAMPLE / "site" / "docs", SAMPLE / "gold" / "docs"
    return [
        Case("sample/notice.png", (docs / "notice.png").read_bytes(), (gold / "notice.png.txt").read_text("utf-8"), 1),
        Case("sample/scan.pdf", (docs / "scan.pdf").read_bytes(), (gold / "scan.pdf.txt").read_text("utf-8"), 2),
        Case("sample/report.pdf(ocr)", (docs / "report.pdf").read_bytes(), (gold / "report.pdf.txt").read_text("utf-8"), 2, True),
    ]


def run(config_name: str, cases: list[Case], repeat: int, threads: int) -> list[tuple[str, float, float, float]]:
    """Return (case, CER, CPU seconds per page, wall seconds per page) for each case under one candidate config."""
    overrides = {**CONFIGS[config_name], "threads": threads, "min_chars": 1}
    reader = OcrReader(OcrConfig(**overrides))
    forced = OcrReader(OcrConfig(**overrides, min_text_layer_chars=10_000), engine=reader.engine)  # same engine
    reader.read_bytes(cases[0].data)  # warm-up: onnxruntime's first runs allocate and optimise
    rows = []
    for case in cases:
        r = forced if case.force_ocr else reader
        cpu, wall = [], []
        for _ in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            result = r.read_bytes(case.data)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
        rows.append((case.name, cer(result.text, case.gold), statistics.median(cpu) / case.pages, statistics.median(wall) / case.pages))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names: " + ", ".join(CONFIGS))
    parser.add_argument("--fonts", default=",".join(FONTS), help="comma-separated: " + ", ".join(FONTS))
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per case (the median is reported)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (1: CPU seconds = core-seconds, "
                        "comparable between settings even on a busy machine)")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    cases = synthetic_cases(args.fonts.split(",")) + sample_cases()
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    names = [c.name for c in cases]
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for config_name in args.configs.split(","):
        rows = run(config_name, cases, args.repeat, args.threads)
        results[config_name] = {name: (c, cpu, wall) for name, c, cpu, wall in rows}
        pages = sum(case.pages for case in cases)
        cpu = sum(row[2] * case.pages for row, case in zip(rows, cases)) / pages
        wall = sum(row[3] * case.pages for row, case in zip(rows, cases)) / pages
        mean_cer = statistics.fmean(row[1] for row in rows)
        print(f"{config_name:>16}: mean CER {mean_cer:.4f}  {cpu:.3f} CPU s/page  {wall:.3f} wall s/page  ({pages} pages)", flush=True)
    print()
    width = max(len(n) for n in names)
    print(" " * (width + 2) + "".join(f"{c:>24}" for c in results))
    print(" " * (width + 2) + "".join(f"{'CER':>10}{'cpu s/p':>8}{'wall':>6}" for _ in results))
    for name in names:
        print(f"{name:<{width}}  " + "".join(f"{results[c][name][0]:>10.4f}{results[c][name][1]:>8.2f}{results[c][name][2]:>6.1f}" for c in results))


if __name__ == "__main__":
    main()
