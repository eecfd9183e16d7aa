"""Personal data in Chinese text, found by pattern and confirmed by a validator.

Every detector here is a pure function ``find_x(text) -> list[Span]``: a regular expression proposes
candidates, a validator confirms them (``stdnum.cn.ric`` check digit and birth date, ``stdnum.luhn``,
``phonenumbers``, ``ipaddress``), and the context around a number decides what the digits are — an
amount (``13800000000元``, ``￥6222…``), an order or product code (``订单号：…``, ``SKU-…``), a date
or a timestamp (no validator accepts them) is left alone. Person names need jieba and live in
``names.py``; ``resolve_overlaps`` merges what every detector found into one list of spans.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import phonenumbers
from stdnum import luhn
from stdnum.cn import ric

PiiType = Literal["email", "id_card", "bank_card", "phone", "ip", "qq", "wechat", "plate", "address", "person"]
PII_TYPES: tuple[str, ...] = get_args(PiiType)  # also the priority when two findings overlap: earlier wins
PLACEHOLDERS: dict[str, str] = {t: f"<{t.upper()}>" for t in PII_TYPES}


@dataclass(frozen=True)
class Span:
    """One finding: ``text[start:end]`` is personal data of ``kind``; ``value`` is its normal form (for hashing)."""

    start: int
    end: int
    kind: str
    value: str


_D = "0-9０-９"  # ASCII and full-width digits: Chinese pages write both
_DIGIT_MAP = str.maketrans("０１２３４５６７８９", "0123456789")


def ascii_digits(s: str) -> str:
    """Return ``s`` with full-width digits as ASCII and every non-digit except X removed."""
    s = s.translate(_DIGIT_MAP)
    return "".join(c for c in s if c.isascii() and (c.isdigit() or c in "Xx")).upper()


# ------------------------------------------------------------------------------------------------ numbers

# A run of digits in groups split by one space, dash or dot-free separator ("138 0013 8000",
# "6222-0212-3456-7890-123", "110101 19850612 0311"), optionally ending in the ID check letter X.
# Each contiguous group sequence of a run is tried, longest first, so "电话 138 0013 8000 2 人" and two
# phones side by side are both read right.
_SEP = r"(?:[ \u00a0]?[-－‐–—][ \u00a0]?|[ \u00a0\u3000])"
# One number is written in one width: where ASCII digits meet full-width ones ("卡号6246…309０％"), two
# numbers were glued together, so a run holds digits of one width only.
_RUN = re.compile(rf"(?:[0-9]+(?:{_SEP}[0-9]+)*|[０-９]+(?:{_SEP}[０-９]+)*)(?:[Xx](?![A-Za-z]))?")
_GROUP = re.compile(r"(?:[0-9]+|[０-９]+)[Xx]?")
_MAX_GROUPS = 6  # no number we look for is written in more groups; bounds the work on a long list of numbers
_WINDOW = 64

# Labels after which a number is a code, not personal data: order and waybill numbers, product
# and part codes, serials, invoice and contract numbers, tickets, verification codes, postcodes.
_CODE_LABELS = (
    "订单号 订单编号 订单 单号 运单号 快递单号 物流单号 交易号 交易单号 流水号 支付单号 退款单号 编号 货号 型号 款号 "
    "产品编号 商品编号 商品编码 物料号 零件号 序列号 序号 批号 批次号 批准文号 文号 发票号码 发票代码 发票号 合同号 "
    "合同编号 证书编号 证书号 注册号 备案号 案号 专利号 登记号 条码 条形码 编码 代码 股票代码 工号 学号 考号 准考证号 "
    "票号 车次 航班号 会员号 版本号 邮编 邮政编码 验证码 校验码 密码 卡密 车架号 发动机号 ISBN ISSN SKU SN "
    "order Order ORDER 第"
).split()
_CODE_LABEL_RE = re.compile("(?:" + "|".join(sorted(map(re.escape, _CODE_LABELS), key=len, reverse=True)) + r")[\s:：#＃.=]*(?:是|为|：)?[\s:：#＃]*$")
# Letters glued to a number usually make it a code (SKU13800138000); these labels do not.
_NUMBER_LETTER_LABELS = {"tel", "phone", "mobile", "mob", "cell", "qq", "v", "vx", "wx", "wechat", "weixin", "fax", "id", "no", "sfz"}
# A number followed by a unit is a quantity: 13800000000元 is 138 亿 yuan, not a phone.
_UNIT_AFTER = re.compile(
    r"\s*(?:元|块钱|块|角|万|亿|千|百|美元|美金|港元|港币|欧元|英镑|日元|韩元|卢布|人民币|RMB|rmb|USD|usd|吨|公斤|千克|克|斤|两|"
    r"米|公里|千米|平方|平米|亩|公顷|升|毫升|股|手|份|次|倍|度|%|％|‰|位|名|个|条|篇|页|期|届|件|台|辆|套|人次|人|户|家|张|岁)"
)
_CURRENCY_BEFORE = re.compile(r"(?:[￥¥$€£]|RMB|rmb|USD|CNY|人民币|金额|价格|售价|总价|报价|合计|共计|余额)[\s:：]*$")
_LABEL_WINDOW = 16  # characters before a number searched for its label


@dataclass(frozen=True)
class _Context:
    code_label: bool  # an order/product code label sits right before the number
    unit_after: bool  # a unit or currency makes it an amount
    plus: bool  # written with a leading + or 00 (an international phone number)


def _context(text: str, start: int, end: int) -> _Context:
    before = text[max(0, start - _LABEL_WINDOW) : start]
    # A number glued to letters (SKU13800138000, ORD-2024…) is a code, unless the letters are a label like Tel/QQ/vx.
    m = re.search(r"([A-Za-z]+)[-_/]?$", before)
    glued_code = bool(m) and m.group(1).lower() not in _NUMBER_LETTER_LABELS
    return _Context(
        code_label=glued_code or bool(_CODE_LABEL_RE.search(before)),
        unit_after=bool(_UNIT_AFTER.match(text, end)) or bool(_CURRENCY_BEFORE.search(before)),
        plus=before.endswith("+") or before.endswith("＋"),
    )


_PROVINCE_CODES = {
    *"11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65".split(),
    "71", "81", "82", "83",  # Taiwan, Hong Kong, Macau, and residence permits of their residents (83)
}


def is_resident_id(number: str) -> bool:
    """Return whether an 18-character number is a mainland resident ID: GB 11643 check digit, a real birth date, a province.

    ``stdnum.cn.ric`` computes the check digit and birth date; its county table is not used as a
    gate because it lacks codes still printed on valid cards (and most synthetic test IDs).

    >>> is_resident_id("110101198506120311"), is_resident_id("110101198506120312")
    (True, False)
    """
    if len(number) != 18 or not number[:17].isdigit() or number[:2] not in _PROVINCE_CODES:
        return False
    try:
        if ric.calc_check_digit(number) != number[17]:
            return False
        born = ric.get_birth_date(number)
    except Exception:  # stdnum raises its ValidationError subclasses and ValueError on odd input
        return False
    return 1900 <= born.year <= 2100


def is_old_resident_id(number: str) -> bool:
    """Return whether a 15-digit number is a first-generation resident ID (no check digit): province and a 19YYMMDD birth date."""
    if len(number) != 15 or not number.isdigit() or number[:2] not in _PROVINCE_CODES:
        return False
    try:
        ric.get_birth_date(number[:6] + "19" + number[6:12] + "0000")
    except Exception:
        return False
    return True


_MOBILE = re.compile(r"1[3-9]\d{9}")
# 149 (China Telecom data/mobile, in use since 2015) is missing from libphonenumber's metadata.
_MOBILE_PREFIXES_MISSING = ("149",)


def is_phone(national: str) -> bool:
    """Return whether digits (without +86) are a mainland mobile or fixed-line number by ``phonenumbers``.

    Toll-free and shared-cost service numbers (400/800) and short numbers (110, 96110) are not
    personal and are not matched.
    """
    if _MOBILE.fullmatch(national) and national.startswith(_MOBILE_PREFIXES_MISSING):
        return True
    if not (_MOBILE.fullmatch(national) or (national.startswith("0") and 10 <= len(national) <= 12)):
        return False
    try:
        parsed = phonenumbers.parse(national, "CN")
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(parsed)
    return phonenumbers.is_valid_number(parsed) and kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def is_landline_shape(national: str) -> bool:
    """Return whether digits read as area code + local number: 010/02x + 8 digits, or 0xxx + 7-8 digits, the local part starting 2-8.

    ``phonenumbers`` knows which cities dial 7 and which 8 digits; people (and test generators) do
    not, so a number written as 0451-6508476 is trusted by its shape when it is written as one.
    """
    if not national.startswith("0") or len(national) < 10:
        return False
    area = 3 if national[1] in "12" else 4
    local = national[area:]
    return (len(local) == 8 or (area == 4 and len(local) == 7)) and local[0] in "2345678"


_PHONE_LABEL = re.compile(r"(?:电话|座机|固话|手机|联系方式|联系|热线|传真|tel|Tel|TEL|phone|Phone|致电|拨打|打|拨|call|Call)[\s:：号码是为]*$")
_BANK_IIN = tuple("234569")  # UnionPay 62/60/9558, Visa 4, Mastercard 5 and 2-series, JCB 35
_BANK_LABEL = re.compile(r"(?:卡号|银行卡|信用卡|储蓄卡|借记卡|账号|帐号|账户|帐户|户名|开户行|收款|转账|汇款|card|Card)[^\n。！？]{0,8}$")


def _looks_like_id(digits: str) -> bool:
    """Return whether 18 digits have a resident ID's province and birth date (a mistyped ID is not a card)."""
    try:
        ric.get_birth_date(digits)
    except Exception:
        return False
    return digits[:2] in _PROVINCE_CODES


