"""The quality stage on real Chinese text: training on the seed set, ranking, save/load, routing, weak labels, the annotator."""

import hashlib
import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from tasks.clean.config import CleanConfig
from tasks.clean.stage import build_steps as clean_steps
from tasks.quality import (
    LABELS,
    MODEL_VERSION,
    QUALITY_REASONS,
    AnnotatorConfig,
    LabelError,
    ModelError,
    QualityConfig,
    QualityModel,
    StrictConfig,
    build_steps,
    collect_examples,
    read_labelled,
    strict_reason,
    train_classifier,
    weak_labels,
)
from tasks.quality.annotate import Annotator, api_key_from_env, parse_reply
from tasks.quality.config import DEFAULT_WEAK_LOW_REASONS, resolve_path
from tasks.quality.features import Featurizer, FeatureSettings
from tasks.quality.report import confusion_figure, read_scores, score_histogram, source_histogram, tier_table
from tasks.quality.task import score_shard, train_quality_model
from tasks.records import Reject, make_doc
from tasks.steps import process_shard, run_steps
from tasks.store import StageDir, read_shard, write_shard

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "sample" / "quality" / "seed.jsonl"
GOLD = ROOT / "data" / "sample" / "gold"

# Written for this test: three news items, not in the seed set or the sample site.
NEWS = [
    "市气象台今天发布消息，受暖湿气流影响，明后两天全市将出现中到大雨，局部地区有暴雨，累计降水量可达五十毫米。交通部门提醒驾驶员"
    "雨天减速慢行，注意保持安全车距，尽量避开积水路段；低洼地区的居民和商户要提前做好防范准备。",
    "研究人员在南海海域新发现一种深海珊瑚，其生长深度超过一千米。论文作者介绍，这种珊瑚生长十分缓慢，每年只长高几毫米，"
    "它的发现有助于了解深海生态系统的分布规律。相关成果已经发表在国际学术期刊上，研究团队计划明年开展进一步调查。",
    "本届农产品博览会共吸引来自全国二十多个省份的六百余家企业参展，展品涵盖粮油、果蔬、茶叶和水产等类别。主办方介绍，"
    "展会期间还将举办多场产销对接活动，帮助农业企业拓宽销售渠道，预计现场签约金额将超过十亿元。",
]
SPAM = [
    "百家乐真人荷官在线发牌，注册就送888元彩金，线上赌场天天返水，输了包赔，赶快加微信咨询客服领取体验金！\n"
    "澳门赌场 时时彩 老虎机 牛牛 全天在线，扫码进群！",
    "传奇私服今晚开服，一刀九九九，上线送神装，外挂免费用，代练代打，游戏金币秒发货，加QQ群领礼包，兄弟们快来！\n"
    "私服 外挂 金币 代练 加群",
    "长沙装修 长沙装修公司 长沙装修哪家好 长沙装修价格 长沙装修报价 长沙装修设计 长沙装修效果图 长沙装修电话 长沙装修排名",
]
GIBBERISH = [
    "鞲飏镢蘩彀砉黟氍觯缯颟螭踯鳜鲥犭丌夬卮氐乇，瞀蠡赑屃饕餮觊觎魑魅魍魉黾黹黻黼，龃龉囹圄耄耋彳亍踟蹰蹀躞倥偬。",
    "的了是在我有和就不人都一个上也很到说要去你会着没有看好自己这，那么什么可以因为所以但是如果还是已经。",
]
REPEATED = "周末一起去爬山吧，天气不错。\n" * 5
CHATTER = "楼主好，我也遇到过这个问题，后来换了个充电器就好了，你可以试试看。"


@pytest.fixture(scope="module")
def trained():
    """The classifier trained on the bundled seed set with the default config (about 3 s)."""
    cfg = QualityConfig()
    return train_classifier(collect_examples(cfg), cfg)


