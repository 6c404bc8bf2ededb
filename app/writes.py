"""What every resource write shares, one rule in one place each.

- Versions: an edit names the version it was made against (`If-Match: "<version>"` or a `version`
  field); the UPDATE is conditional on it, so a stale edit gets 409 `version_conflict` instead of
  silently overwriting someone else's change. Answers carry `ETag: "<version>"`.
- Places: the township of a resource is derived from its point; a point outside the district is
  refused (422 `outside_district`); a township the client names must exist and agree with the point.
- Scope: command writes everywhere; a township center only where the township is its own (for an
  edit: the current township and, when the point moves, the new one); 403 `out_of_scope` otherwise.
- Text: no NUL characters (PostgreSQL text cannot hold them; without this check they become a 500).
"""

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, ClassVar, Self

from fastapi import Header, Response
from geoalchemy2.shape import to_shape
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import AppError, BadRequest, Forbidden, NotFound
from app.events import service as event_service
from app.geo.coords import CoordSys
from app.geo.input import PointIn
from app.townships import service as township_service
from app.users.models import Role

INT4_MAX = 2_147_483_647

# ------------------------------------------------------------------------------------ text and edits


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


CleanText = AfterValidator(_clean_text)
# Natural keys of resources (T-FR-CITY, SH-120119001-01, DEP-FOREST, HP-BASE-01).
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")]
TownshipCode = Annotated[str, StringConstraints(pattern=r"^\d{9}$")]
Version = Annotated[int, Field(ge=1, le=INT4_MAX)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9+\-() ]{0,40}$")]


def _reject_nulls(model: BaseModel, nullable: frozenset[str]) -> None:
    nulls = sorted(f for f in model.model_fields_set if getattr(model, f) is None and f not in nullable)
    if nulls:
        raise ValueError(f"{', '.join(nulls)} cannot be null (leave a field out to keep it)")


class PatchModel(BaseModel):
    """A partial edit: only the fields present change; `null` is refused where the column has no null.

    `version` is the version the edit was made against (or send If-Match).
    """

    model_config = ConfigDict(extra="forbid")
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    version: Version | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        _reject_nulls(self, self.NULLABLE | {"version"})
        return self

    def given(self) -> dict[str, Any]:
        """The fields to change (everything sent but the version and the input coord_sys)."""
        return {f: getattr(self, f) for f in self.model_fields_set if f not in ("version", "coord_sys")}


# ------------------------------------------------------------------------------------------ versions


class DuplicateCode(AppError):
    """A create naming a code that another row of the kind already has."""

    status_code = 409
    code = "duplicate_code"


class EmptyPatch(AppError):
    status_code = 422
    code = "empty_patch"

    def __init__(self) -> None:
        super().__init__("the edit changes nothing: send at least one field besides the version")


class VersionConflict(AppError):
    status_code = 409
    code = "version_conflict"

    def __init__(self, subject: str, subject_id: int, *, current: int, expected: int) -> None:
        super().__init__(
            f"{subject} {subject_id} is at version {current}, not {expected}; read it again and reapply the change",
            details={"id": subject_id, "current_version": current, "your_version": expected},
            headers={"ETag": etag(current)},
        )


class VersionRequired(AppError):
    status_code = 428
    code = "version_required"


_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,10})"?\s*$')


async def if_match_header(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='the version the edit was made against, as sent in ETag ("3"); or a `version` field',
        ),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    found = _IF_MATCH.match(if_match)
    if found is None or not (1 <= int(found.group(1)) <= INT4_MAX):
        raise BadRequest(
            'If-Match must name one version, as the ETag does: If-Match: "3"',
            code="invalid_if_match",
            details={"if_match": if_match[:100]},
        )
    return int(found.group(1))


def expected_version(header: int | None, body: int | None) -> int:
    """The version an edit was made against; required, from the header or the body (agreeing if both)."""
    if header is not None and body is not None and header != body:
        raise BadRequest(
            "If-Match and the version field disagree",
            code="conflicting_versions",
            details={"if_match": header, "version": body},
        )
    version = header if header is not None else body
    if version is None:
        raise VersionRequired(
            'an edit must say which version it was made against: If-Match: "<version>" or a version field'
        )
    return version


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


