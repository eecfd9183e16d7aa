"""The dedup stage on real Chinese text: the sample site's reposts, same-topic articles, and the three
phases across shards on disk (sign, cluster, filter) with resume."""

import re
import unicodedata
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

import tasks.dedup.minhash as minhash_module
from tasks.dedup import (
    DEDUP_REASONS,
    DedupConfig,
    DedupKey,
    DuplicateFilter,
    MinHasher,
    Signatures,
    dedup_records,
    estimated_jaccard,
    find_duplicates,
    signatures,
)
from tasks.dedup.minhash import EMPTY
from tasks.dedup.task import DUPLICATES_FILE, SIGNATURES_DIR, cluster_duplicates, dedup_shard, sign_shard
from tasks.records import Reject, make_doc
from tasks.store import StageDir, read_shard, write_shard

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "sample" / "gold"
DATA = Path(__file__).parent / "data" / "dedup"
CFG = DedupConfig()
KEY = DedupKey()

RAIL = (GOLD / "news" / "2026-03-01-rail.html.txt").read_text(encoding="utf-8")
REPOST_1002 = (GOLD / "forum" / "thread-1002.html.txt").read_text(encoding="utf-8")
REPOST_1005 = (GOLD / "forum" / "thread-1005.html.txt").read_text(encoding="utf-8")
COPY_1008 = (GOLD / "forum" / "thread-1008.html.txt").read_text(encoding="utf-8")
SAME_TOPIC = sorted(DATA.glob("rail_*.txt"))  # other articles on the rail line's opening, one sharing a paragraph


def news(path: str, text: str, source: str = "news") -> dict:
    return make_doc(f"https://qinghe.example/{path}", text, source=source)


def gold_docs() -> list[dict]:
    """Every gold text of the sample site, news first (the crawl reaches the news articles before the forum)."""
    paths = sorted(GOLD.rglob("*.txt"), key=lambda p: (p.parts[-2] != "news", str(p)))
    return [news(str(p.relative_to(GOLD)).removesuffix(".txt"), p.read_text(encoding="utf-8")) for p in paths]


def shingles(text: str, n: int = 5) -> set[str]:
    key = KEY(text)
    return {key[i : i + n] for i in range(len(key) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


# ---------------------------------------------------------------- the dedup key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("沿江城际铁路 开通！", "沿江城际铁路开通"),
        ("票价２８元，ＡＢＣ，Ｃａｒ", "票价28元abccar"),  # full-width digits and letters, case folded
        ("气温25℃，㈱公司①号", "气温25c株公司1号"),  # NFKC expansions keep their letters and digits
        ("“以后每天能多睡一个小时。”——王女士", "以后每天能多睡一个小时王女士"),
        ("好评！！！😀👍🏻❤️ 𠮷野家", "好评𠮷野家"),  # emoji go, an Extension B ideograph stays
        ("cafe\u0301 café", "cafécafé"),  # a combining accent composes as NFKC says
        ("under_score ＿", "underscore"),
        ("", ""),
        ("。，、 \n\t", ""),
    ],
)
def test_dedup_key_is_nfkc_casefolded_without_punctuation(text, key):
    assert KEY(text) == key


