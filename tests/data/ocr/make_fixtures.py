"""Regenerate the OCR tests' PDF fixtures: ``python tests/data/ocr/make_fixtures.py`` (needs ``pip install reportlab``).

* ``headers.pdf``: three A4 pages with a real Chinese text layer (reportlab's built-in STSong-Light CID
  font, not embedded, so the file stays a few KB): a running header, body paragraphs wrapped at 36
  characters with a two-character first-line indent, and a "第 N 页 共 3 页" footer.
* ``columns.pdf``: one page set in two columns of 18 characters under a full-width title (the text
  of ``columns.txt``).
* ``encrypted.pdf``: one page, opened only with the user password "secret".

Both are written byte-identically on every run (reportlab's ``invariant`` mode).
"""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

HERE = Path(__file__).parent
FONT = "STSong-Light"
HEADER = "青溪市档案馆　馆藏资料汇编"
FOOTER = "第 {page} 页 共 {pages} 页"
PAGES = [
    [
        "青溪市档案馆始建于一九五八年，现有馆藏档案十二万余卷，资料三万余册，时间跨度从清代中期至今。",
        "馆藏以地方政府机关文书档案为主，另有民国时期的商会档案、地契和族谱等珍贵史料。",
    ],
    [
        "为方便公众查阅，档案馆于二〇二四年完成了馆藏目录的数字化工作，读者可在阅览室的终端上检索。",
        "查阅已开放档案须持本人有效身份证件办理登记手续，复制档案按照有关规定收取工本费。",
    ],
    [
        "档案馆开放时间为周一至周五上午九时至下午五时，国家法定节假日闭馆。",
    ],
]
CHARS_PER_LINE = 36
SIZE = 12
LEFT, TOP = 72, 760


def wrap(text: str) -> list[str]:
    """Return the paragraph in lines of CHARS_PER_LINE characters, the first two characters shorter (indent)."""
    first = CHARS_PER_LINE - 2
    return [text[:first]] + [text[i : i + CHARS_PER_LINE] for i in range(first, len(text), CHARS_PER_LINE)]


def build_headers_pdf(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for number, paras in enumerate(PAGES, start=1):
        c.setFont(FONT, 10)
        c.drawString(LEFT, 800, HEADER)
        c.setFont(FONT, SIZE)
        y = TOP
        for para in paras:
            for k, line in enumerate(wrap(para)):
                c.drawString(LEFT + (2 * SIZE if k == 0 else 0), y, line)
                y -= 20
            y -= 10
        c.setFont(FONT, 10)
        c.drawCentredString(A4[0] / 2, 40, FOOTER.format(page=number, pages=len(PAGES)))
        c.showPage()
    c.save()


def build_columns_pdf(path: Path) -> None:
    title, left, right = (HERE / "columns.txt").read_text(encoding="utf-8").splitlines()
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont(FONT, 16)
    c.drawCentredString(A4[0] / 2, 780, title)
    c.setFont(FONT, SIZE)
    for x, para in ((LEFT, left), (LEFT + 18 * SIZE + 36, right)):
        for k in range(0, len(para), 18):
            c.drawString(x, 740 - 20 * (k // 18), para[k : k + 18])
    c.showPage()
    c.save()


def build_encrypted_pdf(path: Path) -> None:
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1, encrypt=StandardEncryption("secret", "owner"))
    c.setFont(FONT, SIZE)
    c.drawString(LEFT, TOP, "这是一份需要密码才能打开的文件。")
    c.showPage()
    c.save()


if __name__ == "__main__":
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    build_headers_pdf(HERE / "headers.pdf")
    build_columns_pdf(HERE / "columns.pdf")
    build_encrypted_pdf(HERE / "encrypted.pdf")
    print("wrote", HERE / "headers.pdf", HERE / "columns.pdf", HERE / "encrypted.pdf")
