"""Small helpers for enums stored as lower_snake strings (never native PostgreSQL enums)."""

from enum import StrEnum

import sqlalchemy as sa


def str_enum(enum: type[StrEnum], name: str) -> sa.Enum:
    """A VARCHAR with a CHECK constraint listing the enum's values."""
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )
