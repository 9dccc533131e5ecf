"""What an OpenAPI document promises, as a set of comparable facts, plus a small validator.

A fact is a tuple such as ``("GET /api/instances", "200", "response", "[].id")``. The
contract test checks that every fact of every earlier release's snapshot is still a fact
of the live document: paths, methods, statuses, parameters and fields may be added,
never removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def fields(doc: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted field paths of a schema (``[]`` for array items), through ``$ref``s."""
    schema = resolve(doc, schema)
    if "items" in schema:
        yield f"{prefix}[]"
        yield from fields(doc, schema["items"], f"{prefix}[]")
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield path
        yield from fields(doc, sub, path)


def facts(doc: dict[str, Any]) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            endpoint = f"{method.upper()} {path}"
            out.add((endpoint,))
            for param in [*shared, *op.get("parameters", [])]:
                out.add((endpoint, "parameter", param["in"], param["name"]))
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                out.add((endpoint, "request", media))
                for field in fields(doc, content.get("schema", {})):
                    out.add((endpoint, "request", media, field))
            for status, response in op["responses"].items():
                out.add((endpoint, status))
                for media, content in response.get("content", {}).items():
                    out.add((endpoint, status, media))
                    for field in fields(doc, content.get("schema", {})):
                        out.add((endpoint, status, media, field))
    return out


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def validate(doc: dict[str, Any], schema: dict[str, Any], value: Any, at: str = "$") -> list[str]:
    """Problems of ``value`` against the JSON-schema subset the document uses."""
    schema = resolve(doc, schema)
    problems = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            return [f"{at}: {value!r} is not of type {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}: {value!r} not in {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{at}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{at}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{at}: missing {name!r}")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                problems.extend(validate(doc, sub, value[name], f"{at}.{name}"))
        undocumented = set(value) - set(schema.get("properties", {}))
        if undocumented and "properties" in schema:
            problems.append(f"{at}: undocumented fields {sorted(undocumented)}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems.extend(validate(doc, schema["items"], item, f"{at}[{index}]"))
    return problems


def response_schema(doc: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    response = doc["paths"][path][method.lower()]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]