@pytest.fixture(scope="module")
def model(trained) -> QualityModel:
    return trained.model


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory) -> Path:
    """A clean stage folder made by the real clean stage: three news kept; ads, a repeated line and short posts rejected."""
    root = tmp_path_factory.mktemp("clean-run")
    texts = [("news", t) for t in NEWS] + [("forum", SPAM[0]), ("forum", SPAM[1]), ("forum", REPEATED), ("forum", CHATTER), ("forum", "顶一下")]
    docs = [make_doc(f"http://example.com/{i}", t, source=s) for i, (s, t) in enumerate(texts)]
    write_shard(root / "in" / "part-00000.parquet", docs)
    out = StageDir(root / "clean")
    stats = process_shard("clean", clean_steps(CleanConfig()), root / "in" / "part-00000.parquet", out, "test")
    assert stats.rejected_by_reason == {"spam_gambling": 1, "spam_game": 1, "repetitive_lines": 1, "too_short": 1, "chatter": 1}
    return out.root


# ---------------------------------------------------------------- the seed set


def test_seed_set_is_balanced_labelled_and_does_not_leak_the_demo_corpus():
    rows = read_labelled(SEED)
    counts = {label: sum(r["label"] == label for r in rows) for label in LABELS}
    assert len(rows) >= 150 and min(counts.values()) >= 60, counts
    assert all(r["reason"] for r in rows)
    gold_lines = {line for p in GOLD.rglob("*.txt") for line in p.read_text(encoding="utf-8").splitlines() if len(line) >= 20}
    assert not [line for line in gold_lines for r in rows if line in r["text"]]


def test_a_bad_labelled_row_names_its_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"text": "一段正常的文字", "label": "high", "reason": "ok"}\n{"text": "另一段", "label": "great"}\n', encoding="utf-8")
    with pytest.raises(LabelError, match=r"labels.jsonl:2: 'label' must be one of"):
        read_labelled(path)


def test_relative_seed_path_resolves_to_the_bundled_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path(QualityConfig().seed_path) == SEED


# ---------------------------------------------------------------- features


@pytest.fixture(scope="module")
def featurizer() -> Featurizer:
    return Featurizer(FeatureSettings())


def test_hashed_features_count_ngrams_inside_each_document(featurizer):
    x = featurizer.char_block(["ab", "", "aBa"])  # lower-cased: aba
    assert x.getnnz(axis=1).tolist() == [3, 0, 5]  # a b ab | nothing | a b ab ba aba, with a twice
    assert np.allclose(sp.linalg.norm(x, axis=1), [1, 0, 1])
    assert x[2].max() == pytest.approx(2 / np.sqrt(8))
    assert set(x[0].indices) < set(x[2].indices)
    texts = [NEWS[0], "", SPAM[0], "\ud800孤立的代理项"]
    batch = featurizer(texts)
    one_by_one = sp.vstack([featurizer([t]) for t in texts]).tocsr()
    assert (batch != one_by_one).nnz == 0  # no n-gram straddles two documents: a score does not depend on its batch
    assert batch.shape == (4, FeatureSettings().n_features) and batch[1].nnz == 0


def test_hashed_features_are_pinned(featurizer):
    # plain integer arithmetic (no salted str hash): the same buckets on every machine and in every process
    x = featurizer(["今天天气很好，我们去公园散步。"])
    digest = hashlib.sha256(x.indices.astype("<i4").tobytes() + x.data.astype("<f8").tobytes()).hexdigest()[:16]
    assert (x.nnz, digest) == (58, "1c9635ed7482db75")


# ---------------------------------------------------------------- training and the quality bar


def test_held_out_metrics_clear_the_bar(trained):
    s = trained.summary
    m = s["metrics"]
    # Measured with the default config (seed 0, 25% of seed + evidence labels held out): macro-F1 0.72, F1 high 0.78,
    # medium 0.56, low 0.84. Medium is the hard label: shuffled sentences are fluent one by one (28% of them right).
    assert m["macro_f1"] >= 0.68 and m["accuracy"] >= 0.7
    assert m["f1_high"] >= 0.72 and m["f1_medium"] >= 0.48 and m["f1_low"] >= 0.78
    assert s["label_sources"]["seed.jsonl"] == {"high": 71, "medium": 69, "low": 74} and s["label_sources"]["reference"] == {"high": 400}
    confusion = np.array(s["confusion"])
    assert confusion.sum() == s["n_test"] == len(trained.held_out)
    assert np.trace(confusion) / confusion.sum() == pytest.approx(m["accuracy"])
    assert s["n_train"] + s["n_test"] == s["n_examples"] and s["model_version"] == MODEL_VERSION