def test_dedup_key_equals_plain_nfkc_on_the_sample_site():
    reference = re.compile(r"[\W_]+")
    for path in sorted(GOLD.rglob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert KEY(text) == reference.sub("", unicodedata.normalize("NFKC", text).casefold()), path


# ---------------------------------------------------------------- signatures


@pytest.mark.parametrize("method", ["one_permutation", "k_permutations"])
def test_estimated_jaccard_is_close_to_exact_on_the_sample_reposts(method):
    hasher = MinHasher(5, 32, 4, seed=42, method=method)
    sig = hasher([KEY(t) for t in (RAIL, REPOST_1002, REPOST_1005, COPY_1008, SAME_TOPIC[0].read_text(encoding="utf-8"))])
    assert round(jaccard(RAIL, REPOST_1002), 3) == 0.893
    assert round(jaccard(RAIL, REPOST_1005), 3) == 0.796
    assert abs(estimated_jaccard(sig[0], sig[1]) - 0.893) < 0.1
    assert abs(estimated_jaccard(sig[0], sig[2]) - 0.796) < 0.1
    assert estimated_jaccard(sig[0], sig[3]) == 1.0
    assert estimated_jaccard(sig[0], sig[4]) < 0.2
    assert sig.dtype == np.uint32 and sig.shape == (5, 128)


def test_empty_key_has_an_empty_signature_and_a_short_key_one_shingle():
    hasher = MinHasher(5, 32, 4, seed=42)
    sig = hasher(["", "青溪", "青溪", "青溪站"])
    assert (sig[0] == EMPTY).all()
    assert (sig[1] == sig[2]).all() and (sig[1] != EMPTY).all()  # densified from its one shingle
    assert estimated_jaccard(sig[1], sig[3]) == 0.0
    assert len(hasher.shingle_hashes("青溪")) == 1 and len(hasher.shingle_hashes("沿江城际铁路")) == 2


@pytest.mark.parametrize("method", ["one_permutation", "k_permutations"])
def test_signature_does_not_depend_on_batch_size(monkeypatch, method):
    keys = [KEY(RAIL), KEY(REPOST_1005), "青溪", KEY(RAIL) * 3]
    whole = MinHasher(5, 32, 4, seed=7, method=method)(keys)
    monkeypatch.setattr(minhash_module, "_BATCH_CHARS", 97)  # long keys cut into overlapping pieces
    assert (MinHasher(5, 32, 4, seed=7, method=method)(keys) == whole).all()


def test_seed_changes_the_hash_functions():
    keys = [KEY(RAIL)]
    assert not (MinHasher(5, 32, 4, seed=1)(keys) == MinHasher(5, 32, 4, seed=2)(keys)).all()


def test_signature_rows_round_trip_through_parquet(tmp_path):
    rows = signatures([news("a", RAIL), news("b", ""), news("c", REPOST_1005)], CFG, shard="part-00000.parquet")
    assert [(r["id"], r["shard"], r["position"], r["chars"], r["key_chars"]) for r in rows] == [
        (news("a", "")["id"], "part-00000.parquet", 0, len(RAIL), len(KEY(RAIL))),
        (news("b", "")["id"], "part-00000.parquet", 1, 0, 0),
        (news("c", "")["id"], "part-00000.parquet", 2, len(REPOST_1005), len(KEY(REPOST_1005))),
    ]
    assert len(rows[0]["bands"]) == 32 and len(rows[0]["minhash"]) == 128 and len(rows[0]["exact"]) == 16
    sig = Signatures.from_rows(rows, CFG)
    pq.write_table(sig.to_table(), tmp_path / "s.parquet")
    back = Signatures.from_table(pq.read_table(tmp_path / "s.parquet"), CFG)
    assert back.to_rows() == rows


# ---------------------------------------------------------------- in memory: dedup_records


def test_repost_with_one_character_changed_is_a_near_duplicate_of_the_original():
    original = news("news/2026-03-01-rail.html", RAIL)
    repost = news("forum/thread-2001.html", RAIL.replace("三十二对", "三十三对"), source="forum")
    result = dedup_records([original, repost], CFG)
    assert [d["id"] for d in result.kept] == [original["id"]]
    assert [(r["id"], r["stage"], r["reason"], r["detail"]) for r in result.rejected] == [
        (repost["id"], "dedup", "near_duplicate", original["id"])
    ]


def test_exact_copy_at_another_url_is_an_exact_duplicate_even_with_other_punctuation_and_widths():
    original = news("news/2026-03-01-rail.html", RAIL)
    copy = news("forum/thread-1008.html", COPY_1008, source="forum")
    reformatted = news("m/rail.html", RAIL.replace("，", ", ").replace("2021", "２０２１").replace("\n", "\n\n　　"))
    result = dedup_records([original, copy, reformatted], CFG)
    assert [d["url"] for d in result.kept] == [original["url"]]
    assert [(r["url"], r["reason"], r["detail"]) for r in result.rejected] == [
        (copy["url"], "exact_duplicate", original["id"]),
        (reformatted["url"], "exact_duplicate", original["id"]),
    ]


def test_different_articles_on_the_same_topic_are_all_kept():
    docs = [news("news/2026-03-01-rail.html", RAIL)] + [news(f"news/{p.stem}.html", p.read_text(encoding="utf-8")) for p in SAME_TOPIC]
    assert [round(jaccard(RAIL, d["text"]), 3) for d in docs[1:]] == [0.009, 0.101, 0.010]  # commentary, first week, Linjiang
    result = dedup_records(docs, CFG)
    assert result.kept == docs
    assert result.rejected == []


def test_sample_site_removes_exactly_its_three_copies_of_the_rail_article():
    docs = gold_docs()
    rail_id = next(d["id"] for d in docs if d["url"].endswith("2026-03-01-rail.html"))
    result = dedup_records(docs, CFG)
    assert [(r["url"].rsplit("/", 2)[-1], r["reason"], r["detail"]) for r in result.rejected] == [
        ("thread-1002.html", "near_duplicate", rail_id),
        ("thread-1005.html", "near_duplicate", rail_id),
        ("thread-1008.html", "exact_duplicate", rail_id),
    ]
    stats = result.stats
    assert (stats.docs_in, stats.docs_kept, stats.docs_rejected) == (32, 29, 3)
    assert stats.rejected_by_reason == {"near_duplicate": 2, "exact_duplicate": 1}
    assert stats.counters == {"duplicate_clusters": 1}
    assert stats.balanced() and set(stats.rejected_by_reason) <= set(DEDUP_REASONS)


def test_keep_longest_keeps_the_repost_with_an_opinion_appended():
    docs = gold_docs()
    result = dedup_records(docs, CFG.model_copy(update={"keep": "longest"}))
    by_id = {d["id"]: d["url"].rsplit("/", 1)[-1] for d in docs}
    assert sorted((by_id[r["id"]], r["reason"], by_id[r["detail"]]) for r in result.rejected) == [
        ("2026-03-01-rail.html", "near_duplicate", "thread-1005.html"),
        ("thread-1002.html", "near_duplicate", "thread-1005.html"),
        ("thread-1008.html", "near_duplicate", "thread-1005.html"),  # an exact copy of a removed document
    ]


def test_near_duplicates_off_removes_only_exact_copies():
    result = dedup_records(gold_docs(), CFG.model_copy(update={"near_duplicates": False}))
    assert [(r["url"].rsplit("/", 1)[-1], r["reason"]) for r in result.rejected] == [("thread-1008.html", "exact_duplicate")]


def test_a_higher_threshold_lets_the_harder_repost_stay():
    result = dedup_records(gold_docs(), CFG.model_copy(update={"threshold": 0.95}))
    assert [(r["url"].rsplit("/", 1)[-1], r["reason"]) for r in result.rejected] == [("thread-1008.html", "exact_duplicate")]


def test_bad_input_passes_without_being_clustered():
    docs = [
        news("a", ""),
        news("b", ""),
        {**news("c", ""), "text": None},
        news("d", "。。。！！！   "),
        news("e", "\ud800 孤立代理项"),
        news("f", "\ud800 孤立代理项"),
    ]
    result = dedup_records(docs, CFG)
    assert [d["url"][-1] for d in result.kept] == ["a", "b", "c", "d"]
    # A lone surrogate cannot be stored (the readers repair it; a record built in code reaches the writer's guard).
    assert [(r["url"][-1], r["reason"]) for r in result.rejected] == [("f", "exact_duplicate"), ("e", "unwritable_record")]
    assert result.rejected[0]["detail"] == docs[4]["id"]
    assert result.stats.balanced()


def test_one_long_line_is_hashed_in_pieces_and_its_copy_found():
    line = RAIL.replace("\n", "") * 2500  # 1.2 M characters, more than one hashing batch
    docs = [news("big/1", line), news("big/2", line + "。"), news("big/3", "短文本")]
    result = dedup_records(docs, CFG)
    assert [(r["url"], r["reason"]) for r in result.rejected] == [(docs[1]["url"], "exact_duplicate")]


def test_text_only_records_sharing_an_id_are_told_apart():
    first, second = make_doc("", RAIL), make_doc("", RAIL)  # a JSONL of texts: the id is the text's hash
    assert first["id"] == second["id"]
    result = dedup_records([first, second], CFG)
    assert len(result.kept) == 1
    assert [(r["reason"], r["detail"]) for r in result.rejected] == [("exact_duplicate", first["id"])]


# ---------------------------------------------------------------- the pure phases and the filter step


def test_find_duplicates_over_two_shards_of_signature_rows():
    a = [news("news/2026-03-01-rail.html", RAIL), news("news/first-week.html", SAME_TOPIC[1].read_text(encoding="utf-8"))]
    b = [news("forum/1002.html", REPOST_1002), news("forum/1005.html", REPOST_1005), news("forum/1008.html", COPY_1008)]
    rows = signatures(b, CFG, shard="part-00001.parquet") + signatures(a, CFG, shard="part-00000.parquet")
    assert find_duplicates(rows, CFG) == {
        b[0]["id"]: ("near_duplicate", a[0]["id"]),
        b[1]["id"]: ("near_duplicate", a[0]["id"]),
        b[2]["id"]: ("exact_duplicate", a[0]["id"]),
    }


def test_duplicate_filter_rejects_the_named_documents_with_the_kept_id():
    kept, copy = news("x/1", RAIL), news("x/2", COPY_1008)
    step = DuplicateFilter({copy["id"]: ("exact_duplicate", kept["id"])}, frozenset({kept["id"]}))
    assert step([kept, copy]) == [kept, Reject("exact_duplicate", kept["id"])]
    assert step.tally([kept, Reject("exact_duplicate", kept["id"])]) == {"duplicate_clusters": 1}


def test_config_rejects_unknown_fields_and_out_of_bounds():
    with pytest.raises(ValidationError, match="extra"):
        DedupConfig(num_perms=128)
    with pytest.raises(ValidationError):
        DedupConfig(threshold=0)
    with pytest.raises(ValidationError):
        DedupConfig(keep="shortest")
    with pytest.raises(ValidationError):
        DedupConfig(shingle_size=0)
    assert all(f.description for f in DedupConfig.model_fields.values())
    assert CFG.num_perm == 128


# ---------------------------------------------------------------- three tasks across shards on disk


@pytest.fixture
def two_shards(tmp_path):
    """Shard 0: the rail article and the same-topic ones; shard 1: the three forum copies and two others."""
    upstream = tmp_path / "clean"
    a = [news("news/2026-03-01-rail.html", RAIL)] + [news(f"news/{p.stem}.html", p.read_text(encoding="utf-8")) for p in SAME_TOPIC]
    others = [GOLD / "forum" / "thread-1001.html.txt", GOLD / "news" / "2026-03-09-tea.html.txt"]
    b = [
        news("forum/thread-1002.html", REPOST_1002, "forum"),
        news(f"o/{others[0].name}", others[0].read_text(encoding="utf-8"), "forum"),
        news("forum/thread-1005.html", REPOST_1005, "forum"),
        news("forum/thread-1008.html", COPY_1008, "forum"),
        news(f"o/{others[1].name}", others[1].read_text(encoding="utf-8")),
    ]
    write_shard(upstream / "part-00000.parquet", a)
    write_shard(upstream / "part-00001.parquet", b)
    return [str(upstream / "part-00000.parquet"), str(upstream / "part-00001.parquet")], str(tmp_path / "dedup"), a, b


def run_phases(paths, out, cfg):
    signed = [sign_shard.fn(p, out, cfg) for p in paths]
    counts = cluster_duplicates.fn(out, cfg, shard_names=[Path(p).name for p in paths])
    stats = [dedup_shard.fn(p, out, cfg) for p in paths]
    return signed, counts, stats


def test_duplicates_spread_across_two_shards_are_found(two_shards):
    paths, out, a, b = two_shards
    signed, counts, stats = run_phases(paths, out, CFG)
    assert [(s.shard, s.docs, s.skipped) for s in signed] == [("part-00000.parquet", 4, 0), ("part-00001.parquet", 5, 0)]
    assert (Path(out) / SIGNATURES_DIR / "part-00001.parquet").exists()
    assert {k: v for k, v in asdict(counts).items() if k not in ("candidate_pairs", "verified_pairs", "seconds")} == {
        "docs": 9, "shards": 2, "unsigned": 0, "clusters": 1, "exact_duplicate": 1, "near_duplicate": 2,
        "kept_for_shared_id": 0, "cross_shard": 3, "skipped": 0,
    }
    assert counts.verified_pairs == 2 <= counts.candidate_pairs  # 1002 and 1005 with the rail article's group
    stage = StageDir(Path(out))
    assert read_shard(stage.shard("part-00000.parquet")) == a
    assert [d["url"] for d in read_shard(stage.shard("part-00001.parquet"))] == [b[1]["url"], b[4]["url"]]
    assert [(r["url"], r["stage"], r["reason"], r["detail"]) for r in read_shard(stage.rejected("part-00001.parquet"))] == [
        (b[0]["url"], "dedup", "near_duplicate", a[0]["id"]),
        (b[2]["url"], "dedup", "near_duplicate", a[0]["id"]),
        (b[3]["url"], "dedup", "exact_duplicate", a[0]["id"]),
    ]
    assert read_shard(stage.rejected("part-00000.parquet")) == []
    assert [(s.docs_in, s.docs_kept, s.docs_rejected) for s in stats] == [(4, 4, 0), (5, 2, 3)]
    assert stats[0].counters == {"duplicate_clusters": 1} and stats[1].counters == {"duplicate_clusters": 0}
    assert sum(s.docs_kept + s.docs_rejected for s in stats) == 9
    assert pq.read_table(Path(out) / DUPLICATES_FILE).num_rows == 3


def test_rerun_skips_what_is_still_valid(two_shards):
    paths, out, _, _ = two_shards
    run_phases(paths, out, CFG)
    signed, counts, stats = run_phases(paths, out, CFG)
    assert [s.skipped for s in signed] == [1, 1]
    assert counts.skipped == 1 and counts.near_duplicate == 2
    assert [s.counters.get("shards_skipped") for s in stats] == [1, 1]
    assert stats[1].rejected_by_reason == {"near_duplicate": 2, "exact_duplicate": 1}
    (Path(out) / SIGNATURES_DIR / "part-00000.parquet").write_bytes(b"not parquet")  # damaged by hand
    assert sign_shard.fn(paths[0], out, CFG).skipped == 0
    assert cluster_duplicates.fn(out, CFG).skipped == 1  # same inputs, same result: nothing to redo


def test_new_threshold_reclusters_without_resigning_and_redoes_the_shards(two_shards):
    paths, out, _, _ = two_shards
    run_phases(paths, out, CFG)
    strict = CFG.model_copy(update={"threshold": 0.95})
    signed, counts, stats = run_phases(paths, out, strict)
    assert [s.skipped for s in signed] == [1, 1]
    assert (counts.skipped, counts.near_duplicate, counts.exact_duplicate) == (0, 0, 1)
    assert [s.counters.get("shards_skipped") for s in stats] == [None, None]
    assert stats[1].rejected_by_reason == {"exact_duplicate": 1}


def test_new_shingle_size_resigns(two_shards):
    paths, out, _, _ = two_shards
    run_phases(paths, out, CFG)
    signed, counts, _ = run_phases(paths, out, CFG.model_copy(update={"shingle_size": 4}))
    assert [s.skipped for s in signed] == [0, 0]
    assert (counts.near_duplicate, counts.exact_duplicate) == (2, 1)


def test_phases_out_of_order_fail_clearly(two_shards):
    paths, out, _, _ = two_shards
    with pytest.raises(FileNotFoundError, match="run sign_shard"):
        cluster_duplicates.fn(out, CFG, shard_names=["part-00000.parquet"])
    with pytest.raises(FileNotFoundError, match="run cluster_duplicates"):
        dedup_shard.fn(paths[0], out, CFG)
    sign_shard.fn(paths[0], out, CFG)
    with pytest.raises(ValueError, match="other signature settings"):
        cluster_duplicates.fn(out, CFG.model_copy(update={"seed": 1}), shard_names=["part-00000.parquet"])


def test_an_empty_shard_and_a_shard_of_blank_texts_pass_through_the_tasks(tmp_path):
    upstream, out = tmp_path / "clean", str(tmp_path / "dedup")
    write_shard(upstream / "part-00000.parquet", [])
    write_shard(upstream / "part-00001.parquet", [news("a", ""), news("b", "  \n"), news("c", "")])
    paths = [str(upstream / "part-00000.parquet"), str(upstream / "part-00001.parquet")]
    signed, counts, stats = run_phases(paths, out, CFG)
    assert [(s.docs, s.unsigned) for s in signed] == [(0, 0), (3, 3)]
    assert (counts.docs, counts.unsigned, counts.clusters) == (3, 3, 0)
    assert [(s.docs_in, s.docs_kept) for s in stats] == [(0, 0), (3, 3)]


def test_the_same_record_in_two_shards_is_kept_twice_rather_than_lost(tmp_path):
    upstream, out = tmp_path / "clean", str(tmp_path / "dedup")
    doc = news("news/2026-03-01-rail.html", RAIL)
    write_shard(upstream / "part-00000.parquet", [doc])
    write_shard(upstream / "part-00001.parquet", [doc])  # same id twice: the filter could not tell the copies apart
    paths = [str(upstream / "part-00000.parquet"), str(upstream / "part-00001.parquet")]
    _, counts, stats = run_phases(paths, out, CFG)
    assert (counts.exact_duplicate, counts.kept_for_shared_id) == (0, 1)
    assert [s.docs_kept for s in stats] == [1, 1]
