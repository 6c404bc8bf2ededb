"""No request pays for a worker thread it does not need.

FastAPI runs every plain `def` endpoint and dependency in anyio's thread pool: a hand-off to a thread and back
per call, which cost ~14% of the server's CPU on a simple GET (py-spy, bench section 1). Everything here is
async; the one exception is OAuth2PasswordRequestForm on the login route, FastAPI's own class.
"""

import inspect
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute

from app.main import create_app
from tests.conftest import make_settings

ALLOWED_SYNC = {"OAuth2PasswordRequestForm"}


def _is_async(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    # An instance with an async __call__ (HTTPBearer); a class is instantiated synchronously.
    return not inspect.isclass(call) and inspect.iscoroutinefunction(type(call).__call__)


def _sync_calls(dependant: Dependant) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__name__", type(sub.call).__name__)
        if sub.call is not None and not _is_async(sub.call) and name not in ALLOWED_SYNC:
            found.append(name)
        found += _sync_calls(sub)
    return found


def _api_routes(routes: list[Any]) -> list[APIRoute | APIWebSocketRoute]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:  # an included APIRouter
            found += _api_routes(included.routes)
    return found


def test_every_endpoint_and_dependency_is_async() -> None:
    app = create_app(make_settings("postgresql+asyncpg://unused@127.0.0.1:1/unused"))  # never connects
    offenders = []
    routes = _api_routes(app.routes)
    assert len(routes) > 40  # the API's routes, not an empty app
    for route in routes:
        if not _is_async(route.endpoint):
            offenders.append(f"{route.path}: endpoint {route.endpoint.__name__}")
        offenders += [f"{route.path}: dependency {name}" for name in _sync_calls(route.dependant)]
    assert offenders == []