def test_good_news_ranks_above_spam_and_gibberish(model):
    scores = model.scores(NEWS + SPAM + GIBBERISH + [REPEATED])
    news, bad = scores[: len(NEWS)], scores[len(NEWS) :]
    assert news.min() > bad.max(), (news, bad)
    assert news.min() >= QualityConfig().high_cutoff
    # the game ad is tier low; the gambling ad only medium (0.64): the classifier alone misses it, the clean stage
    # rejects it first (spam_gambling) and a medium document with spam hits fails the strict check
    assert scores[len(NEWS) + 1] < QualityConfig().low_cutoff and scores[len(NEWS)] < QualityConfig().high_cutoff


def test_save_then_load_gives_identical_scores_and_no_pickle(model, tmp_path):
    folder = model.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.npz"]
    loaded = QualityModel.load(folder)
    texts = NEWS + SPAM + GIBBERISH + [CHATTER]
    assert np.array_equal(loaded.probabilities(texts), model.probabilities(texts))
    assert loaded.digest == model.digest and loaded.tag == model.tag
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert meta["version"] == "quality_v3" and meta["features"]["hash_bits"] == 20  # v3: the reference LM inside
    assert meta["reference_lm"]["order"] == 3
    meta["digest"] = "0" * 64
    (folder / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="does not match"):
        QualityModel.load(folder)


def test_every_label_is_needed(tmp_path):
    path = tmp_path / "two.jsonl"
    rows = [{"text": f"{t}第{i}条", "label": label} for i in range(5) for t, label in ((NEWS[0], "high"), (SPAM[0], "low"))]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    # evidence labels off: corruptions alone would add the medium label
    cfg = QualityConfig(seed_path=str(path), corruptions=False, boilerplate_paths=[], reference_max_examples=0)
    with pytest.raises(ValueError, match="at least 2 examples"):
        train_classifier(collect_examples(cfg), cfg)


# ---------------------------------------------------------------- scoring and routing


def clean_docs(texts: list[tuple[str, str]]) -> list[dict]:
    """Return the documents the real clean stage keeps (with their stored signals)."""
    docs = [make_doc(f"http://example.com/{i}", t, source=s) for i, (s, t) in enumerate(texts)]
    return run_steps("clean", clean_steps(CleanConfig()), docs).kept


@pytest.fixture(scope="module")
def cleaned() -> list[dict]:
    # a short forum reply, and a soft ad in a post that the clean stage keeps (one contact call, no category word)
    reply = "楼主好，我也遇到过这个问题，手机充一晚上电还是只有一半。后来换了个原装充电器就好了，你可以试试看，不行再去售后问问。"
    soft_ad = "这款面膜我已经用了一个多月，皮肤确实变得水润了不少，价格也不算贵。需要的朋友可以加微信问我，老客户给大家优惠价，包邮到家。"
    docs = clean_docs([("news", t) for t in NEWS] + [("forum", reply), ("forum", soft_ad)])
    assert len(docs) == 5
    return docs


def test_default_routing_keeps_high_and_rejects_low(model, cleaned):
    spam = make_doc("http://example.com/spam", SPAM[1], source="forum")
    result = run_steps("quality", build_steps(QualityConfig(), model), cleaned + [spam])
    assert result.stats.balanced() and result.stats.docs_in == 6
    kept = {d["url"]: d for d in result.kept}
    for doc in cleaned[:3]:
        assert kept[doc["url"]]["quality_tier"] == "high"
        assert kept[doc["url"]]["quality_model"] == model.tag
        assert 0.0 <= kept[doc["url"]]["quality_score"] <= 1.0
    rejected = {d["url"]: d for d in result.rejected}
    assert rejected["http://example.com/spam"]["reason"] == "quality"
    assert rejected["http://example.com/spam"]["detail"].endswith("tier low")
    counters = result.stats.counters
    assert sum(counters[f"tier.{t}"] for t in LABELS if f"tier.{t}" in counters) == 6
    assert counters["source.news.high"] == 3
    assert {r["reason"] for r in result.rejected} <= set(QUALITY_REASONS)


