"""The OCR stage on real files: the sample's scan, notice and report, PDFs and images made here, and bad input.

OCR runs for real (RapidOCR's bundled PP-OCR models on onnxruntime, no network); one reader, and so
one engine, serves the whole module. Images drawn here need a CJK font and skip without one.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

pytest.importorskip("pypdfium2", reason="the OCR stage needs pypdfium2 to read PDFs (pip install pypdfium2)")

from PIL import Image, ImageDraw, ImageFont

from tasks.crawl.warc import WarcSink
from tasks.ocr import (
    OCR_REASONS,
    Box,
    OcrConfig,
    OcrEngineUnavailable,
    OcrReader,
    build_engine,
    build_steps,
    group_lines,
    order_lines,
    paragraphs,
    split_columns,
    strip_repeated_edges,
)
from tasks.ocr.files import local_path, sniff_format, wants_ocr
from tasks.ocr.image import decode_image, open_image, strips
from tasks.ocr.layout import is_page_number, tidy_text
from tasks.ocr.pdf import text_layer_usable
from tasks.ocr.task import ocr_shard
from tasks.records import Reject, make_doc
from tasks.steps import run_steps
from tasks.store import StageDir, read_shard, write_shard

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "ocr"
DOCS = ROOT / "data" / "sample" / "site" / "docs"
GOLD = ROOT / "data" / "sample" / "gold" / "docs"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
needs_font = pytest.mark.skipif(not FONT.exists(), reason=f"no CJK font at {FONT} (apt-get install fonts-wqy-zenhei)")

NOTICE_TEXT = """停水通知
因供水管网改造施工，槐树街一号至三十号院将于3月12日
上午八时至下午六时暂停供水。
请各位居民提前做好储水准备，如有疑问请拨打物业服务电话。
给您带来的不便，敬请谅解。
青溪市自来水公司 2026年3月10日"""

HEADERS_PDF_TEXT = """青溪市档案馆始建于一九五八年，现有馆藏档案十二万余卷，资料三万余册，时间跨度从清代中期至今。
馆藏以地方政府机关文书档案为主，另有民国时期的商会档案、地契和族谱等珍贵史料。
为方便公众查阅，档案馆于二〇二四年完成了馆藏目录的数字化工作，读者可在阅览室的终端上检索。
查阅已开放档案须持本人有效身份证件办理登记手续，复制档案按照有关规定收取工本费。
档案馆开放时间为周一至周五上午九时至下午五时，国家法定节假日闭馆。"""


@pytest.fixture(scope="module")
def reader() -> OcrReader:
    """One reader with its engine built, shared by the module's OCR tests (building one takes a second or two)."""
    pytest.importorskip("rapidocr", reason="OCR needs rapidocr and onnxruntime (pip install rapidocr onnxruntime)")
    built = OcrReader(OcrConfig())
    built.engine  # noqa: B018 - built here, once, instead of inside the first test that reads an image
    return built


def file_doc(path: Path, kind: str | None = None, **meta) -> dict:
    meta = {"path": str(path), **({"kind": kind} if kind else {}), **meta}
    return make_doc(f"file://{path}", "", source="docs", meta=meta)


def gold(name: str) -> str:
    return (GOLD / f"{name}.txt").read_text(encoding="utf-8").strip()


def draw_lines(lines: list[str], size: int = 24, width: int | None = None, pitch: int | None = None) -> Image.Image:
    """Return black-on-white Chinese text lines drawn with the CJK font."""
    font = ImageFont.truetype(str(FONT), size, index=0)
    pitch = pitch or int(size * 1.8)
    width = width or int(max(font.getlength(line) for line in lines)) + 2 * size
    im = Image.new("L", (width, pitch * len(lines) + 2 * size), 255)
    d = ImageDraw.Draw(im)
    for k, line in enumerate(lines):
        d.text((size, size + k * pitch), line, font=font, fill=0)
    return im


def png_header(width: int, height: int) -> bytes:
    """Return a few-byte PNG whose header claims ``width`` x ``height`` (its pixel data is a stub)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------- config


def test_config_forbids_unknown_fields_and_bounds_values():
    with pytest.raises(ValidationError):
        OcrConfig(det_limit_side=960)
    with pytest.raises(ValidationError):
        OcrConfig(engine="tesseract")
    with pytest.raises(ValidationError):
        OcrConfig(min_line_confidence=1.5)
    with pytest.raises(ValidationError):
        OcrConfig(max_image_pixels=400_000_000)  # above Pillow's own bomb warning: ours must fire first
    cfg = OcrConfig()
    assert (cfg.engine, cfg.det_limit_type, cfg.det_limit_side_len) == ("rapidocr", "max", 960)


# ---------------------------------------------------------------------------------------------- layout


def box(text: str, x0: float, y0: float, x1: float, y1: float, confidence: float = 0.99) -> Box:
    return Box(text, confidence, x0, y0, x1, y1)


def test_tidy_text_removes_spaces_between_han_only():
    assert tidy_text(" 青溪 市  图书馆 ") == "青溪市图书馆"
    assert tidy_text("开放时间 9:00 - 21:00，欢迎 光临！") == "开放时间 9:00 - 21:00，欢迎光临！"
    assert tidy_text("GPT 4 模型") == "GPT 4 模型"


def test_group_lines_orders_boxes_and_joins_pieces_without_spaces():
    boxes = [
        box("第二行", 10, 52, 80, 76),
        box("的后半", 210, 12, 280, 36),
        box("第一行", 10, 10, 80, 34),
        box("中间", 90, 11, 130, 35),
        box("和", 140, 13, 160, 35),
        box("Hello", 300, 52, 360, 76),
        box("world", 366, 52, 420, 76),
    ]
    lines = group_lines(boxes)
    assert [line.text for line in lines] == ["第一行中间和 的后半", "第二行 Hello world"]
    # "和" and "的后半" are 50 px apart (two line heights): a gap that wide is kept as one space


def test_group_lines_keeps_skewed_lines_apart_and_lone_punctuation_in_its_line():
    # a scan rotated slightly: each line drifts 6 px across the page; 。sits low in its line, a fifth as high
    boxes = [
        box("槐树街社区", 100, 100, 400, 130),
        box("文化活动中心", 420, 106, 700, 136),
        box("。", 702, 130, 708, 136),
        box("使用管理办法", 100, 152, 400, 182),
    ]
    assert [line.text for line in group_lines(boxes)] == ["槐树街社区文化活动中心。", "使用管理办法"]


def test_paragraphs_join_wrapped_lines_and_break_at_indent_title_and_short_lines():
    lines = group_lines([
        box("管理办法", 300, 10, 420, 40),  # centred title
        box("第一条为规范社区文化活动中心的使用", 160, 60, 700, 90),  # indented first line
        box("和管理，制定本办法。", 100, 100, 400, 130),  # short last line
        box("第二条文化活动中心包括多功能厅、书", 160, 140, 700, 170),
        box("画室和儿童活动室，面向辖区居民免费", 100, 180, 700, 210),  # ran to the right edge
        box("开放。", 100, 220, 190, 250),
    ])
    assert paragraphs(lines) == [
        "管理办法",
        "第一条为规范社区文化活动中心的使用和管理，制定本办法。",
        "第二条文化活动中心包括多功能厅、书画室和儿童活动室，面向辖区居民免费开放。",
    ]


def test_paragraphs_break_at_extra_vertical_space_and_keep_latin_words_apart():
    lines = group_lines([
        box("The quick brown fox jumps over the", 100, 10, 700, 40),
        box("lazy dog.", 100, 50, 250, 80),
        box("新段落没有缩进但上方留有空行，它另起一段，长度也", 100, 150, 700, 180),
        box("跑满了整行。", 100, 190, 280, 220),
    ])
    assert paragraphs(lines) == ["The quick brown fox jumps over the lazy dog.", "新段落没有缩进但上方留有空行，它另起一段，长度也跑满了整行。"]


def test_two_columns_are_read_one_after_the_other_under_a_full_width_title():
    title = [box("青溪市举办第三届读书节活动", 100, 10, 700, 40)]
    left = [box(t, 100, 60 + 40 * k, 380, 90 + 40 * k) for k, t in enumerate(["左栏第一行文字内容", "左栏第二行文字内容", "左栏第三行文字内容"])]
    right = [box(t, 420, 60 + 40 * k, 700, 90 + 40 * k) for k, t in enumerate(["右栏第一行文字内容", "右栏第二行文字内容", "右栏第三行文字内容"])]
    blocks = split_columns(right + title + left)
    assert [[b.text for b in block] for block in blocks] == [
        ["青溪市举办第三届读书节活动"],
        ["左栏第一行文字内容", "左栏第二行文字内容", "左栏第三行文字内容"],
        ["右栏第一行文字内容", "右栏第二行文字内容", "右栏第三行文字内容"],
    ]
    assert paragraphs(order_lines(right + title + left)) == [
        "青溪市举办第三届读书节活动",
        "左栏第一行文字内容左栏第二行文字内容左栏第三行文字内容",
        "右栏第一行文字内容右栏第二行文字内容右栏第三行文字内容",
    ]


def test_a_form_of_labels_and_values_stays_in_rows():
    rows = [("姓名：", "张三丰"), ("电话：", "13800000000"), ("住址：", "青溪市槐树街一号"), ("邮编：", "310000")]
    boxes = [b for k, (label, value) in enumerate(rows)
             for b in (box(label, 100, 10 + 40 * k, 160, 40 + 40 * k), box(value, 260, 10 + 40 * k, 500, 40 + 40 * k))]
    assert len(split_columns(boxes)) == 1
    assert [line.text for line in order_lines(boxes)] == ["姓名： 张三丰", "电话： 13800000000", "住址： 青溪市槐树街一号", "邮编： 310000"]


@pytest.mark.parametrize(
    "text, expected",
    [("3", True), ("- 12 -", True), ("第 3 页", True), ("第3页 共12页", True), ("3/12", True), ("Page 3 of 12", True),
     ("第三条", False), ("2026年3月1日", False), ("共有3人参加", False)],
)
def test_is_page_number(text, expected):
    assert is_page_number(text) is expected


def test_strip_repeated_edges_removes_running_header_and_page_numbers_only():
    def page(n: int, title: str, last: str) -> list:
        return group_lines([
            box("青溪市档案馆 馆藏资料汇编", 100, 10, 500, 30),
            box(title, 100, 100, 700, 130),
            box("以下是正文", 100, 140, 300, 170),  # repeats, but in the body: stays
            box(last, 100, 180, 300, 210),
            box(f"- {n} -", 390, 900, 410, 920),
        ])

    pages = [page(1, "第一章", "正文甲"), page(2, "第二章", "正文乙"), page(3, "第三章", "正文丙")]
    stripped, removed = strip_repeated_edges(pages, edge_lines=2, min_share=0.5)
    assert removed == 6
    assert [[line.text for line in p] for p in stripped] == [
        ["第一章", "以下是正文", "正文甲"], ["第二章", "以下是正文", "正文乙"], ["第三章", "以下是正文", "正文丙"],
    ]
    # one page cannot tell a header from a title: left alone
    single, removed = strip_repeated_edges(pages[:1], edge_lines=2, min_share=0.5)
    assert removed == 0 and len(single[0]) == 5


# ---------------------------------------------------------------------------------------------- files


def test_sniff_format_by_magic_bytes():
    assert sniff_format((DOCS / "report.pdf").read_bytes()) == "pdf"
    assert sniff_format(b"\r\n%PDF-1.7\n...") == "pdf"  # junk before the header, as readers allow
    assert sniff_format((DOCS / "notice.png").read_bytes()) == "image"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image"
    assert sniff_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None


def test_wants_ocr_by_kind_or_bare_local_file():
    assert wants_ocr(make_doc("u1", meta={"kind": "pdf"}))
    assert wants_ocr(make_doc("u2", meta={"kind": "image"}))
    assert not wants_ocr(make_doc("u3", "<html>", meta={"kind": "html"}))
    assert wants_ocr(make_doc("u4", meta={"path": "/tmp/a.png"}))
    assert not wants_ocr(make_doc("u5", "已经有文字", meta={"path": "/tmp/a.txt"}))
    assert wants_ocr(make_doc("file:///tmp/%E6%89%AB%E6%8F%8F.pdf"))
    assert local_path(make_doc("file:///tmp/%E6%89%AB%E6%8F%8F.pdf")) == Path("/tmp/扫描.pdf")
    assert not wants_ocr(make_doc("https://example.org/a.pdf"))  # a crawled record without a kind: not ours to guess


def test_text_layer_usable_needs_enough_real_characters():
    assert text_layer_usable("本报告对2025年度从公开中文网站采集的网页语料进行了抽样评估", 20, 0.1)
    assert not text_layer_usable("第 1 页", 20, 0.1)  # a scan with a page-number text object
    assert not text_layer_usable("\ue000\ue001\ue002" * 10 + "正文", 20, 0.1)  # fonts without a Unicode map


def test_open_image_reads_size_from_header_without_decoding():
    with pytest.raises(Exception) as e:
        open_image(png_header(20000, 20000), max_pixels=40_000_000)
    assert e.value.reason == "image_too_large"
    assert open_image(png_header(800, 600), max_pixels=40_000_000).size == (800, 600)


def test_strips_cut_long_images_at_blank_rows():
    image = np.full((2000, 400, 3), 255, dtype=np.uint8)
    for top in range(40, 2000, 100):  # text-like bands 30 px high every 100 px
        image[top : top + 30, 50:350] = 0
    pieces = strips(image, max_aspect=2.5)
    assert [top for top, _ in pieces] == [0, 604, 1204, 1804]  # mid-gap: text bands end at 569, 1169, 1769
    assert sum(p.shape[0] for _, p in pieces) == 2000
    for top, _ in pieces[1:]:
        assert image[top].min() == 255  # every cut is a blank row
    assert len(strips(image[:900], max_aspect=2.5)) == 1


# ---------------------------------------------------------------------------------------------- the sample's files


def test_notice_png_reads_as_drawn(reader):
    out = reader.read(file_doc(DOCS / "notice.png", kind="image"))
    assert out["text"] == NOTICE_TEXT
    assert out["text"].replace(" ", "\u3000") == gold("notice.png")  # the signature's gap is drawn from U+3000
    ocr = out["meta"]["ocr"]
    assert {k: ocr[k] for k in ("engine", "format", "pages", "ocr_pages", "text_layer")} == {
        "engine": "rapidocr", "format": "image", "pages": 1, "ocr_pages": 1, "text_layer": False,
    }
    assert 0.95 < ocr["mean_confidence"] <= 1.0


def test_scanned_pdf_is_ocrd_without_its_header_and_page_numbers(reader):
    out = reader.read(file_doc(DOCS / "scan.pdf", kind="pdf"))
    # the scan drew 第一条　为规范… with an ideographic space, which the recogniser reads as no space
    assert out["text"] == gold("scan.pdf").replace("\u3000", "")
    ocr = out["meta"]["ocr"]
    assert (ocr["pages"], ocr["ocr_pages"], ocr["text_layer"], ocr["header_footer_lines"]) == (2, 2, False, 4)
    assert "青禾网" not in out["text"] and "共 2 页" not in out["text"]


def test_text_layer_pdf_is_read_from_its_layer_without_the_engine():
    # an engine that cannot be built proves none was needed (paddleocr is never in this environment)
    unbuildable = OcrReader(OcrConfig(engine="paddleocr"))
    out = unbuildable.read(file_doc(DOCS / "report.pdf", kind="pdf"))
    assert out["text"] == gold("report.pdf")
    assert out["meta"]["ocr"]["engine"] == "text_layer"
    assert (out["meta"]["ocr"]["text_layer"], out["meta"]["ocr"]["ocr_pages"], out["meta"]["ocr"]["version"]) == (True, 0, "ocr_v1")


def test_text_layer_pdf_loses_running_header_and_footer_and_joins_wrapped_lines():
    out = OcrReader(OcrConfig()).read(file_doc(DATA / "headers.pdf"))  # no kind: a bare local file
    assert out["text"] == HEADERS_PDF_TEXT
    assert out["meta"]["ocr"]["header_footer_lines"] == 6
    kept = OcrReader(OcrConfig(strip_headers_footers=False)).read(file_doc(DATA / "headers.pdf"))
    assert kept["text"].count("青溪市档案馆　馆藏资料汇编") == 3 and "第 2 页共 3 页" in kept["text"]


def test_two_column_text_layer_pdf_is_read_column_by_column():
    title, left, right = (DATA / "columns.txt").read_text(encoding="utf-8").splitlines()
    out = OcrReader(OcrConfig()).read(file_doc(DATA / "columns.pdf", kind="pdf"))
    assert out["text"] == f"{title}\n{left}\n{right}"


def test_pdfs_read_from_many_threads_at_once_give_the_same_text():
    # PDFium is not thread-safe and Prefect's default runner is a thread pool: every call goes through one lock
    from concurrent.futures import ThreadPoolExecutor

    files = [DOCS / "report.pdf", DATA / "headers.pdf", DATA / "columns.pdf"] * 8
    readers = [OcrReader(OcrConfig()) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(lambda k: readers[k % 4].read(file_doc(files[k], kind="pdf"))["text"], range(len(files))))
    assert texts == [gold("report.pdf"), HEADERS_PDF_TEXT, (DATA / "columns.txt").read_text(encoding="utf-8").strip()] * 8


# ---------------------------------------------------------------------------------------------- images made here


@needs_font
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "RGBA"])
def test_image_formats_read_the_same_line(reader, tmp_path, fmt):
    line = (DATA / "line.txt").read_text(encoding="utf-8").strip()
    im = draw_lines([line])
    path = tmp_path / f"line.{fmt.lower()}"
    if fmt == "RGBA":  # dark text on a transparent background, as web PNGs often are
        rgba = Image.new("RGBA", im.size, (0, 0, 0, 0))
        rgba.putalpha(Image.eval(im, lambda v: 255 - v))
        rgba.save(path.with_suffix(".png"), "PNG")
        path = path.with_suffix(".png")
    else:
        im.convert("RGB" if fmt != "GIF" else "P").save(path, fmt)
    out = reader.read(file_doc(path, kind="image"))
    assert out["text"] == line


@needs_font
def test_long_image_is_read_strip_by_strip_in_order(reader, tmp_path):
    lines = (DATA / "long.txt").read_text(encoding="utf-8").splitlines()
    # section titles flush left, body paragraphs indented two ideographic spaces (首行缩进), as printed
    drawn = [line if line.startswith("第") else "\u3000\u3000" + line for line in lines]
    im = draw_lines(drawn, size=20, width=640, pitch=180)  # 640 x 1840: taller than 2.5 widths
    assert im.height > 2.5 * im.width
    im.save(tmp_path / "long.png")
    out = reader.read(file_doc(tmp_path / "long.png", kind="image"))
    assert out["text"] == "\n".join(line.replace("\u3000", "") for line in lines)


@needs_font
def test_two_column_page_is_read_column_by_column(reader, tmp_path):
    title, left, right = (DATA / "columns.txt").read_text(encoding="utf-8").splitlines()
    font = ImageFont.truetype(str(FONT), 20, index=0)
    im = Image.new("L", (900, 260), 255)
    d = ImageDraw.Draw(im)
    d.text((450 - font.getlength(title) / 2, 20), title, font=font, fill=0)
    for x, para in ((40, left), (480, right)):
        for k in range(0, len(para), 19):  # 19 characters of 20 px: a 380 px column
            d.text((x, 70 + 36 * (k // 19)), para[k : k + 19], font=font, fill=0)
    im.save(tmp_path / "columns.png")
    out = reader.read(file_doc(tmp_path / "columns.png", kind="image"))
    assert out["text"] == f"{title}\n{left}\n{right}"


@needs_font
def test_low_confidence_lines_are_dropped_and_counted(reader, tmp_path):
    im = draw_lines(["青溪市图书馆开放时间调整通知", "读者凭有效证件办理借书证"])
    noisy = np.asarray(im).copy()
    rng = np.random.default_rng(0)
    lower = noisy[noisy.shape[0] // 2 :]
    lower[rng.random(lower.shape) < 0.6] = 255  # erase most of the second line's ink: a weak reading
    Image.fromarray(noisy).save(tmp_path / "two.png")
    doc = file_doc(tmp_path / "two.png", kind="image")
    everything = OcrReader(OcrConfig(min_line_confidence=0.0, min_chars=1), engine=reader.engine)
    boxes, dropped = everything.recognise(decode_image((tmp_path / "two.png").read_bytes(), 40_000_000))
    assert dropped == 0
    scores = sorted(b.confidence for b in boxes)
    assert len(scores) == 2 and scores[0] < scores[1]
    threshold = (scores[0] + scores[1]) / 2  # between the two lines' real scores
    strict = OcrReader(OcrConfig(min_line_confidence=threshold, min_chars=1), engine=reader.engine)
    out = strict.read(doc)
    assert out["meta"]["ocr"]["low_confidence_lines"] == 1
    assert out["text"] == "青溪市图书馆开放时间调整通知"
    assert strict.tally([out]) == {"image_files": 1, "pages": 1, "ocr_pages": 1, "text_layer_pages": 0,
                                   "low_confidence_lines": 1, "header_footer_lines": 0}


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_files_are_rejected_with_their_reason_and_the_shard_goes_on(reader, tmp_path):
    notice = (DOCS / "notice.png").read_bytes()
    report = (DOCS / "report.pdf").read_bytes()
    files = {
        "empty.pdf": b"",
        "corrupt.pdf": report[: len(report) // 3],
        "garbage.pdf": b"<html><body>404 Not Found</body></html>",
        "truncated.png": notice[: len(notice) // 2],
        "huge.png": png_header(20000, 20000),
        "vector.svg": b"<svg xmlns='http://www.w3.org/2000/svg'><text>\xe4\xb8\xad</text></svg>",
        "blank.png": _png(Image.new("L", (400, 200), 255)),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    docs = [
        make_doc("https://example.org/a.html", "已经抽取好的网页正文。", meta={"kind": "html"}),
        file_doc(tmp_path / "empty.pdf", kind="pdf"),
        file_doc(tmp_path / "corrupt.pdf", kind="pdf"),
        file_doc(DATA / "encrypted.pdf", kind="pdf"),
        file_doc(tmp_path / "garbage.pdf", kind="pdf"),
        file_doc(tmp_path / "truncated.png", kind="image"),
        file_doc(tmp_path / "huge.png", kind="image"),
        file_doc(tmp_path / "vector.svg", kind="image"),
        file_doc(tmp_path / "blank.png", kind="image"),
        file_doc(tmp_path / "gone.png", kind="image"),
        make_doc("https://example.org/b.pdf", meta={"kind": "pdf", "content_type": "application/pdf"}),
        make_doc("https://example.org/c.pdf", meta={"kind": "pdf", "warc_file": "crawl-00000.warc.gz", "warc_offset": 0}),
        file_doc(DOCS / "report.pdf", kind="pdf"),
    ]
    result = run_steps("ocr", [reader], docs)
    assert result.stats.balanced() and result.stats.docs_in == 13
    reasons = {row["url"].rsplit("/", 1)[-1]: row["reason"] for row in result.rejected}
    assert reasons == {
        "empty.pdf": "empty_file",
        "corrupt.pdf": "corrupt_file",
        "encrypted.pdf": "encrypted_pdf",
        "garbage.pdf": "corrupt_file",
        "truncated.png": "corrupt_file",
        "huge.png": "image_too_large",
        "vector.svg": "unsupported_format",
        "blank.png": "no_text",
        "gone.png": "missing_bytes",
        "b.pdf": "missing_bytes",
        "c.pdf": "missing_bytes",  # a WARC reference, but this reader was given no WARC folder
    }
    assert set(reasons.values()) <= set(OCR_REASONS)
    assert all(row["stage"] == "ocr" and row["detail"] for row in result.rejected)
    assert [d["url"] for d in result.kept] == ["https://example.org/a.html", f"file://{DOCS / 'report.pdf'}"]
    assert result.kept[0] == docs[0]  # an HTML record passes untouched
    assert result.stats.counters == {"passed_through": 1, "pdf_files": 1, "pages": 2, "ocr_pages": 0,
                                     "text_layer_pages": 2, "low_confidence_lines": 0, "header_footer_lines": 0}


def test_too_many_pages_and_too_large_files_are_refused_before_reading():
    out = OcrReader(OcrConfig(max_pages=1)).read(file_doc(DOCS / "report.pdf", kind="pdf"))
    assert out == Reject("too_many_pages", "2 pages > 1")
    out = OcrReader(OcrConfig(max_file_bytes=1000)).read(file_doc(DOCS / "report.pdf", kind="pdf"))
    assert out.reason == "file_too_large"


def test_paddleocr_is_optional_and_says_how_to_install():
    try:
        import paddleocr  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("paddleocr is installed here; this test is about its absence")
    with pytest.raises(OcrEngineUnavailable, match="pip install 'paddleocr"):
        build_engine(OcrConfig(engine="paddleocr"))
    lazy = OcrReader(OcrConfig(engine="paddleocr"))  # building the step loads nothing
    with pytest.raises(OcrEngineUnavailable):  # a setup error stops the shard: it is not the file's fault
        lazy.read(file_doc(DOCS / "notice.png", kind="image"))


# ---------------------------------------------------------------------------------------------- WARC and task


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _crawl_warc(warc_dir: Path) -> list[dict]:
    """Write the sample's PDF and PNG into a WARC as the crawler does; return their crawl records."""
    warc_dir.mkdir(parents=True)
    sink = WarcSink(warc_dir / "crawl-00000.warc.gz", "liandan-test")
    docs = []
    for name, kind, ctype in (("report.pdf", "pdf", "application/pdf"), ("notice.png", "image", "image/png")):
        body = (DOCS / name).read_bytes()
        url = f"http://127.0.0.1/docs/{name}"
        offset = sink.write_response(url, 200, "OK", [("Content-Type", ctype)], body, "2026-03-01T00:00:00Z")
        meta = {"kind": kind, "content_type": ctype, "warc_file": "crawl-00000.warc.gz", "warc_offset": offset, "bytes": len(body)}
        docs.append(make_doc(url, "", source="docs", meta=meta))
    sink.close()
    return docs


