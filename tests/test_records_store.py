from __future__ import annotations

import json

import pytest

from tasks.records import Reject, RecordError, batched, coerce_doc, doc_id, make_doc, read_jsonl, write_jsonl
from tasks.steps import ShardStats, per_doc, process_shard, run_steps
from tasks.store import RunStore, StageDir, config_digest, read_shard, write_shard


def test_doc_id_is_stable_and_keyed_by_url():
    a = make_doc("http://a.cn/1.html", "新闻正文")
    b = make_doc("http://a.cn/1.html", "别的正文")
    assert a["id"] == b["id"] == doc_id("http://a.cn/1.html")
    assert len(a["id"]) == 16
    assert make_doc("", "只有正文")["id"] == doc_id("只有正文")


def test_coerce_doc_fills_defaults_and_names_bad_fields():
    doc = coerce_doc({"text": "你好", "meta": '{"title": "标题"}'})
    assert doc["source"] == "web" and doc["meta"] == {"title": "标题"} and doc["id"] == doc_id("你好")
    with pytest.raises(RecordError, match="'text' must be a string"):
        coerce_doc({"text": 3})
    with pytest.raises(RecordError, match="needs a 'url' or a 'text'"):
        coerce_doc({"source": "news"}, line=7)


def test_read_jsonl_quarantines_bad_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "第一条"}\nnot json\n[1, 2]\n\n{"url": "http://x.cn/"}\n', encoding="utf-8")
    docs, bad = read_jsonl(path)
    assert [d["text"] for d in docs] == ["第一条", ""]
    assert [b["reason"] for b in bad] == ["invalid_record", "invalid_record"]
    assert [b["meta"]["line"] for b in bad] == [2, 3]
    out = tmp_path / "out.jsonl"
    assert write_jsonl(out, docs) == 2
    assert "第一条" in out.read_text(encoding="utf-8")  # Chinese stays readable, not \\u escapes


def test_batched():
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        list(batched([1], 0))


def _short_rule(doc):
    return Reject("too_short", f"{len(doc['text'])} chars") if len(doc["text"]) < 4 else doc


def _tag_rule(doc):
    return {**doc, "lang": "zh"} if "中" in doc["text"] else Reject("not_chinese")


def test_run_steps_counts_every_document():
    docs = [make_doc(f"http://a.cn/{i}", t) for i, t in enumerate(["中文长一点的文本", "短", "english only text", "中国科学院"])]
    result = run_steps("clean", [per_doc("length", _short_rule), per_doc("lang", _tag_rule)], docs)
    assert [d["text"] for d in result.kept] == ["中文长一点的文本", "中国科学院"]
    assert all(d["lang"] == "zh" for d in result.kept)
    assert [(r["reason"], r["stage"], r["detail"]) for r in result.rejected] == [("too_short", "clean", "1 chars"), ("not_chinese", "clean", "")]
    s = result.stats
    assert (s.docs_in, s.docs_kept, s.docs_rejected) == (4, 2, 2)
    assert s.rejected_by_reason == {"too_short": 1, "not_chinese": 1}
    assert set(s.seconds_by_step) == {"length", "lang"}
    assert s.balanced()


def test_run_steps_rejects_a_step_that_loses_documents():
    def lossy(docs):
        return docs[:-1]

    lossy.name = "lossy"
    with pytest.raises(RuntimeError, match="returned 1 results for 2 documents"):
        run_steps("x", [lossy], [make_doc("a", "一"), make_doc("b", "二")])


def test_shard_round_trip_keeps_meta_and_extra_columns(tmp_path):
    rows = [make_doc("http://a.cn/1", "正文", meta={"charset": "gbk", "depth": 1}, n_tokens=3), make_doc("http://a.cn/2", "二", source="news")]
    path = tmp_path / "part-00000.parquet"
    write_shard(path, rows)
    back = read_shard(path)
    assert back[0]["meta"] == {"charset": "gbk", "depth": 1}
    assert back[0]["n_tokens"] == 3 and back[1]["n_tokens"] is None
    assert back[1]["source"] == "news"
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary name is gone after the rename
    write_shard(tmp_path / "empty.parquet", [])
    assert read_shard(tmp_path / "empty.parquet") == []


def test_stats_add_and_round_trip():
    a = ShardStats(docs_in=3, docs_kept=2, docs_rejected=1, rejected_by_reason={"x": 1}, counters={"bytes": 10})
    b = ShardStats(docs_in=2, docs_kept=0, docs_rejected=2, rejected_by_reason={"x": 1, "y": 1}, counters={"bytes": 5})
    total = a.add(b)
    assert (total.docs_in, total.rejected_by_reason, total.counters) == (5, {"x": 2, "y": 1}, {"bytes": 15})
    assert ShardStats.from_dict(json.loads(json.dumps(total.to_dict()))) == ShardStats.from_dict(total.to_dict())