def test_low_action_keep_rejects_nothing_for_quality(model, cleaned):
    spam = make_doc("http://example.com/spam", SPAM[1], source="forum")
    cfg = QualityConfig(low_action="keep", medium_action="keep")
    result = run_steps("quality", build_steps(cfg, model), cleaned + [spam])
    assert result.stats.docs_rejected == 0 and result.stats.docs_kept == 6
    assert {d["quality_tier"] for d in result.kept if d["url"].endswith("spam")} == {"low"}


def test_medium_strict_rejects_with_the_exact_signal(model, cleaned):
    # cut-offs that make every document medium, so the strict thresholds alone decide; the news items are ~105
    # characters, the reply 58
    cfg = QualityConfig(high_cutoff=0.999, low_cutoff=0.001, medium_action="strict", strict=StrictConfig(min_chars=80))
    result = run_steps("quality", build_steps(cfg, model), cleaned)
    reasons = {d["url"][-1]: d["reason"] for d in result.rejected}
    assert reasons == {"3": "quality_strict_n_chars", "4": "quality_strict_spam_contact"}
    assert {d["url"][-1] for d in result.kept} == {"0", "1", "2"}
    assert result.stats.rejected_by_reason == {"quality_strict_n_chars": 1, "quality_strict_spam_contact": 1}
    # the same documents rejected outright when medium's action is reject
    rejected = run_steps("quality", build_steps(cfg.model_copy(update={"medium_action": "reject"}), model), cleaned)
    assert rejected.stats.rejected_by_reason == {"quality": 5}


def test_the_sample_site_after_cleaning(model):
    gold = sorted(GOLD.rglob("*.txt"))
    docs = clean_docs([(p.parent.name, p.read_text(encoding="utf-8")) for p in gold])
    names = {f"http://example.com/{i}": str(p.relative_to(GOLD)) for i, p in enumerate(gold)}
    result = run_steps("quality", build_steps(QualityConfig(), model), docs)
    tiers = {names[d["url"]]: d["quality_tier"] for d in result.kept + result.rejected}
    articles = [n for n in tiers if n.startswith("news/2026") or n.startswith("shop/item")]
    # no news article or product page is low; product pages, far from the 1998 news reference, are partly medium
    assert all(tiers[n] != "low" for n in articles) and sum(tiers[n] == "high" for n in articles) >= 10, tiers
    rejected = {names[d["url"]]: d["reason"] for d in result.rejected}
    # the link hubs go (two tiered low, one too short for strict); one medium product page has a contact line
    # (客服) that strict allows none of
    assert rejected == {
        "forum/index.html.txt": "quality_strict_n_chars", "index.html.txt": "quality", "news/index.html.txt": "quality",
        "shop/item-1005.html.txt": "quality_strict_spam_contact",
    }
    assert result.stats.counters["source.news.high"] == 9 and result.stats.counters["tier.low"] == 2


PASSING = {
    "n_chars": 400, "chatter_ratio": 0.0, "dup_line_char_ratio": 0.0, "dup_sentence_char_ratio": 0.0, "top_2gram_ratio": 0.03,
    "symbol_ratio": 0.02, "stopword_ratio": 0.22, "char_entropy": 7.4, "spam_contact": 0, "spam_context": 5, "spam_density": 0.5,
    "spam_gambling": 0, "spam_porn": 0, "spam_game": 0, "spam_scam": 0, "spam_seo": 0,
}