def test_crawled_files_are_read_back_from_the_warc(reader, tmp_path):
    docs = _crawl_warc(tmp_path / "crawl" / "warc")
    steps = build_steps(OcrConfig(), tmp_path / "crawl" / "warc")
    assert [type(step) for step in steps] == [OcrReader]
    warc_reader = OcrReader(OcrConfig(), tmp_path / "crawl" / "warc", engine=reader.engine)  # share the module's engine
    result = run_steps("ocr", [warc_reader], docs)
    assert [d["text"] for d in result.kept] == [gold("report.pdf"), NOTICE_TEXT]
    assert result.kept[1]["meta"]["warc_offset"] == docs[1]["meta"]["warc_offset"]  # crawl meta is kept


def test_ocr_shard_task_writes_kept_and_rejected(tmp_path):
    docs = _crawl_warc(tmp_path / "crawl" / "warc")[:1]  # the text-layer PDF: no model needed
    docs.append(make_doc("http://127.0.0.1/docs/missing.pdf", meta={"kind": "pdf", "warc_file": "crawl-00000.warc.gz", "warc_offset": 10**9}))
    docs.append(make_doc("http://127.0.0.1/news/a.html", "正文", meta={"kind": "html"}))
    shard = tmp_path / "extract" / "part-00000.parquet"
    write_shard(shard, docs)
    stats = ocr_shard.fn(str(shard), str(tmp_path / "ocr"), OcrConfig(), str(tmp_path / "crawl" / "warc"))
    assert (stats.docs_in, stats.docs_kept, stats.docs_rejected) == (3, 2, 1)
    assert stats.rejected_by_reason == {"missing_bytes": 1}
    out = StageDir(tmp_path / "ocr")
    assert [d["text"] for d in read_shard(out.shard("part-00000.parquet"))] == [gold("report.pdf"), "正文"]
    assert read_shard(out.rejected("part-00000.parquet"))[0]["reason"] == "missing_bytes"
