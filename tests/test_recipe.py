from __future__ import annotations

from pathlib import Path

import pytest

from flows.recipe import Recipe, RecipeError, RunConfig, load_recipe, load_section
from tasks.extract.config import ExtractConfig

ROOT = Path(__file__).resolve().parent.parent


def test_demo_recipe_validates():
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml")
    assert recipe.run.name == "demo"
    assert recipe.crawl.seeds == ["http://127.0.0.1:8731/index.html"]


def test_bad_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("crawl:\n  max_pagez: 3\nextract:\n  min_chars: -1\nsurprise: {}\n", encoding="utf-8")
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert "crawl.max_pagez: Extra inputs are not permitted" in message
    assert "extract.min_chars" in message and "(got -1)" in message
    assert "surprise: Extra inputs are not permitted" in message


def test_overrides_are_parsed_as_yaml():
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml", ["crawl.max_pages=7", "run.name=nightly", "extract.min_chars=10"])
    assert (recipe.crawl.max_pages, recipe.run.name, recipe.extract.min_chars) == (7, "nightly", 10)
    with pytest.raises(RecipeError, match="expected section.key=value"):
        load_recipe(ROOT / "recipes" / "demo.yaml", ["crawl.max_pages"])


def test_section_file_with_or_without_heading(tmp_path):
    bare = tmp_path / "a.yaml"
    bare.write_text("min_chars: 5\n", encoding="utf-8")
    headed = tmp_path / "b.yaml"
    headed.write_text("extract:\n  min_chars: 6\n", encoding="utf-8")
    assert load_section(ExtractConfig, bare, "extract").min_chars == 5
    assert load_section(ExtractConfig, headed, "extract").min_chars == 6
    assert load_section(ExtractConfig, None, "extract") == ExtractConfig()
    bare.write_text("min_charz: 5\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="extract.min_charz: Extra inputs"):
        load_section(ExtractConfig, bare, "extract")


def test_run_name_defaults_to_flow_and_date():
    import datetime as dt

    assert RunConfig().resolved_name("data", dt.date(2026, 11, 29)) == "data-2026-11-29"
    assert RunConfig(name="x").resolved_name("data") == "x"
    assert Recipe().run.runs_dir == "runs"


def test_demo_recipe_evaluates_and_evaluation_turns_off():
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml")
    assert recipe.evaluate.enabled and recipe.evaluate.arith_problems == 100 and recipe.evaluate.self_consistency_k == 4
    assert not load_recipe(ROOT / "recipes" / "demo.yaml", ["evaluate.enabled=false"]).evaluate.enabled
    with pytest.raises(RecipeError, match="evaluate.gate_metrics.0"):
        load_recipe(ROOT / "recipes" / "demo.yaml", ["evaluate.gate_metrics=[accuracy]"])
