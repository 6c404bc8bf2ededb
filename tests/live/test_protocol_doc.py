"""docs/asyncapi.yaml and the code describe the same protocol."""

from typing import Any

import yaml

from app.live.schemas import BATCH_MAX_BYTES, CloseCode, Subscribe
from tests.conftest import ROOT


def load() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    return document


def test_the_document_is_asyncapi_3_with_every_message() -> None:
    doc = load()
    assert doc["asyncapi"].startswith("3.")
    channel = doc["channels"]["live"]
    assert channel["address"] == "/live" and doc["servers"]["api"]["pathname"] == "/api/v1"
    assert set(channel["messages"]) == {"event", "batch", "ping", "reset", "subscribed", "subscribe", "pong"}
    for name, ref in channel["messages"].items():
        assert ref["$ref"] == f"#/components/messages/{name}"


def test_every_close_code_is_documented() -> None:
    documented = {entry["code"]: entry["name"] for entry in load()["channels"]["live"]["x-close-codes"]}
    for code in CloseCode:
        assert documented.get(code.value) == code.name.lower(), code


def test_the_subscribe_schema_matches_the_model() -> None:
    schema = load()["components"]["schemas"]["Subscribe"]
    model = Subscribe.model_json_schema()["properties"]
    assert set(schema["properties"]) == set(model)
    assert schema["properties"]["topics"]["items"]["pattern"] == model["topics"]["items"]["pattern"]
    assert schema["properties"]["topics"]["maxItems"] == model["topics"]["maxItems"]


def test_the_batch_frame_limit_is_the_documented_one() -> None:
    doc = load()
    assert f"{BATCH_MAX_BYTES // 1024} KiB" in doc["components"]["messages"]["batch"]["description"]
    assert doc["channels"]["live"]["bindings"]["ws"]["query"]["properties"]["batch"]["type"] == "boolean"
