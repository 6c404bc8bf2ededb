"""Parameter types shared by routers."""

from typing import Annotated

from fastapi import Path

BIGINT_MAX = 9_223_372_036_854_775_807

# Ids are PostgreSQL bigints: anything outside that range can name no row and must not reach the driver.
IdPath = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
