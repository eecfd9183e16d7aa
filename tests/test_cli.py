"""`liandan step` and `liandan run` as a user calls them, on real files and the sample site."""

from __future__ import annotations

import json
from pathlib import Path

from flows.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "sample" / "gold"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_step_extract_on_a_users_jsonl(tmp_path, capsys):
    page = "<html><head><title>测试 - 站点</title></head><body><nav>首页 新闻</nav><article><h1>测试</h1>" + "<p>这是一段足够长的中文正文，用来检验正文抽取是否保留段落结构，并去掉导航。</p>" * 2 + "</article></body></html>"
    src = tmp_path / "pages.jsonl"
    src.write_text(
        json.dumps({"url": "http://a.cn/1", "text": page}, ensure_ascii=False) + "\n"
        + json.dumps({"url": "http://a.cn/2", "text": "<html><body><p>太短</p></body></html>"}, ensure_ascii=False) + "\n"
        + "{broken json\n",
        encoding="utf-8",
    )
    out = tmp_path / "texts.jsonl"
    assert main(["step", "extract", "--input", str(src), "--output", str(out)]) == 0
    (kept,) = _jsonl(out)
    assert kept["text"].splitlines()[0] == "测试" and "首页" not in kept["text"]
    rejected = _jsonl(tmp_path / "texts.rejected.jsonl")
    assert sorted(r["reason"] for r in rejected) == ["invalid_record", "too_short"]
    summary = json.loads(capsys.readouterr().out)
    assert (summary["docs_in"], summary["docs_kept"], summary["invalid_records"]) == (2, 1, 1)


def test_step_with_bad_config_key_exits_2(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "<p>正文</p>"}\n', encoding="utf-8")
    cfg = tmp_path / "extract.yaml"
    cfg.write_text("min_charz: 3\n", encoding="utf-8")
    assert main(["step", "extract", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--config", str(cfg)]) == 2
    assert "extract.min_charz: Extra inputs are not permitted" in capsys.readouterr().err


def test_step_crawl_writes_pages_rejects_and_warc(tmp_path, sample_site_url):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"url": f"{sample_site_url}/news/index.html"}) + "\n", encoding="utf-8")
    cfg = tmp_path / "crawl.yaml"
    cfg.write_text("max_depth: 1\nallowed_networks: [127.0.0.1/32]\n", encoding="utf-8")
    out = tmp_path / "pages.jsonl"
    assert main(["step", "crawl", "--input", str(seeds), "--output", str(out), "--config", str(cfg)]) == 0
    pages = _jsonl(out)
    assert pages and all(p["meta"]["kind"] == "html" and p["source"] == "news" for p in pages if "/news/" in p["url"])
    assert (tmp_path / "pages.warc.gz").stat().st_size > 0
    reasons = {r["reason"] for r in _jsonl(tmp_path / "pages.rejected.jsonl")}
    assert "http_status" in reasons  # the sample's deliberate dead link news/ → archive/2025.html


def test_run_reports_a_bad_recipe(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("crawl:\n  seeds: [ftp://x]\n", encoding="utf-8")
    assert main(["run", str(recipe)]) == 2
    assert "crawl.seeds.0" in capsys.readouterr().err


def test_step_quality_trains_on_the_seed_set_and_routes(tmp_path, capsys):
    news = (GOLD / "news").glob("*.txt").__next__().read_text(encoding="utf-8")
    spam = "澳门赌场 在线投注 加微信 稳赚不赔 充值送彩金 " * 6
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join(json.dumps({"url": u, "text": t, "source": "web"}, ensure_ascii=False) for u, t in (("http://a.cn/n", news), ("http://a.cn/s", spam))) + "\n", encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    config = tmp_path / "quality.yaml"
    config.write_text("quality:\n  medium_action: keep\n", encoding="utf-8")
    assert main(["step", "quality", "--input", str(src), "--output", str(out), "--config", str(config)]) == 0
    (kept,) = _jsonl(out)
    assert kept["url"] == "http://a.cn/n" and kept["quality_tier"] == "high"
    (rejected,) = _jsonl(tmp_path / "scored.rejected.jsonl")
    assert rejected["url"] == "http://a.cn/s" and rejected["reason"] == "quality" and rejected["quality_score"] < kept["quality_score"]