@pytest.mark.parametrize(
    ("signal", "value", "reason"),
    [
        ("spam_gambling", 1, "quality_strict_spam_hits"),
        ("spam_contact", 1, "quality_strict_spam_contact"),
        ("chatter_ratio", 0.2, "quality_strict_chatter_ratio"),
        ("n_chars", 80, "quality_strict_n_chars"),
        ("dup_line_char_ratio", 0.1, "quality_strict_dup_line_char_ratio"),
        ("dup_sentence_char_ratio", 0.2, "quality_strict_dup_sentence_char_ratio"),
        ("top_2gram_ratio", 0.15, "quality_strict_top_2gram_ratio"),
        ("symbol_ratio", 0.3, "quality_strict_symbol_ratio"),
        ("stopword_ratio", 0.05, "quality_strict_stopword_ratio"),
        ("char_entropy", 5.5, "quality_strict_char_entropy"),
    ],
)
def test_each_strict_threshold_names_its_signal(signal, value, reason):
    assert strict_reason(PASSING, StrictConfig()) is None  # spam_density and spam_context are not hit counts
    verdict = strict_reason({**PASSING, signal: value}, StrictConfig())
    assert isinstance(verdict, Reject) and verdict.reason == reason and reason in QUALITY_REASONS
    assert verdict.detail.startswith(f"{reason.removeprefix('quality_strict_')} ")


def test_config_is_validated():
    with pytest.raises(ValidationError, match="must be below high_cutoff"):
        QualityConfig(high_cutoff=0.3, low_cutoff=0.5)
    with pytest.raises(ValidationError):
        QualityConfig(medium_action="drop")
    with pytest.raises(ValidationError):
        QualityConfig(api_key="sk-x")  # no key field: extra fields are refused
    with pytest.raises(ValidationError):
        AnnotatorConfig(api_key_env="not a name")


# ---------------------------------------------------------------- weak labels


def test_weak_labels_from_the_clean_stage(clean_dir):
    rows = weak_labels([clean_dir], DEFAULT_WEAK_LOW_REASONS)
    assert sorted(r["text"] for r in rows) == sorted([SPAM[0], SPAM[1], REPEATED.strip("\n")])
    assert all(r["label"] == "low" and r["origin"] == "weak" for r in rows)
    assert any("spam_gambling" in r["reason"] for r in rows)
    assert not [r for r in rows if r["text"] == CHATTER]  # too_short is not a quality judgement
    with_sources = weak_labels([clean_dir], ["spam_game"], {"news": "high"}, max_per_label=2)
    assert [r["label"] for r in with_sources] == ["high", "high", "low"]  # capped at 2 of the 3 news items


def test_hand_labels_win_over_weak_ones(clean_dir, tmp_path):
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps({"text": SPAM[0], "label": "medium", "reason": "test"}, ensure_ascii=False) + "\n", encoding="utf-8")
    examples = collect_examples(QualityConfig(label_paths=[str(mine)]), [clean_dir])
    assert [e["label"] for e in examples if e["text"] == SPAM[0]] == ["medium"]
    assert sum(e["origin"] == "weak" for e in examples) == 2


# ---------------------------------------------------------------- the LLM annotator, against a real local server


class ChatServer:
    """A local OpenAI-compatible endpoint serving canned chat completions; it records each request's headers."""

    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
                text = body["messages"][-1]["content"]
                if "故障" in text:
                    self.send_response(500)
                    self.end_headers()
                    return
                label = "low" if ("微信" in text or "私服" in text) else "high" if len(text) > 60 else "medium"
                content = f"```json\n{json.dumps({'label': label, 'reason': '测试服务器的判断'}, ensure_ascii=False)}\n```"
                reply = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


KEY = "sk-test-0123456789abcdef"


def test_annotator_labels_sends_the_key_only_as_a_header(chat_server):
    cfg = AnnotatorConfig(enabled=True, base_url=chat_server.base_url, model="tiny-judge", max_docs=3)
    docs = [{"id": "a", "text": NEWS[0]}, {"id": "b", "text": SPAM[1]}, {"id": "c", "text": "服务器故障测试：这一条会失败。"}, {"id": "d", "text": NEWS[1]}]
    with Annotator(cfg, api_key=KEY) as annotator:
        result = annotator(docs)
        assert KEY not in repr(annotator)
    assert [e["label"] for e in result.examples] == ["high", "low"]  # max_docs=3: the fourth is never sent
    assert result.examples[0]["reason"] == "tiny-judge: 测试服务器的判断" and result.examples[0]["origin"] == "llm"
    assert [f["id"] for f in result.failures] == ["c"] and "500" in result.failures[0]["error"]
    assert len(chat_server.requests) == 3
    assert {r["authorization"] for r in chat_server.requests} == {f"Bearer {KEY}"}
    assert {r["path"] for r in chat_server.requests} == {"/v1/chat/completions"}
    assert chat_server.requests[0]["body"]["model"] == "tiny-judge"
    assert KEY not in json.dumps([result.examples, result.failures], ensure_ascii=False)


