"""The document's links lead somewhere: each names an operation that exists, and fills
exactly that operation's path parameters from a field the response really has."""

from __future__ import annotations

from tenement.api import openapi_document
from tests.contract.openapi_facts import METHODS, fields


def test_every_link_names_an_operation_and_fills_its_path_parameters() -> None:
    doc = openapi_document()
    operations = {}
    for item in doc["paths"].values():
        for method in METHODS:
            if method in item and "operationId" in item[method]:
                params = [*item.get("parameters", []), *item[method].get("parameters", [])]
                path_params = {p["name"] for p in params if p["in"] == "path"}
                operations[item[method]["operationId"]] = path_params
    links = 0
    for item in doc["paths"].values():
        for method in METHODS:
            for response in item.get(method, {}).get("responses", {}).values():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                for link in response.get("links", {}).values():
                    links += 1
                    assert link["operationId"] in operations
                    assert set(link["parameters"]) == operations[link["operationId"]]
                    for expression in link["parameters"].values():
                        field = expression.removeprefix("$response.body#/")
                        assert field in set(fields(doc, schema)), expression
    assert links >= 15  # spawn, restart and deploy each lead to the five instance operations