# A label written right before a number names its kind; then a unit or digits glued after it do not
# make it a quantity ("联系电话18448537153台": the 台 belongs to the text the number was pasted into).
# A phone label may share its number with other contact labels: 手机/微信：, 电话（微信同号）:, 微信、电话：.
_ALSO_LABELS = r"(?:[/／、,，|｜（(）)\s]*同?(?:微信号|微信|[Vv][Xx]|[Ww][Xx]|[Qq]{2}|ＱＱ|同号|电话|手机|号码|号))*[)）]?"
_TIGHT_LABELS = {
    "id_card": re.compile(r"(?:身份证|身份证号|身份证号码|证件号|证件号码|公民身份号码|身份号码|身份证件号码)[\s:：]*(?:是|为)?[\s:：]*$"),
    "bank_card": re.compile(r"(?:卡号|银行卡|银行卡号|信用卡|信用卡号|储蓄卡|借记卡|银行账号|银行帐号|收款账号|收款帐号)[\s:：]*(?:是|为)?[\s:：]*$"),
    "phone": re.compile(
        rf"(?:电话|手机|手机号|手机号码|电话号码|联系电话|联系方式|座机|固话|致电|拨打|[Tt]el|TEL|[Mm]obile){_ALSO_LABELS}[\s:：]*(?:是|为)?[\s:：]*$"
    ),
}


