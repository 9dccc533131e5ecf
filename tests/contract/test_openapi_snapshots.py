"""No path, method, status, parameter or field of a released API disappears."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenement.api import openapi_document
from tests.contract.openapi_facts import facts, fields, validate

SNAPSHOTS = sorted(Path(__file__).parent.glob("openapi-*.json"))


def test_there_is_a_snapshot() -> None:
    assert SNAPSHOTS, "tests/contract/openapi-<version>.json is missing"


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=lambda p: p.name)
def test_the_live_document_keeps_every_promise_of(snapshot: Path) -> None:
    promised = facts(json.loads(snapshot.read_text()))
    live = facts(openapi_document())
    missing = sorted(promised - live)
    assert not missing, f"removed since {snapshot.name}: {missing[:20]}"


def test_the_fact_walker_sees_a_removed_field() -> None:
    doc = openapi_document()
    before = facts(doc)
    del doc["components"]["schemas"]["Instance"]["properties"]["weight"]
    assert ("GET /api/instances", "200", "application/json", "[].weight") in before - facts(doc)


def test_every_ref_resolves_and_every_schema_has_fields() -> None:
    doc = openapi_document()
    for name, schema in doc["components"]["schemas"].items():
        assert list(fields(doc, schema)), name


def test_the_validator_rejects_a_wrong_shape() -> None:
    doc = openapi_document()
    schema = {"$ref": "#/components/schemas/WeightResponse"}
    assert validate(doc, schema, {"instance": "a:b", "weight": 5}) == []
    assert validate(doc, schema, {"instance": "a:b", "weight": 500})
    assert validate(doc, schema, {"instance": "a:b"})
    assert validate(doc, schema, {"instance": "a:b", "weight": 5, "extra": 1})