def test_api_key_comes_from_the_named_variable():
    cfg = AnnotatorConfig(api_key_env="MY_LLM_KEY")
    assert api_key_from_env(cfg, {"MY_LLM_KEY": KEY}) == KEY
    assert api_key_from_env(cfg, {"LIANDAN_LLM_API_KEY": KEY}) is None
    assert parse_reply('{"label": "HIGH", "reason": "新闻"}') == ("high", "新闻")


# ---------------------------------------------------------------- the tasks, end to end on disk


def test_train_then_score_tasks(clean_dir, tmp_path, chat_server, monkeypatch):
    monkeypatch.setenv("TEST_QUALITY_KEY", KEY)
    cfg = QualityConfig(annotator=AnnotatorConfig(enabled=True, base_url=chat_server.base_url, api_key_env="TEST_QUALITY_KEY"))
    out = train_quality_model.fn(cfg, str(tmp_path / "train"), [str(clean_dir)])
    summary = out.summary
    # weak: the two ads and the repeated line the clean stage rejected; llm: its three kept news items
    assert summary["origins"]["weak"] == 3 and summary["origins"]["llm"] == 3 and summary["annotated"] == 3
    assert summary["skipped"] == 0 and summary["annotation_failures"] == 0
    annotations = [json.loads(line) for line in (tmp_path / "train" / "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(a["text"] for a in annotations) == sorted(NEWS) and {a["label"] for a in annotations} == {"high"}
    for path in (tmp_path / "train").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in json.dumps(asdict(out), ensure_ascii=False)
    again = train_quality_model.fn(cfg, str(tmp_path / "train"), [str(clean_dir)])
    assert again.summary["skipped"] == 1 and len(chat_server.requests) == 3

    shard = StageDir(clean_dir).shards()[0]
    stage = tmp_path / "quality"
    stats = score_shard.fn(str(shard), str(stage), cfg, out.model_dir)
    assert stats.docs_in == 3 and stats.docs_kept + stats.docs_rejected == 3
    tag = QualityModel.load(Path(out.model_dir)).tag
    rows = read_shard(StageDir(stage).shards()[0])
    assert rows and all(r["quality_tier"] in LABELS and r["quality_model"] == tag for r in rows)
    scores, tiers = read_scores([*StageDir(stage).shards(), *StageDir(stage).rejected_shards()])
    assert len(scores) == len(tiers) == 3
    assert score_shard.fn(str(shard), str(stage), cfg, out.model_dir).counters["shards_skipped"] == 1
    rerouted = score_shard.fn(str(shard), str(stage), cfg.model_copy(update={"high_action": "reject"}), out.model_dir)
    assert "shards_skipped" not in rerouted.counters  # a routing change redoes the shard


# ---------------------------------------------------------------- report


def test_tier_table_and_figures(trained):
    table = tier_table({"source.news.high": 3, "source.news.medium": 1, "source.web.v2.low": 4, "tier.high": 3, "docs": 9})
    assert table == [
        {"source": "news", "high": 3, "medium": 1, "low": 0, "total": 4, "share": 0.5, "high_share": 0.75},
        {"source": "web.v2", "high": 0, "medium": 0, "low": 4, "total": 4, "share": 0.5, "high_share": 0.0},
    ]
    fig = confusion_figure(trained.summary["confusion"])
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert sum(map(int, cells)) == trained.summary["n_test"]
    hist = score_histogram([h["score"] for h in trained.held_out], [h["label"] for h in trained.held_out], 0.7, 0.3)
    assert hist.axes[0].get_legend() is not None
    per_source = source_histogram([0.9, 0.8, 0.2], ["news", "news", "forum"], 0.65, 0.3)
    assert [ax.get_ylabel() for ax in per_source.axes] == ["forum\n(1)", "news\n(2)"]
    assert sum(p.get_height() for p in per_source.axes[1].patches) == 2