def tight_label(text: str, start: int) -> str | None:
    """Return the kind a label written right before ``text[start]`` names (电话：, 卡号, 身份证号码是), or None."""
    before = text[max(0, start - _LABEL_WINDOW) : start]
    for kind, label in _TIGHT_LABELS.items():
        if label.search(before):
            return kind
    return None


def _classify(digits: str, text: str, start: int, end: int, ctx: _Context) -> tuple[str, str] | None:
    """Return (kind, normal form) for a digit string found at text[start:end], or None."""
    n = len(digits)
    before = text[max(0, start - _LABEL_WINDOW) : start]
    if n == 18 and is_resident_id(digits):
        return "id_card", digits
    if n == 18 and _looks_like_id(digits):
        return None
    if digits.endswith("X"):
        return None
    if n == 15 and not ctx.code_label and is_old_resident_id(digits):
        return "id_card", digits
    if ctx.code_label or (ctx.unit_after and tight_label(text, start) is None):
        return None
    if 16 <= n <= 19 and luhn.is_valid(digits) and (digits.startswith(_BANK_IIN) or _BANK_LABEL.search(before)):
        return "bank_card", digits
    labelled = bool(_PHONE_LABEL.search(before))
    # an area code and a local number of the right lengths: 0757-5674211, 07575674211 (libphonenumber
    # knows each city's length, people writing numbers and synthetic test data do not)
    if is_phone(digits) or is_landline_shape(digits):
        return "phone", digits
    for cc in ("0086", "86"):  # +86 138…, 0086 10 1234 5678, +86-755-…
        if digits.startswith(cc) and (ctx.plus or cc == "0086" or text[start + len(cc) : start + len(cc) + 1] in " -"):
            rest = digits[len(cc) :]
            rest = rest if rest.startswith("1") and n - len(cc) == 11 else "0" + rest
            if is_phone(rest) or is_landline_shape(rest):
                return "phone", rest
    if 7 <= n <= 8 and digits[0] in "2345678" and labelled:  # a local number, labelled
        return "phone", digits
    return None


