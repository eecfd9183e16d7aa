"""The reference LM (Kneser-Ney, perplexity) and the evidence labels: real tiny Chinese texts, exact outcomes."""

import random
from collections import Counter

import numpy as np
import pytest

from tasks.quality import QualityConfig, collect_examples
from tasks.quality.evidence import (
    boilerplate_blocks,
    corrupted_examples,
    held_for_labels,
    keyword_stuffing,
    shuffled_sentences,
    shuffled_words,
    split_reference,
    truncated,
)
from tasks.quality.lm import CharLM, fold_units
from tasks.quality.report import label_source_metrics
from tasks.quality.stage import ppl_bucket
from tasks.quality.train import fit_reference_lm

TRAIN = [
    "今天天气很好，我们去公园散步。",
    "明天天气不好，我们在家看书。",
    "公园里有很多人在散步，天气很好。",
]
# Written for this test: a paragraph of news, not in the reference set, the seed set or the sample site.
PARAGRAPH = (
    "市文化和旅游局昨天发布消息，今年春节假期全市共接待游客三百二十万人次，同比增长百分之十八。"
    "各大景区推出了灯会、庙会和非遗展演等活动，博物馆和图书馆延长了开放时间，吸引了大批市民和外地游客。"
)
PAGE = """<html><head><title>春节假期全市接待游客三百二十万人次_新闻中心</title></head><body>
<div class="nav"><a href="/">首页</a> <a href="/news">新闻中心</a> <a href="/city">本地新闻</a> <a href="/travel">文化旅游</a></div>
<div class="article"><h1>春节假期全市接待游客三百二十万人次</h1>
<p>市文化和旅游局昨天发布消息，今年春节假期全市共接待游客三百二十万人次，同比增长百分之十八。</p>
<p>各大景区推出了灯会、庙会和非遗展演等活动，博物馆和图书馆延长了开放时间，吸引了大批市民和外地游客。</p>
<p>据介绍，今年假期期间，全市旅游收入达到二十六亿元，酒店平均入住率超过七成，多家民宿提前一周满房。</p></div>
<div class="related"><h3>相关新闻</h3><ul><li><a href="/1">元宵节灯会下周开幕 展期持续半个月</a></li>
<li><a href="/2">我市新增三处国家级旅游休闲街区</a></li><li><a href="/3">春运返程高峰来临 铁路部门加开列车</a></li></ul></div>
<div class="footer">版权所有 市新闻网 未经授权禁止转载 联系我们 广告服务 网站地图</div>
</body></html>"""


@pytest.fixture(scope="module")
def reference_lm() -> CharLM:
    """The reference LM fitted on the bundled reference text with the default config (about 2 s)."""
    return fit_reference_lm(QualityConfig())


def test_probabilities_sum_to_one_over_the_vocabulary():
    lm = CharLM.fit(TRAIN, order=3)
    units, _ = fold_units(["".join(TRAIN)], 1)
    vocab = [chr(c) for c in np.unique(units)]
    assert lm.vocab == len(vocab) == 24  # 22 characters, the comma and the full stop
    for context in ["天气", "我们去", "很", "", "陌生"]:  # seen contexts, an unseen one, the start of a text
        texts = [context + c for c in [*vocab, "龘"]]  # the vocabulary, then an unseen character: the unknown slot
        logp, _, lengths = lm.position_logprobs(texts)
        last = np.cumsum(lengths) - 1
        assert np.exp(logp[last]).sum() == pytest.approx(1.0, abs=1e-5), context


def test_seen_text_is_likelier_than_its_reversal():
    lm = CharLM.fit(TRAIN, order=3)
    ppl = lm.perplexities(["今天天气很好", "好很气天天今", ""])
    assert ppl[0] < ppl[1] and ppl[2] == 0.0
    assert lm.perplexities(["ＡＢＣ１２３"])[0] == lm.perplexities(["xyz999"])[0]  # full width, letters, digits fold


def test_saved_arrays_give_the_same_model():
    lm = CharLM.fit(TRAIN, order=2)
    again = CharLM.from_saved(lm.to_dict(), lm.to_arrays())
    assert np.array_equal(again.perplexities(TRAIN), lm.perplexities(TRAIN))
    with pytest.raises(ValueError, match="version"):
        CharLM.from_saved({**lm.to_dict(), "version": "char_kn_v0"}, lm.to_arrays())


def test_a_shuffled_paragraph_scores_below_its_original(reference_lm):
    rng = random.Random(0)
    salad = shuffled_words(PARAGRAPH, rng, lambda t: list(t))  # characters shuffled: the hardest order loss
    words = shuffled_words(PARAGRAPH, random.Random(1), lambda t: [t[i : i + 2] for i in range(0, len(t), 2)])
    ppl = reference_lm.perplexities([PARAGRAPH, salad, words])
    assert ppl[0] < 120 and ppl[1] > 3 * ppl[0] and ppl[2] > 1.5 * ppl[0], ppl
    assert sorted(salad) == sorted(PARAGRAPH)
    # the order signal the classifier reads: perplexity over frequent-character pairs (的, ，, 了 …) rises too
    frequent = reference_lm.perplexity_signals([PARAGRAPH, salad, words]).frequent
    assert frequent[1] > 2 * frequent[0] and frequent[2] > 1.3 * frequent[0], frequent


