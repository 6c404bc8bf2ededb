"""The partner-facing endpoints, /federation/v1: messages in (signed), shared resources out, the schemas."""

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from app.db import SessionDep
from app.errors import NotFound
from app.federation import envelope as env
from app.federation import inbox, jsonschemas, resources
from app.federation.trust import AnyPartner, SignedPartner, answer_headers

router = APIRouter(prefix="/federation/v1", tags=["federation (partners)"])

SIGNED: dict[int | str, dict[str, Any]] = {
    401: {"description": "unsigned, unknown key, bad signature or digest, timestamp more than 5 minutes off"},
    403: {"description": "inactive or unknown partner; a district token; senderID not the signer"},
}


@router.post(
    "/messages",
    responses={
        200: {"description": "an Ack envelope (a replayed distributionID gets the first answer again)"},
        **SIGNED,
        400: {"description": "Error envelope: not JSON, expired, sent in the future"},
        404: {"description": "Error envelope: names a request we do not know"},
        409: {"description": "Error envelope: a state that does not allow it, or a reused distributionID"},
        422: {"description": "Error envelope naming the invalid field (JSON pointer)"},
    },
)
async def post_message(request: Request, session: SessionDep, caller: SignedPartner) -> Response:
    """Take one EDXL-DE style envelope from a partner. It is stored, acted on and acknowledged in one
    transaction; invalid or refused messages get an Error envelope and nothing is stored."""
    request.state.federation_partner = caller.partner_id
    request.state.federation_reference, request.state.federation_status = _reference(caller.body)
    status, body, replayed = await inbox.receive(
        session=session, settings=request.app.state.settings, caller=caller, body=caller.body
    )
    headers = answer_headers(request, caller.partner_id, status, body)
    if replayed:
        headers["Fed-Replay"] = "true"
    return Response(body, status_code=status, media_type=env.JSON, headers=headers)


@router.get("/resources", responses=SIGNED)
async def shared_resources(request: Request, session: SessionDep, caller: AnyPartner) -> dict[str, Any]:
    """What the partner's agreement shares: shareable teams (counts, positions, status), depot stock, helipads."""
    return await resources.availability(
        session=session,
        sender=request.app.state.settings.federation_sender_id,
        partner_id=caller.partner_id,
        roles=caller.roles,
    )


@router.get("/schemas")
async def list_schemas(request: Request) -> dict[str, Any]:
    """The JSON Schemas (draft 2020-12) of the envelope and every content type (public)."""
    return {
        "schemas": [
            {"name": name, "title": schema.get("title", ""), "href": str(request.url_for("get_schema", name=name))}
            for name, schema in sorted(jsonschemas.schemas().items())
        ]
    }


@router.get("/schemas/{name}", name="get_schema")
async def get_schema(name: str) -> JSONResponse:
    schema = jsonschemas.schemas().get(name.removesuffix(".json").removesuffix(".schema"))
    if schema is None:
        raise NotFound(f"no schema is called {name}", code="schema_not_found")
    return JSONResponse(schema, media_type="application/schema+json")


def _reference(body: bytes) -> tuple[str | None, str]:
    """The distributionID and status to put on an Error answer, when the body has them."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, "Actual"
    if not isinstance(parsed, dict):
        return None, "Actual"
    reference = parsed.get("distributionID")
    status = parsed.get("distributionStatus")
    return (
        reference if isinstance(reference, str) and len(reference) <= 128 else None,
        status if status in ("Actual", "Exercise", "System", "Test") else "Actual",
    )


async def _envelope_error(request: Request, exc: Exception) -> Response:
    """Refused messages are answered in kind: an Error envelope naming the field, with the code in a header."""
    assert isinstance(exc, env.EnvelopeError)
    settings = request.app.state.settings
    reference = getattr(request.state, "federation_reference", None)
    status = getattr(request.state, "federation_status", "Actual")
    body = env.error(
        sender=settings.federation_sender_id,
        code=exc.code,
        message=exc.message,
        pointer=exc.pointer,
        details=exc.details,
        recipient=getattr(request.state, "federation_partner", None),
        reference=reference,
        status=status,
    )
    content = env.dumps(body)
    # Signed like an Ack once the partner is known: the sender gives a message up on a permanent Error.
    signature = answer_headers(request, getattr(request.state, "federation_partner", None), exc.status_code, content)
    return Response(
        content,
        status_code=exc.status_code,
        media_type=env.JSON,
        headers={env.ERROR_CODE_HEADER: exc.code, **signature},
    )


def install(app: FastAPI) -> None:
    """Mount the partner-facing router and its error answer."""
    app.include_router(router)
    app.add_exception_handler(env.EnvelopeError, _envelope_error)