def find_numbers(text: str) -> list[Span]:
    """Return resident IDs, bank cards and phone numbers written as digit runs (with spaces or dashes)."""
    spans: list[Span] = []
    for run in _RUN.finditer(text):
        start = run.start()
        if run.end() - start < 7:
            continue  # too few digits for any number we look for (a cheap test for the many years and counts)
        if start and (text[start - 1] in ".,．" and start >= 2 and text[start - 2].isdigit()):
            continue  # the tail of 3.14 or 1,380,000
        if text.startswith((".", "．"), run.end()) and text[run.end() + 1 : run.end() + 2].isdigit():
            continue  # the integer part of a decimal: an amount or a version
        groups = list(_GROUP.finditer(text, start, run.end()))
        # a list of numbers thousands long ("1 2 3 …") is read in overlapping windows, so the work stays linear
        found: list[Span] = []
        for lo in range(0, max(1, len(groups) - _MAX_GROUPS + 1), _WINDOW):
            found.extend(_best_groupings(text, groups[lo : lo + _WINDOW + _MAX_GROUPS - 1]))
        spans.extend(found)
        for group in groups:
            if group.end() - group.start() > 11 and not any(s.start < group.end() and group.start() < s.end for s in found):
                spans.extend(find_glued(text, group.start(), group.end()))
    return spans


_GLUED_LENGTHS = {"id_card": (18,), "bank_card": (19, 18, 17, 16), "phone": (11,)}
_MAX_GLUED = 64  # longer digit strings are data (hashes, serials), not a number glued to another


def find_glued(text: str, start: int, end: int) -> list[Span]:
    """Return an identifier glued to other digits inside ``text[start:end]``, one digit string that no validator took whole.

    After a label (卡号62466235548949730901): the label's kind, read from the start at the lengths the
    kind has, the one its validator accepts (Luhn, the phone numbering plan, GB 11643). Without a
    label only a resident ID is looked for, at every offset: its check digit, province and birth date
    together pass about one random 18-digit window in 40,000, where Luhn passes one in ten and a
    phone prefix one in twenty, so only the ID is safe to find inside an unlabelled amount or code.
    """
    if end - start > _MAX_GLUED or _context(text, start, end).code_label:
        return []
    digits = ascii_digits(text[start:end])
    if len(digits) != end - start:
        return []  # an X inside: not a plain digit string
    kind = tight_label(text, start)
    if kind is not None:
        for n in _GLUED_LENGTHS[kind]:
            cand = digits[:n]
            if kind == "id_card" and is_resident_id(cand):
                return [Span(start, start + n, kind, cand)]
            if kind == "bank_card" and luhn.is_valid(cand) and cand.startswith(_BANK_IIN):
                return [Span(start, start + n, kind, cand)]
            if kind == "phone" and _MOBILE.fullmatch(cand) and is_phone(cand):
                return [Span(start, start + n, kind, cand)]
    for off in range(len(digits) - 17):
        if is_resident_id(digits[off : off + 18]):
            return [Span(start + off, start + off + 18, "id_card", digits[off : off + 18])]
    return []


def _best_groupings(text: str, groups: list[re.Match[str]]) -> list[Span]:
    """Return the non-overlapping findings among contiguous group sequences of one run, longest first."""
    found: list[Span] = []
    taken = [False] * len(groups)
    sizes = [m.end() - m.start() for m in groups]
    candidates = []
    for i in range(len(groups)):
        n = 0
        for j in range(i + 1, min(len(groups), i + _MAX_GROUPS) + 1):
            n += sizes[j - 1]
            if 7 <= n <= 21:  # no number we look for is shorter or longer
                candidates.append((j - i, i, j))
    for _, i, j in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if any(taken[i:j]):
            continue
        start, end = groups[i].start(), groups[j - 1].end()
        hit = _classify(ascii_digits(text[start:end]), text, start, end, _context(text, start, end))
        if hit is None:
            continue
        kind, value = hit
        plus = text[start - 1 : start] in ("+", "＋")  # the + of +86 is part of the phone number
        found.append(Span(start - 1 if plus and kind == "phone" else start, end, kind, value))
        for k in range(i, j):
            taken[k] = True
    return found