def test_frequent_pairs_are_domain_neutral(reference_lm):
    # Written for this test: a product description whose terms the 1998 news reference never saw. Its perplexity
    # over all characters is above a shuffled news paragraph's, but over frequent pairs it stays below.
    product = ("这款登山鞋的鞋面采用防水透气膜和耐磨网布拼接，在雨天和涉水路段也能保持脚部干爽。"
               "大底采用高耐磨橡胶和深齿纹设计，在泥地、碎石和湿滑的岩面上都有很好的抓地力。")
    salad = shuffled_words(PARAGRAPH, random.Random(1), lambda t: [t[i : i + 2] for i in range(0, len(t), 2)])
    signals = reference_lm.perplexity_signals([product, salad])
    assert signals.frequent[0] < signals.frequent[1], signals
    assert reference_lm.frequent.dtype == np.uint32 and ord("的") in reference_lm.frequent and 0x20 not in reference_lm.frequent


def test_a_boilerplate_block_scores_below_the_article_it_came_from(reference_lm):
    blocks = boilerplate_blocks(PAGE)
    assert blocks == [
        "相关新闻\n元宵节灯会下周开幕 展期持续半个月\n我市新增三处国家级旅游休闲街区\n春运返程高峰来临 铁路部门加开列车\n"
        "版权所有 市新闻网 未经授权禁止转载 联系我们 广告服务 网站地图",
    ]  # the nav line is 15 characters: under the 20 a block needs
    ppl = reference_lm.perplexities([PARAGRAPH, blocks[0]])
    assert ppl[1] > 2 * ppl[0], ppl


def test_corruptions_of_a_text():
    words = lambda t: [t[i : i + 2] for i in range(0, len(t), 2)]  # noqa: E731
    article = PARAGRAPH + "据介绍，今年假期期间，全市旅游收入达到二十六亿元。"
    sentences = shuffled_sentences(article, random.Random(0))
    assert sentences != article and sorted(sentences) == sorted(article)
    assert shuffled_sentences("只有一句话。", random.Random(0)) is None
    cut = truncated(PARAGRAPH, random.Random(0))
    assert 20 <= len(cut) <= 60 and cut in PARAGRAPH
    stuffed = keyword_stuffing(PARAGRAPH, random.Random(3), words)
    assert stuffed != PARAGRAPH and len(stuffed) >= 20
    made = corrupted_examples([{"text": article, "label": "high", "origin": "seed.jsonl"}], words, per_kind=1)
    assert [(e["origin"], e["label"]) for e in made] == [
        ("shuffled_words", "low"), ("keyword_stuffing", "low"), ("repeated", "low"), ("shuffled_sentences", "medium"),
        ("truncated", "medium"),
    ]


def test_reference_split_is_by_text_and_stable():
    paragraphs = [f"第{i}段：今天天气很好，我们去公园散步。" for i in range(400)]
    lm, held = split_reference(paragraphs, 0.2)
    assert len(lm) + len(held) == 400 and not set(lm) & set(held)
    assert 40 <= len(held) <= 120  # about a fifth, in groups of four
    assert held_for_labels(held[0], 0.2) and not held_for_labels(held[0], 0.0)


def test_label_builder_yields_each_source_with_its_count():
    cfg = QualityConfig(reference_max_examples=50, boilerplate_paths=["data/sample/site"], corruptions=True, corruptions_per_kind=20)
    examples = collect_examples(cfg)
    counts = Counter((e["origin"], e["label"]) for e in examples)
    assert counts == {
        ("seed.jsonl", "high"): 71, ("seed.jsonl", "medium"): 69, ("seed.jsonl", "low"): 74,
        ("reference", "high"): 50,
        ("boilerplate", "low"): 68,
        ("shuffled_words", "low"): 20, ("keyword_stuffing", "low"): 20,  # repeated: not a default kind
        ("shuffled_sentences", "medium"): 20, ("truncated", "medium"): 20,
    }
    off = collect_examples(cfg.model_copy(update={"corruptions": False, "boilerplate_paths": [], "reference_max_examples": 0}))
    assert {e["origin"] for e in off} == {"seed.jsonl"}
    # the counts reach the quality training run in MLflow as metrics, one per source and label and one per source
    sources: dict[str, dict[str, int]] = {}
    for (origin, label), n in counts.items():
        sources.setdefault(origin, {})[label] = n
    metrics = label_source_metrics({"label_sources": sources})
    assert metrics["labels.boilerplate.low"] == 68 and metrics["labels.seed.jsonl"] == 214
    assert metrics["labels.reference"] == 50 and "labels.repeated" not in metrics


def test_ppl_buckets():
    assert [ppl_bucket(p, 60.0, 150.0) for p in (30.0, 60.0, 100.0, 150.0, 151.0)] == ["head", "head", "middle", "middle", "tail"]
