"""Build seed.jsonl, the quality classifier's labelled seed set: python data/sample/quality/build_seed.py [--check]

The hand-written rows come from seed_text.py; the generated `low` rows are made here from word lists and from
texts written for that alone (shuffled words, mojibake) or the medium and low rows (repetition), with a fixed seed, so a rebuild is
byte-identical. --check rebuilds in memory and fails if seed.jsonl differs.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from seed_text import HIGH, LOW, MEDIUM, SCRAMBLE_SOURCES  # beside this script, which Python puts on the path

HERE = Path(__file__).resolve().parent

SEED = 20260301
OUT = HERE / "seed.jsonl"

# SEO stuffing: a commercial head phrase followed by its search-suggestion tails
SEO_HEADS = ["上海婚纱摄影", "深圳网站建设", "广州空调维修", "杭州租房", "成都火锅加盟", "武汉驾校", "南京月嫂",
             "西安旅游攻略", "重庆防水补漏", "苏州代理记账", "天津开锁公司", "郑州考研培训"]
SEO_TAILS = ["哪家好", "价格", "电话", "排名", "多少钱", "公司", "推荐", "官网", "报价", "十大品牌", "怎么样",
             "附近", "24小时", "上门服务", "口碑", "联系方式", "最新", "便宜", "正规", "靠谱吗"]
PUNCT = "，。！？、；：…"


def keyword_stuffing(rng: random.Random) -> tuple[str, str]:
    head = rng.choice(SEO_HEADS)
    tails = rng.sample(SEO_TAILS, rng.randint(8, 14))
    sep = rng.choice([" ", "，", "|", " "])
    return "generated: SEO keyword stuffing", sep.join([head] + [head + t for t in tails])


def han_gibberish(rng: random.Random) -> tuple[str, str]:
    chars = []
    for _ in range(rng.randint(40, 120)):
        chars.append(chr(rng.randint(0x4E00, 0x9FA5)))
        if rng.random() < 0.08:
            chars.append(rng.choice(PUNCT))
    return "generated: random Han characters, no words", "".join(chars)


def word_salad(rng: random.Random, segment, text: str) -> tuple[str, str]:
    words = [w for w in segment(text) if w.strip()]
    rng.shuffle(words)
    return "generated: the words of a good text in random order", "".join(words)


def repeated(rng: random.Random) -> tuple[str, str]:
    _, text = rng.choice(MEDIUM[:28] + LOW[:12])
    sentence = text.split("\n")[0]
    n = rng.randint(5, 9)
    sep = rng.choice(["", "\n", " "])
    return "generated: one line repeated", sep.join([sentence] * n)


def mojibake(rng: random.Random, text: str, kind: str) -> tuple[str, str]:
    if kind == "gbk":  # UTF-8 bytes read as GBK: the classic 鍏徃 mojibake
        garbled = text.encode("utf-8").decode("gbk", errors="replace")
    elif kind == "latin1":
        garbled = text.encode("utf-8").decode("latin-1")
        garbled = "".join(c for c in garbled if c.isprintable())
    else:  # 锟斤拷 / 烫烫烫: replacement characters and uninitialised memory, as they appear on old pages
        pieces = list(text)
        for i in range(0, len(pieces), rng.randint(3, 6)):
            pieces[i] = rng.choice(["锟斤拷", "烫烫烫", "屯屯屯", "\ufffd"])
        garbled = "".join(pieces)
    return f"generated: mojibake ({kind})", garbled[:300]


def build() -> str:
    from tasks.clean.segment import Segmenter

    segment = Segmenter()
    rng = random.Random(SEED)
    rows = [{"text": t, "label": "high", "reason": r} for r, t in HIGH]
    rows += [{"text": t, "label": "medium", "reason": r} for r, t in MEDIUM]
    rows += [{"text": t, "label": "low", "reason": r} for r, t in LOW]
    generated = [keyword_stuffing(rng) for _ in range(10)]
    generated += [han_gibberish(rng) for _ in range(8)]
    generated += [word_salad(rng, segment, text) for text in rng.sample(SCRAMBLE_SOURCES, 8)]
    generated += [repeated(rng) for _ in range(7)]
    generated += [mojibake(rng, text, ("gbk", "latin1", "kunkin")[i % 3]) for i, text in enumerate(rng.sample(SCRAMBLE_SOURCES, 6))]
    rows += [{"text": t, "label": "low", "reason": r} for r, t in generated]
    texts = [row["text"] for row in rows]
    assert len(set(texts)) == len(texts), "duplicate texts in the seed set"
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main() -> None:
    content = build()
    if "--check" in sys.argv:
        if OUT.read_text(encoding="utf-8") != content:
            sys.exit(f"{OUT} differs from a rebuild: run python {Path(__file__).name}")
        print(f"{OUT} is up to date")
        return
    OUT.write_text(content, encoding="utf-8")
    counts = {}
    for line in content.splitlines():
        label = json.loads(line)["label"]
        counts[label] = counts.get(label, 0) + 1
    print(f"wrote {OUT}: {counts}")


if __name__ == "__main__":
    main()
