"""The JSON Schemas (draft 2020-12) of the federation messages: loaded once from schemas/, served as they
are, and used to validate every inbound message with the offending field named as a JSON pointer."""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

SCHEMA_DIR = "schemas"
SUFFIX = ".schema.json"


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """The first problem found (pointer = RFC 6901 JSON pointer into the whole message) and all of them."""

    pointer: str
    message: str
    all: list[dict[str, str]]


@cache
def schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("app.federation").joinpath(SCHEMA_DIR)
    out: dict[str, dict[str, Any]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(SUFFIX):
            out[entry.name.removesuffix(SUFFIX)] = json.loads(entry.read_text(encoding="utf-8"))
    return out


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = schemas()[name]
    Draft202012Validator.check_schema(schema)
    # The format checker makes "date-time" a real RFC 3339 check (rfc3339-validator is installed).
    return Draft202012Validator(schema, format_checker=FormatChecker())


def escape(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(prefix: str, path: Any) -> str:
    return prefix + "".join("/" + escape(p) for p in path)


def _error_pointer(prefix: str, error: ValidationError) -> str:
    where = pointer(prefix, error.absolute_path)
    # A missing member is named by where it should be, not by its parent.
    if error.validator == "required" and isinstance(error.instance, dict) and isinstance(error.validator_value, list):
        missing = [p for p in error.validator_value if p not in error.instance]
        if missing:
            return where + "/" + escape(missing[0])
    if (
        error.validator == "additionalProperties"
        and isinstance(error.instance, dict)
        and isinstance(error.schema, dict)
    ):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            return where + "/" + escape(extra[0])
    return where


def _depth_first(error: ValidationError) -> ValidationError:
    """anyOf/oneOf/if-then errors wrap the useful one; descend to the deepest, most specific."""
    while error.context:
        error = min(error.context, key=lambda e: (-len(e.absolute_path), str(e.message)))
    return error


def validate(name: str, instance: Any, prefix: str = "") -> SchemaProblem | None:
    """None when the instance satisfies the named schema, else where and why it does not."""
    errors = sorted(
        _validator(name).iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), str(e.message))
    )
    if not errors:
        return None
    listed = []
    for err in errors[:20]:
        specific = _depth_first(err)
        listed.append({"pointer": _error_pointer(prefix, specific), "message": specific.message[:500]})
    first = listed[0]
    return SchemaProblem(pointer=first["pointer"], message=first["message"], all=listed)