# Landlines written with the area code in brackets: (010)12345678, （0755）8765-4321, (+86)13800138000.
_BRACKETED = re.compile(rf"[(（]\s*(\+?86|0[{_D}]{{2,3}})\s*[)）]\s*-?\s*([{_D}]{{3,4}}(?:{_SEP}?[{_D}]{{4}})(?:-?[{_D}]{{0,4}})?)(?![{_D}])")


def find_bracketed_phones(text: str) -> list[Span]:
    """Return phone numbers whose area code or +86 is written in brackets."""
    spans: list[Span] = []
    for m in _BRACKETED.finditer(text):
        code, local = ascii_digits(m.group(1)), ascii_digits(m.group(2))
        national = local if code.endswith("86") else code + local
        if code.endswith("86") and not national.startswith("1"):
            national = "0" + national
        if is_phone(national) or is_landline_shape(national):
            spans.append(Span(m.start(), m.end(), "phone", national))
    return spans


# ------------------------------------------------------------------------------------------------ e-mail, IP

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9][A-Za-z0-9._%+\-]{0,63})\s?(?:@|＠|\[at\]|\(at\)|（at）|#)\s?"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![A-Za-z0-9\-])"
)
# "name#qq.com（#换成@）": the # spelling is only trusted with the big mail providers.
_MAIL_HOSTS = ("qq.com", "163.com", "126.com", "yeah.net", "sina.com", "sina.cn", "sohu.com", "foxmail.com", "gmail.com",
               "hotmail.com", "outlook.com", "139.com", "189.cn", "aliyun.com", "yahoo.com", "icloud.com", "live.com")


def find_emails(text: str) -> list[Span]:
    """Return e-mail addresses, also those written with ＠, [at] or (at)."""
    spans: list[Span] = []
    for m in _EMAIL.finditer(text):
        local, domain = m.group(1).rstrip("."), m.group(2).lower()
        if "#" in m.group(0) and not domain.endswith(_MAIL_HOSTS):
            continue
        if ".." in local or domain.split(".")[-1].isdigit():
            continue
        spans.append(Span(m.start(), m.end(), "email", f"{local}@{domain}".lower()))
    return spans


_IPV4 = re.compile(rf"(?<![{_D}.])(?:[0-9]{{1,3}}\.){{3}}[0-9]{{1,3}}(?![0-9]|\.[0-9])")
# a run of hex digits and colons (with an IPv4 tail); ipaddress decides. A pattern that may start
# with nothing would be tried at every position of every text.
_IPV6 = re.compile(r"(?<![0-9A-Za-z_.])[0-9A-Fa-f:]{3,39}+(?:(?<=:)(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![0-9A-Za-z_:.])")
_VERSION_BEFORE = re.compile(r"(?:[vV]|[vV]er|[vV]ersion|版本|版本号|固件|build|Build)[\s:：.]*$")


def find_ips(text: str) -> list[Span]:
    """Return IPv4 and IPv6 addresses that ``ipaddress`` accepts; a version number like v1.2.3.4 is left alone."""
    spans: list[Span] = []
    if text.count(".") < 3 and text.count(":") < 2:
        return spans  # most documents: no need to run the patterns
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text, max(0, m.start() - 10), m.start()):
            continue
        try:
            spans.append(Span(m.start(), m.end(), "ip", str(ipaddress.IPv4Address(m.group()))))
        except ValueError:
            pass
    for m in _IPV6.finditer(text) if text.count(":") >= 2 else ():
        cand = m.group()
        if cand.count(":") < 2 or sum(c.isalnum() for c in cand) < 3:
            continue
        try:
            spans.append(Span(m.start(), m.end(), "ip", ipaddress.IPv6Address(cand).compressed))
        except ValueError:
            pass
    return spans


# ------------------------------------------------------------------------------------------------ labelled ids

