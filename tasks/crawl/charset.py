"""Decode an HTML body to text: BOM, then the HTTP header, then ``<meta>``, then detection.

The order follows the WHATWG encoding sniffing algorithm (html.spec.whatwg.org, "determining the
character encoding"), with two changes for Chinese sites, which often declare less than they use:
GB2312 and GBK are decoded as their superset GB18030 and Big5 as Big5-HKSCS, so characters outside the
declared table (names, Cantonese, emoji-era punctuation) survive; and a body that is valid UTF-8 with
real multibyte content is read as UTF-8 whatever it declares, since a page saved as UTF-8 under an old
GBK template is common and GBK text is almost never valid UTF-8 by accident. Detection (no BOM, no
declaration, not UTF-8) uses charset-normalizer among the encodings of Chinese and neighbouring sites.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

# Labels browsers accept that Python's codec registry does not know (WHATWG Encoding Standard).
LABEL_ALIASES = {
    "x-gbk": "gbk", "gb_2312-80": "gb2312", "gb_2312": "gb2312", "csgb2312": "gb2312", "chinese": "gb2312",
    "iso-ir-58": "gb2312", "x-euc-cn": "gb2312", "csgb231280": "gb2312", "x-big5": "big5", "cn-big5": "big5",
    "csbig5": "big5", "x-x-big5": "big5", "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8",
}

# Declared (codec name) -> codec actually used: supersets, per the module docstring. Latin-1 and ASCII
# labels mean windows-1252 on the web (WHATWG Encoding Standard).
DECODE_AS = {
    "gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs",
    "iso8859-1": "cp1252", "ascii": "cp1252",
}

# Detection picks among these only: the encodings Chinese sites use, plus the Western and Japanese
# ones that share their pages. Open-ended detection mistakes short GBK text for Korean or Shift-JIS.
DETECT_CANDIDATES = ["utf_8", "gb18030", "big5hkscs", "cp1252", "shift_jis", "euc_jp"]

SNIFF_BYTES = 4096  # the WHATWG prescan looks at the first 1024 bytes; real pages put <meta> after long <script>s
SAMPLE_BYTES = 65536  # bytes inspected for control characters
MAX_CONTROL_FRACTION = 0.02  # text has none but tab/CR/LF/FF; random bytes have ~10%
MAX_REPLACED_FRACTION = 0.01  # a declared charset may miss on a few bytes (broken pages), not on many
MIN_UTF8_MULTIBYTE = 16  # non-ASCII bytes needed before valid UTF-8 overrides a declared charset

_META = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_:.\-]+)""", re.IGNORECASE)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([a-z0-9_.\-]+)""", re.IGNORECASE)
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r\f\x1b")  # ESC stays: ISO-2022 uses it


def decode_html(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Return (text, charset) of an HTML body; charset is the codec name declared, or detected.

    Raises ValueError when the body is binary or no charset decodes it.

    >>> decode_html("<p>中文</p>".encode("gbk"), "GB2312")
    ('<p>中文</p>', 'gb2312')
    """
    if not body:
        return "", "utf-8"
    for bom, name in BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace"), name
    sample = body[:SAMPLE_BYTES]
    control = len(sample) - len(sample.translate(None, _CONTROL))
    if control > MAX_CONTROL_FRACTION * len(sample):
        raise ValueError(f"binary body: {control} control bytes in the first {len(sample)}")
    declared = [c for c in (_codec_name(header_charset), _codec_name(meta_charset(body))) if c]
    if declared and declared[0] != "utf-8" and _is_multibyte_utf8(body):
        return body.decode("utf-8"), "utf-8"
    for name in declared:
        text = _decode_tolerant(body, name)
        if text is not None:
            return text, name
    if body.isascii():
        return body.decode("ascii"), "ascii"
    if _is_multibyte_utf8(body, min_multibyte=1):
        return body.decode("utf-8"), "utf-8"
    best = from_bytes(body, cp_isolation=DETECT_CANDIDATES).best()
    name = _codec_name(best.encoding) if best is not None else None
    text = _decode_tolerant(body, name) if name else None
    if text is None:
        raise ValueError("no charset decodes the body")
    return text, name


def meta_charset(body: bytes) -> str | None:
    """Return the charset an HTML body declares in ``<meta>`` or an XML declaration, within its first 4 KB."""
    head = body[:SNIFF_BYTES]
    m = _META.search(head) or _XML_DECL.search(head)
    if not m:
        return None
    label = m.group(1).decode("ascii").lower()
    # WHATWG: a <meta> that claims UTF-16 is wrong (we found it by reading ASCII), so it means UTF-8.
    return "utf-8" if label.startswith("utf-16") else label


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        return codecs.lookup(LABEL_ALIASES.get(label, label)).name
    except LookupError:
        return None


def _decode_tolerant(body: bytes, name: str) -> str | None:
    codec = DECODE_AS.get(name, name)
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        text = body.decode(codec, errors="replace")
        return text if text.count("\ufffd") <= MAX_REPLACED_FRACTION * len(text) else None


def _is_multibyte_utf8(body: bytes, min_multibyte: int = MIN_UTF8_MULTIBYTE) -> bool:
    """Return whether ``body`` is valid UTF-8 holding at least ``min_multibyte`` non-ASCII bytes."""
    non_ascii = len(body) - len(body.translate(None, bytes(range(128))))
    if non_ascii < min_multibyte:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
