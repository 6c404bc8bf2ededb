"""One exception family for everything a client can cause, and the one place it becomes a response.

Every error body is {"code": "...", "message": "...", "details": ...}; codes are stable
lower_snake strings that clients may branch on.
"""

import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class AppError(Exception):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "a valid bearer token is required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details}


def _json_safe(value: Any) -> Any:
    """Pydantic error contexts may hold exceptions or NaN; make them plain JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        item = {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        if "ctx" in err:
            item["ctx"] = err["ctx"]
        details.append(_json_safe(item))
    return details


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.code, exc.message, _json_safe(exc.details)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    if any(d.get("type") == "json_invalid" for d in details):
        return JSONResponse(error_body("invalid_json", "the request body is not valid JSON", details), 400)
    return JSONResponse(error_body("validation_error", "the request is not valid", details), 422)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return JSONResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))


def is_database_unavailable(exc: BaseException) -> bool:
    """True when the database could not be reached or dropped the connection (not a bug of ours)."""
    if isinstance(exc, PoolTimeoutError | OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, InterfaceError | OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        name = type(exc.orig).__name__ if exc.orig is not None else ""
        sqlstate = _sqlstate(exc)
        # 57P01 admin shutdown, 57014 statement timeout, 08xxx connection exceptions.
        return (
            sqlstate.startswith("08")
            or sqlstate in ("57P01", "57P02", "57P03", "57014")
            or ("ConnectionDoesNotExist" in name or "CannotConnectNow" in name)
        )
    return False


def is_transaction_conflict(exc: BaseException) -> bool:
    """True for a deadlock (40P01) or serialization failure (40001): PostgreSQL rolled the whole
    transaction back, so the same request can simply be sent again."""
    if not isinstance(exc, DBAPIError):
        return False
    return _sqlstate(exc) in ("40P01", "40001")


def _sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE under a wrapped driver error: SQLAlchemy's adapted asyncpg error carries the asyncpg one as
    its cause; app.db.on_driver wraps the asyncpg error itself."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        sqlstate = getattr(candidate, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
    return ""


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    if is_transaction_conflict(exc):
        # Nothing was written; still worth a look (lock order), hence a warning with the path.
        log.warning("transaction_conflict", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(
            error_body("transaction_conflict", "the request collided with a concurrent one and was undone; retry it"),
            503,
            headers={"Retry-After": "1"},
        )
    if is_database_unavailable(exc):
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(
            error_body("database_unavailable", "the database is not reachable right now; retry shortly"),
            503,
            headers={"Retry-After": "2"},
        )
    log.exception("unhandled_error", path=request.url.path)
    return JSONResponse(error_body("internal_error", "an internal error occurred; it has been logged"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