_QQ = re.compile(
    r"(?<![A-Za-z])(?:[Qq]{2}|ＱＱ|扣扣|企鹅号?)(?:群号码|群号|群|号码|号|账号|帐号)?\s*(?:[:：=]|是|为|号是)?\s*"
    rf"([1-9][{_D}]{{4,11}})(?![{_D}])"
)
_WECHAT = re.compile(
    r"(?<![A-Za-z])(?:微信号|微信|威信|薇信|[Vv]信|[Vv][Xx]|[Ww][Xx]|weixin|Weixin|WeChat|Wechat|wechat|加[Vv]|\+[Vv])"
    r"(?:号|ID|id|账号)?\s*([:：=]|是|为)?\s*([A-Za-z][-_A-Za-z0-9]{3,19}|[1-9][0-9]{4,11})(?![-_A-Za-z0-9])"
)
_WXID = re.compile(r"(?<![A-Za-z0-9_])wxid_[a-z0-9]{6,20}(?![A-Za-z0-9_])")
# Words that follow 微信 without being an id.
_WECHAT_WORDS = {"wechat", "weixin", "account", "official", "iphone", "android", "windows", "desktop", "online", "moments"}


def find_qq(text: str) -> list[Span]:
    """Return QQ numbers (and QQ group numbers) written after a QQ label."""
    if not any(w in text for w in ("QQ", "qq", "Qq", "qQ", "ＱＱ", "扣扣", "企鹅")):
        return []
    return [Span(m.start(1), m.end(1), "qq", ascii_digits(m.group(1))) for m in _QQ.finditer(text)]


def find_wechat(text: str) -> list[Span]:
    """Return WeChat ids written after a WeChat label (微信/VX/wx), and raw wxid_ ids.

    Without a colon, an id must hold a digit, _ or -: 微信 iPhone版 is not an id, 加微信 fuli520 is.
    """
    spans: list[Span] = []
    low = text.lower()
    if not any(w in low for w in ("微信", "威信", "薇信", "v信", "vx", "wx", "weixin", "wechat", "加v", "+v")):
        return spans
    for m in _WECHAT.finditer(text):
        value = m.group(2)
        if value.lower() in _WECHAT_WORDS:
            continue
        if m.group(1) is None and not any(c.isdigit() or c in "_-" for c in value):
            continue
        if len(value) < 6 and (m.group(1) is None or value.isalpha()):
            continue  # WeChat asks for 6-20 characters; shorter ones are trusted only after a colon, with a digit
        if value.isdigit() and is_phone(value):
            # A WeChat id starts with a letter; digits after 微信 are the phone number the account is found by.
            spans.append(Span(m.start(2), m.end(2), "phone", value))
            continue
        spans.append(Span(m.start(2), m.end(2), "wechat", value.lower()))
    spans += [Span(m.start(), m.end(), "wechat", m.group()) for m in _WXID.finditer(text)]
    return spans


# ------------------------------------------------------------------------------------------------ plates

_PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE = re.compile(
    rf"(?<![A-Za-z0-9])([{_PLATE_PROVINCES}])\s?([A-Za-z])\s?[·•・.\-－ ]?\s?([A-Za-z0-9]{{5,6}}|[A-Za-z0-9]{{4}}[学警港澳挂领试超])(?![A-Za-z0-9])"
)


def is_plate_serial(serial: str) -> bool:
    """Return whether the part after 京A is a plate serial: 5 characters with at most 2 letters and I/O not used,
    a new-energy 6 (D/F then 5, or 5 then D/F), or 4 then 学/警/挂….

    >>> [is_plate_serial(s) for s in ("12345", "AB123", "D12345", "12345F", "1234学", "ABC12", "123456")]
    [True, True, True, True, True, False, False]
    """
    s = serial.upper()
    if "I" in s or "O" in s:
        return False
    if len(s) == 6:
        return bool(re.fullmatch(r"[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF]", s))
    if len(s) == 5 and s[-1] in "学警港澳挂领试超":
        return s[:4].isascii() and s[:4].isalnum()
    return len(s) == 5 and sum(c.isalpha() for c in s) <= 2 and sum(c.isdigit() for c in s) >= 3