def test_process_shard_commits_then_skips_and_redoes_on_change(tmp_path):
    store = RunStore.open(tmp_path, "r1")
    src = store.stage("crawl")
    src.commit_shard("part-00000.parquet", [make_doc("http://a.cn/1", "中文长一点的文本"), make_doc("http://a.cn/2", "短")], [], {"stats": {}})
    out = store.stage("clean")
    steps = [per_doc("length", _short_rule)]
    first = process_shard("clean", steps, src.shard("part-00000.parquet"), out, config_digest(None))
    assert (first.docs_kept, first.docs_rejected) == (1, 1)
    assert [r["reason"] for r in read_shard(out.rejected("part-00000.parquet"))] == ["too_short"]
    assert out.shards() == [out.shard("part-00000.parquet")]

    again = process_shard("clean", steps, src.shard("part-00000.parquet"), out, config_digest(None))
    assert again.counters == {"shards_skipped": 1} and again.docs_kept == 1

    # a half-written shard (no marker) is redone
    out.marker("part-00000.parquet").unlink()
    assert out.shards() == []
    redone = process_shard("clean", steps, src.shard("part-00000.parquet"), out, config_digest(None))
    assert "shards_skipped" not in redone.counters

    # a changed input is redone too
    src.commit_shard("part-00000.parquet", [make_doc("http://a.cn/3", "又一个中文长文本")], [], {"stats": {}})
    changed = process_shard("clean", steps, src.shard("part-00000.parquet"), out, config_digest(None))
    assert "shards_skipped" not in changed.counters and changed.docs_kept == 1


def test_prune_removes_stale_shards(tmp_path):
    stage = StageDir(tmp_path / "s")
    for name in ("part-00000.parquet", "part-00001.parquet"):
        stage.commit_shard(name, [make_doc(name, "文")], [], {})
    assert stage.prune({"part-00000.parquet"}) == ["part-00001.parquet"]
    assert [p.name for p in stage.shards()] == ["part-00000.parquet"]
    assert not stage.rejected("part-00001.parquet").exists() and not stage.marker("part-00001.parquet").exists()


class _Shout:
    name = "shout"

    def __call__(self, docs):
        return [{**d, "text": d["text"].replace("！！", "！"), "removed": d["text"].count("！！")} for d in docs]

    def tally(self, results):
        return {"removed_chars.punct": sum(r["removed"] for r in results if isinstance(r, dict))}


def test_run_steps_adds_step_tallies_to_counters():
    docs = [make_doc("a", "好！！！！"), make_doc("b", "行！！")]
    result = run_steps("clean", [_Shout()], docs)
    assert result.stats.counters == {"removed_chars.punct": 3}
    assert [d["text"] for d in result.kept] == ["好！！", "行！"]


# --- the one skip/resume mechanism -----------------------------------------------------------------


def test_stage_digest_covers_config_inputs_their_order_and_code_version():
    from tasks.clean.config import CleanConfig
    from tasks.store import stage_digest

    base = stage_digest(CleanConfig(), ["a1", "b2"])
    assert base == stage_digest(CleanConfig(), ["a1", "b2"]) and len(base) == 16
    assert base != stage_digest(CleanConfig(min_chars=51), ["a1", "b2"])  # a changed config
    assert base != stage_digest(CleanConfig(), ["a1", "b3"])  # a changed input
    assert base != stage_digest(CleanConfig(), ["b2", "a1"])  # inputs are an ordered list
    assert base != stage_digest(CleanConfig(), ["a1", "b2"], code_version="2")  # newer code
    assert stage_digest(None, []) != stage_digest(None, [""])


def test_done_record_is_read_back_only_under_its_digest(tmp_path):
    from tasks.store import DONE_FILE, clear_done, read_done, write_done

    folder = tmp_path / "dedup"
    assert read_done(folder, "d1") is None  # no record yet (and no folder)
    write_done(folder, "d1", {"docs": 3, "注": "去重"})
    assert read_done(folder, "d1") == {"docs": 3, "注": "去重"}
    assert read_done(folder, "d2") is None  # another config or input: not done
    assert [p.name for p in folder.iterdir()] == [DONE_FILE]  # no temporary file left beside it
    write_done(folder, "d1", {}, name="part-00000.json")  # one record per shard under its own name
    assert read_done(folder, "d1", name="part-00000.json") == {}
    (folder / DONE_FILE).write_text('{"digest": "d1", "payl', encoding="utf-8")  # damaged outside our writes
    assert read_done(folder, "d1") is None
    clear_done(folder)
    clear_done(folder)  # removing an absent record is fine
    assert not (folder / DONE_FILE).exists()


def test_keyed_dir_separates_digests_and_finds_its_own_again(tmp_path):
    from tasks.store import keyed_dir

    a = keyed_dir(tmp_path / "pretrain", "aaaa")
    (a / "checkpoint-20").mkdir()
    assert a.is_dir() and keyed_dir(tmp_path / "pretrain", "aaaa") == a
    b = keyed_dir(tmp_path / "pretrain", "bbbb")
    assert b != a and list(b.iterdir()) == []  # a changed config starts empty: it never sees checkpoint-20
