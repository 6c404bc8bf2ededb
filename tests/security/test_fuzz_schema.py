"""schemathesis against the live OpenAPI schema, for every operation, with a token of each role:
no 5xx, and every response matches the schema."""

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CommittedDb
from tests.server import running_server

pytestmark = pytest.mark.slow
EXAMPLES = {"command": 15, "township": 5, "viewer": 5, "responder": 5}


@pytest.mark.parametrize("role", list(EXAMPLES))
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    committed_db: CommittedDb, token: Callable[..., str], role: str, tmp_path: Path
) -> None:
    scope = {"township": "120119001"} if role == "township" else {"team": 1} if role == "responder" else {}
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is a dev dependency"
    with running_server(committed_db.url, JIZHOU_FEDERATION_WORKER_ENABLED="false") as server:
        done = subprocess.run(
            [
                cli,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "-H",
                f"Authorization: Bearer {token(role, **scope)}",
                "-n",
                str(EXAMPLES[role]),
                "--seed",
                "20261203",
                "--request-timeout",
                "30",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        log = server.log()
    summary = done.stdout[-4000:]
    assert done.returncode == 0, f"{summary}\n--- server log ---\n{log[-3000:]}"
    assert "Internal Server Error" not in log