def find_plates(text: str) -> list[Span]:
    """Return vehicle licence plates: 京A12345, 粤B·D12345 (new energy), 沪A-1234学."""
    spans: list[Span] = []
    for m in _PLATE.finditer(text):
        if is_plate_serial(m.group(3)):
            spans.append(Span(m.start(), m.end(), "plate", (m.group(1) + m.group(2) + m.group(3)).upper()))
    return spans


# ------------------------------------------------------------------------------------------------ addresses

_HAN = "\u4e00-\u9fff"
_ADDR_LABEL = re.compile(
    r"(?:收货地址|送货地址|通讯地址|通信地址|联系地址|家庭地址|家庭住址|户籍地址|详细地址|居住地址|现住址|住址|地址|户籍地|"
    r"家住|现住|住在|居住在|居住于|住于|寄到|寄往|送到|搬到|搬去)\s*(?:[:：]|是|为|在)?\s*"
)
_ADDR_STOP = "，。；;！!？?、\n\r\t|｜（）()【】[]<>《》“”\"'"
_ADDR_VALUE = re.compile("[^" + re.escape(_ADDR_STOP) + "]{0,80}")
# Units of an address that end a street-level address; what follows the last one is not part of it.
_ADDR_UNIT = re.compile(
    r"(?:[0-9０-９A-Za-z\-－]+(?:号楼|号院|号|室|栋|幢|座|楼|层|单元|户|组|弄|巷)|"
    r"(?:小区|大厦|花园|公寓|广场|新村|家园|社区|胡同|大道|大街|路|街|巷|弄|村|屯|苑|里|庄|院|城))"
)
_STREET = re.compile(r"(?:路|街|巷|弄|道|胡同|村|屯|小区|大厦|花园|公寓|新村|家园|苑|社区)")
_NUMBERED = re.compile(r"[0-9０-９一二三四五六七八九十百]+(?:号|栋|幢|单元|室|弄|组|座)|[A-Za-z]座")
_ADMIN = re.compile(r"(?:省|市|区|县|镇|乡|旗|州)")
_PROVINCES = (
    "北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|"
    "陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门"
)
# An address written without a label: admin units (province, city, district) and a street with a
# number. It starts at a clause boundary, after a preposition (在/到/于…) or right after an admin unit,
# so "他走到中山路12号" gives 中山路12号, not 走到中山路12号.
_ADDR_START = rf"(?:(?<![{_HAN}])|(?<=[在到于住至往是为从及和与]))"
_ADDR_ADMIN = (
    rf"(?:(?:{_PROVINCES})(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)?(?:[{_HAN}]{{1,4}}?(?:市|州|盟))?"
    rf"|[{_HAN}]{{2,4}}?(?:市|州|盟))(?:[{_HAN}]{{1,5}}?(?:区|县|旗))?|[{_HAN}]{{1,5}}?(?:区|县|旗)"
)
_STREET_END = "(?:路|大街|街|大道|巷|弄|胡同|道)"
# after admin units the street may carry an unsuffixed district (大兴海门街); alone it is 2-4 characters
_ADDR_STREET = rf"(?:{_ADDR_ADMIN})[{_HAN}0-9]{{1,8}}?{_STREET_END}|[{_HAN}0-9]{{2,4}}?{_STREET_END}"
_ADDR_NUMBER = r"(?:[0-9０-９]{1,5}(?:[-－][0-9]{1,4})?号(?!线)|[A-Za-z]座|[0-9０-９]{1,5}(?:号楼|栋|幢|座|弄))"
_ADDR_ANCHOR = re.compile(r"(?:路|街|道|巷|弄|胡同)[0-9０-９]|[A-Za-z]座")
_ADDR_LABEL_CHARS = ("址", "住", "寄", "送到", "搬", "户籍")
_UNLABELLED_ADDR = re.compile(rf"{_ADDR_START}(?:{_ADDR_STREET}){_ADDR_NUMBER}")
_ADDR_TAIL = re.compile(rf"(?:[{_HAN}A-Za-z0-9０-９\-#]{{0,12}}?(?:[0-9０-９A-Za-z]+(?:号楼|号院|号|室|栋|幢|座|楼|层|单元|户)))*(?:[0-9]{{1,5}}(?![0-9]))?(?:\s[0-9]{{6}}(?![0-9]))?")