async def conditional_update(
    session: AsyncSession,
    model: Any,
    *,
    subject: str,
    subject_id: int,
    expected: int,
    values: Mapping[str, Any],
) -> Any:
    """UPDATE ... WHERE id = :id AND version = :expected, bumping the version; the refreshed row.

    The version condition is evaluated on the row as it is when written (row-locked), so of two
    edits made against the same version exactly one succeeds; the other gets VersionConflict.
    """
    row = await session.scalar(
        update(model)
        .where(model.id == subject_id, model.version == expected)
        .values(**values, version=model.version + 1)
        .returning(model)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if row is None:
        current = await session.scalar(select(model.version).where(model.id == subject_id))
        if current is None:
            raise NotFound(f"no {subject} has the id {subject_id}", code=f"{subject}_not_found")
        raise VersionConflict(subject, subject_id, current=int(current), expected=expected)
    return row


def check_version(subject: str, subject_id: int, *, current: int, expected: int) -> None:
    """Early refusal of a stale edit (the conditional UPDATE is what guarantees it)."""
    if current != expected:
        raise VersionConflict(subject, subject_id, current=current, expected=expected)


# ------------------------------------------------------------------------------------------- places


class OutsideDistrict(AppError):
    status_code = 422
    code = "outside_district"


class TownshipMismatch(AppError):
    status_code = 422
    code = "township_mismatch"


@dataclass(frozen=True, slots=True)
class Place:
    """A point converted to WGS-84, with the township that holds it."""

    lon: float
    lat: float
    township: str

    @property
    def wkt(self) -> str:
        return f"SRID=4326;POINT({self.lon!r} {self.lat!r})"

    @property
    def snapshot(self) -> list[float]:
        return [round(self.lon, 7), round(self.lat, 7)]


def snapshot_point(value: Any) -> list[float] | None:
    """A stored point as audit snapshots carry it: [lon, lat], 7 decimals (about a centimetre)."""
    if value is None:
        return None
    shape = to_shape(value)
    return [round(shape.x, 7), round(shape.y, 7)]


async def place_in_district(
    *, session: AsyncSession, point: PointIn, coord_sys: CoordSys, claimed_township: str | None = None
) -> Place:
    """Convert the point once, find its township; refuse points outside the district.

    `claimed_township` is what the client believes (optional): it must be a known code and agree.
    """
    if claimed_township is not None:
        await township_service.ensure_township(session=session, code=claimed_township)
    lon, lat = point.wgs84(coord_sys)
    township = await township_service.township_for_point(session=session, lon=lon, lat=lat)
    if township is None:
        raise OutsideDistrict(
            "the point lies outside Jizhou District; resources are placed inside it",
            details={"lon": lon, "lat": lat, "coord_sys": CoordSys(coord_sys).value},
        )
    if claimed_township is not None and claimed_township != township:
        raise TownshipMismatch(
            f"the point lies in township {township}, not {claimed_township}",
            details={"township": claimed_township, "point_township": township},
        )
    return Place(lon=lon, lat=lat, township=township)


async def place_new(
    *, session: AsyncSession, principal: Principal, point: PointIn, coord_sys: CoordSys, township: str | None
) -> Place:
    """Where a new resource goes: the township holding its point (agreeing with the one claimed, if any),
    which the caller must be allowed to write."""
    place = await place_in_district(session=session, point=point, coord_sys=coord_sys, claimed_township=township)
    ensure_can_write(principal, place.township)
    return place


# -------------------------------------------------------------------------------------------- scope


class OutOfScope(Forbidden):
    code = "out_of_scope"


def ensure_can_write(principal: Principal, *townships: str | None) -> None:
    """Command writes anywhere; a township center only where every township named is its own."""
    foreign = sorted({t or "" for t in townships if not principal.can_write_township(t)})
    if foreign:
        raise OutOfScope(
            f"role {principal.role.value} may not change resources of township {foreign[0] or '(none)'}",
            details={"your_township": principal.township, "townships": [t or None for t in foreign]},
        )


def ensure_can_report_team(principal: Principal, team_ids: list[int], townships: Mapping[int, str | None]) -> None:
    """Who may report a team's position: command any team, a township center its own township's
    teams, a responder only its own team."""
    if principal.role is Role.COMMAND:
        return
    if principal.role is Role.RESPONDER:
        foreign = sorted({i for i in team_ids if i != principal.team_id})
    elif principal.role is Role.TOWNSHIP:
        foreign = sorted({i for i in team_ids if townships.get(i) != principal.township})
    else:
        foreign = sorted(set(team_ids))
    if foreign:
        raise OutOfScope(
            f"role {principal.role.value} may not report the position of team {foreign[0]}",
            details={"team_ids": foreign, "your_team": principal.team_id, "your_township": principal.township},
        )


# ------------------------------------------------------------------------------------------ changes


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"from": old, "to": new}} for the fields that differ (what an audit event carries)."""
    return {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}


# ---------------------------------------------------------------------------------- create and edit
# Teams, shelters, depots and helipads are created and edited the same way; what differs per kind is
# its snapshot (the editable state as JSON) and the summary its events carry.

Snapshot = Callable[[Any], dict[str, Any]]


async def create_resource(
    session: AsyncSession,
    model: Any,
    *,
    subject: str,
    values: Mapping[str, Any],
    principal: Principal,
    event_data: Snapshot,
) -> Any:
    """INSERT a resource under its unique code and record `<subject>.created` with `event_data(row)`.

    ON CONFLICT DO NOTHING: a taken code is a 409, not an aborted transaction (and no race between
    a lookup and the insert).
    """
    row = await session.scalar(
        pg_insert(model).values(**values).on_conflict_do_nothing(index_elements=[model.code]).returning(model)
    )
    if row is None:
        code = values["code"]
        raise DuplicateCode(f"a {subject} with the code {code} exists already", details={"code": code})
    await event_service.record(
        session=session,
        topic=f"{subject}.created",
        subject_type=subject,
        subject_id=row.id,
        actor=principal.actor,
        township=row.township_code,
        data=event_data(row),
    )
    return row


def _as_json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class PlannedEdit:
    """`values` go to the UPDATE; `wanted` is the snapshot they would produce from `before`."""

    before: dict[str, Any]
    values: dict[str, Any]
    wanted: dict[str, Any]

    @property
    def changes_anything(self) -> bool:
        """False for an edit that sets what is there already: it writes nothing (no version, no event)."""
        return bool(changes(self.before, self.wanted))


async def plan_edit(
    *,
    session: AsyncSession,
    principal: Principal,
    before: Mapping[str, Any],
    fields: Mapping[str, Any],
    point_field: str,
    coord_sys: CoordSys,
) -> PlannedEdit:
    """What a PATCH's fields (named as in the snapshot) change. A moved point gets its township again,
    and moving a resource into another township needs the right to write there too."""
    values: dict[str, Any] = {}
    wanted = dict(before)
    for name, value in fields.items():
        if name == point_field:
            place = await place_in_district(session=session, point=value, coord_sys=coord_sys)
            ensure_can_write(principal, place.township)
            values[name] = place.wkt
            values["township_code"] = wanted["township"] = place.township
            wanted[name] = place.snapshot
        else:
            # Lists (capabilities) are stored as plain text; single enums go to their Enum columns as members.
            values[name] = [_as_json(v) for v in value] if isinstance(value, list) else value
            wanted[name] = _as_json(value)
    return PlannedEdit(before=dict(before), values=values, wanted=wanted)


async def edit_resource(
    session: AsyncSession,
    model: Any,
    *,
    subject: str,
    subject_id: int,
    fields: Mapping[str, Any],
    coord_sys: CoordSys,
    expected: int,
    principal: Principal,
    load: Callable[[], Awaitable[Any]],
    point_field: str,
    snapshot: Snapshot,
    event_data: Snapshot,
    rules: Callable[[PlannedEdit], None] | None = None,
) -> Any:
    """A PATCH of one resource: refused when empty (422), loaded and scope-checked by `load` (404/403),
    refused when stale (409), planned, checked by the kind's own `rules` (which may add values), then one
    conditional UPDATE and its `<subject>.updated` event with the changes. An edit that sets what is
    there already writes nothing (no version bump, no event) and answers the row as it is."""
    if not fields:
        raise EmptyPatch()
    row = await load()
    check_version(subject, subject_id, current=row.version, expected=expected)
    edit = await plan_edit(
        session=session,
        principal=principal,
        before=snapshot(row),
        fields=fields,
        point_field=point_field,
        coord_sys=coord_sys,
    )
    if rules is not None:
        rules(edit)
    if not edit.changes_anything:
        return row
    updated = await conditional_update(
        session,
        model,
        subject=subject,
        subject_id=subject_id,
        expected=expected,
        values={**edit.values, "updated_at": func.now()},
    )
    await event_service.record(
        session=session,
        topic=f"{subject}.updated",
        subject_type=subject,
        subject_id=updated.id,
        actor=principal.actor,
        township=updated.township_code,
        data={
            **event_data(updated),
            "changes": changes(edit.before, snapshot(updated)),
            "township_from": edit.before["township"],
        },
    )
    return updated
