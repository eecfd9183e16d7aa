"""The stage table is the one list: the recipe, every flow's typed parameters, `liandan step` and `liandan run --flow`,
`liandan audit`'s order and the deployments' parameter schemas are all read from it, so adding a stage is one entry."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

import flows.stages as stages
from flows.cli import build_parser
from flows.recipe import Recipe, RunConfig, flow_parameters
from flows.stages import DATA_STAGES, FLOWS, STAGES, Stage, stages_of

ROOT = Path(__file__).resolve().parent.parent
NAMES = [s.name for s in STAGES]


def _flows():
    from flows.align import align_model
    from flows.data import build_corpus
    from flows.pipeline import run_pipeline, train_model
    from flows.train import train_base_model

    # each flow with the table's flows whose sections it takes, and its own parameters (not sections)
    return [
        (build_corpus, ("data",), []),
        (train_base_model, ("train",), ["data_stage", "allow_undeidentified"]),
        (align_model, ("align",), ["stages", "base_model"]),
        (run_pipeline, FLOWS, ["align_stages"]),
        (train_model, ("train", "align"), ["align_stages", "data_stage", "allow_undeidentified"]),
    ]


def _choices(parser: argparse.ArgumentParser, command: str, dest: str) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (action,) = [a for a in sub.choices[command]._actions if a.dest == dest]
    return list(action.choices)


def test_the_table_is_the_chain_in_order():
    assert NAMES == [
        "crawl", "extract", "ocr", "clean", "dedup", "deid", "quality", "mixture",
        "tokenizer", "pack", "model", "pretrain", "sft", "distill", "dpo", "grpo", "evaluate",
    ]
    assert len(set(NAMES)) == len(NAMES) and len({s.dir_name for s in STAGES}) == len(STAGES)
    for s in STAGES:  # an upstream is an earlier stage: the table is in chain order
        assert s.upstream is None or NAMES.index(s.upstream) < NAMES.index(s.name), s.name
        assert set(s.flows) <= set(FLOWS) and s.flows, s.name
    assert [s.name for s in STAGES if s.kind == "model"] == ["pretrain", "sft", "distill", "dpo", "grpo"]
    assert stages.ALIGN_STAGES == ("sft", "distill", "dpo", "grpo")


def test_recipe_flows_cli_and_audit_read_the_table():
    assert list(Recipe.model_fields) == ["run", *NAMES]
    for name in NAMES:
        assert Recipe.model_fields[name].annotation is stages.STAGE[name].config
    covered: set[str] = set()
    for flow, flow_names, own in _flows():
        sections = [s.name for s in stages_of(*flow_names)]
        assert list(inspect.signature(flow.fn).parameters) == ["run", *sections, *own], flow.name
        assert list(flow.parameters.properties) == ["run", *sections, *own], flow.name  # what Prefect's form shows
        covered |= set(sections)
    assert covered == set(NAMES)  # every section reaches a flow
    parser = build_parser()
    assert _choices(parser, "step", "stage") == list(DATA_STAGES) == NAMES[: NAMES.index("mixture") + 1]
    assert _choices(parser, "run", "flow") == ["all", *FLOWS]
    positions = [stages.chain_position(s.dir_name) for s in STAGES]
    assert positions == sorted(positions) and stages.chain_position("quality_model") == len(STAGES)


def test_every_flow_parameter_is_its_sections_model_with_its_schema():
    for flow, flow_names, _ in _flows():
        schema = flow.parameters.model_dump(mode="json")
        for s in stages_of(*flow_names):
            prop = schema["properties"][s.name]
            assert prop["$ref"] == f"#/definitions/{s.config.__name__}" and prop["default"] == s.config().model_dump(mode="json")
            definition = schema["definitions"][s.config.__name__]
            assert set(definition["properties"]) == set(s.config.model_fields), (flow.name, s.name)
            assert definition["description"] == inspect.cleandoc(s.config.__doc__)


def test_every_deployment_takes_its_flows_sections_from_the_recipe():
    from deployments.deploy import build_deployments

    flow_sections = {flow.name: [s.name for s in stages_of(*names)] for flow, names, _ in _flows()}
    for d in build_deployments(ROOT / "recipes" / "demo.yaml"):
        schema = d._parameter_openapi_schema.model_dump(exclude_none=True)
        sections = flow_sections[d.flow_name]
        assert [name for name in d.parameters if name in NAMES] == sections, d.flow_name
        for name in sections:
            config = stages.STAGE[name].config
            assert schema["properties"][name]["$ref"] == f"#/definitions/{config.__name__}"
            assert set(schema["definitions"][config.__name__]["properties"]) == set(d.parameters[name]) == set(config.model_fields)


class ShinyConfig(BaseModel):
    """A stage a user adds."""

    level: int = Field(3, description="How shiny.", ge=0, le=9)


def test_adding_a_stage_is_one_entry(monkeypatch):
    shiny = Stage("shiny", ShinyConfig, "document", ("data",), "mixture")
    monkeypatch.setattr(stages, "STAGES", (*STAGES, shiny))  # the one edit: an entry in the table

    @flow_parameters("data")
    def corpus(run: RunConfig = RunConfig(), *, note: str = "", **sections: BaseModel) -> dict:
        return sections

    params = inspect.signature(corpus).parameters
    assert list(params) == ["run", *DATA_STAGES, "shiny", "note"]
    assert params["shiny"].annotation is ShinyConfig and params["shiny"].default == ShinyConfig()
    assert params["shiny"].kind is inspect.Parameter.KEYWORD_ONLY
    from prefect import flow

    form = flow(corpus).parameters.model_dump(mode="json")
    assert form["definitions"]["ShinyConfig"]["properties"]["level"]["maximum"] == 9  # Prefect renders it as a typed form

    @flow_parameters("train")
    def other(run: RunConfig = RunConfig(), **sections: BaseModel) -> None: ...

    assert "shiny" not in inspect.signature(other).parameters  # only the flows the entry names take it


def test_a_flow_function_must_take_its_sections_as_keywords():
    with pytest.raises(TypeError, match=r"\*\*sections"):

        @flow_parameters("data")
        def corpus(run: RunConfig = RunConfig()) -> None: ...