def _trim_address(value: str) -> int:
    """Return how much of a labelled value is the address: up to the end of its last address unit."""
    end = 0
    for m in _ADDR_UNIT.finditer(value):
        end = m.end()
    # "3单元502": a bare room number after the last unit
    m = re.match(r"[0-9０-９A-Za-z\-]+(?:室|号|户)?", value[end:])
    return end + (m.end() if m and end else 0)


def find_addresses(text: str) -> list[Span]:
    """Return street-level addresses: after a label (地址：…, 住在…路…号), or written from the province down to a street.

    A labelled value must name a street, village or building, or a number: 住在北京 is not an address.
    """
    spans: list[Span] = []
    stop = 0
    for m in _ADDR_LABEL.finditer(text) if any(w in text for w in _ADDR_LABEL_CHARS) else ():
        if m.start() < stop:
            continue  # a label inside the value of the one before: that stretch was read already
        start = m.end()
        stop = _ADDR_VALUE.match(text, start).end()
        end = start + _trim_address(text[start:stop])
        value = text[start:end].strip()
        if len(value) >= 4 and (_NUMBERED.search(value) or (_STREET.search(value) and _ADMIN.search(value))):
            end = start + len(text[start:end].rstrip())
            end = _ADDR_TAIL.match(text, end).end()  # a postcode after the address
            spans.append(Span(start, end, "address", re.sub(r"\s+", "", text[start:end])))
    labelled = [(s.start, s.end) for s in spans]
    # The unlabelled pattern is tried only around a street number (路12号, I座): running it at every
    # position of every document costs more than all other detectors together.
    for lo, hi in _windows(m.span() for m in _ADDR_ANCHOR.finditer(text)):
        for m in _UNLABELLED_ADDR.finditer(text, lo, hi):
            if any(a < m.end() and m.start() < b for a, b in labelled):
                continue  # the label said where it starts (not at 家住成都市… or 址东风巷…)
            tail = _ADDR_TAIL.match(text, m.end())
            end = tail.end() if tail else m.end()
            spans.append(Span(m.start(), end, "address", re.sub(r"\s+", "", text[m.start() : end])))
    return spans


def _windows(anchors: Iterable[tuple[int, int]], before: int = 40, after: int = 12) -> Iterator[tuple[int, int]]:
    """Yield the stretches of text around anchors, nearby anchors merged, so each character is scanned once."""
    lo = hi = -1
    for start, end in anchors:
        if start - before > hi:
            if hi >= 0:
                yield lo, hi
            lo = max(0, start - before)
        hi = end + after
    if hi >= 0:
        yield lo, hi


# ------------------------------------------------------------------------------------------------ together

DETECTORS = {
    "email": find_emails,
    "id_card": find_numbers,
    "bank_card": find_numbers,
    "phone": find_numbers,
    "ip": find_ips,
    "qq": find_qq,
    "wechat": find_wechat,
    "plate": find_plates,
    "address": find_addresses,
}


def find_pattern_pii(text: str, kinds: set[str] | frozenset[str]) -> list[Span]:
    """Return every pattern-found span of the given kinds (overlapping; see ``resolve_overlaps``)."""
    spans: list[Span] = []
    if kinds & {"id_card", "bank_card", "phone"}:
        spans += find_numbers(text) + find_bracketed_phones(text)
    for kind in ("email", "ip", "qq", "wechat", "plate", "address"):
        if kind in kinds:
            spans += DETECTORS[kind](text)
    # E-mails are looked for even when not enabled, so their digits are never read as phones
    # (13800138000@qq.com is an e-mail); the caller keeps only enabled kinds once overlaps are settled.
    if "email" not in kinds:
        spans += find_emails(text)
    return spans


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Return non-overlapping spans in text order; where two overlap, the earlier kind in PII_TYPES wins, then the longer."""
    rank = {kind: i for i, kind in enumerate(PII_TYPES)}
    chosen: list[Span] = []
    occupied: list[tuple[int, int]] = []
    for span in sorted(spans, key=lambda s: (rank[s.kind], -(s.end - s.start), s.start)):
        if span.end <= span.start or any(span.start < e and s < span.end for s, e in occupied):
            continue
        chosen.append(span)
        occupied.append((span.start, span.end))
    return sorted(chosen, key=lambda s: s.start)
