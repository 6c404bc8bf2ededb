"""Who may see which event (one rule, `can_see`), and the topic/township filter a client narrows it with."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.auth import Principal
from app.users.models import Role


class ScopedEvent(Protocol):
    @property
    def township(self) -> str | None: ...
    @property
    def subject_type(self) -> str: ...
    @property
    def subject_id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


def can_see(principal: Principal, event: ScopedEvent) -> bool:
    """The scope rule of the live feed.

    command and viewer: every event. township: its own township's events and district-wide ones
    (township null), never another township's. responder: only its own team's, i.e. events about the team
    (`subject_type == "team"`, `subject_id == str(team_id)`) or naming it in `data.team_ids`.
    partner: nothing (partner tokens are refused at connect anyway).
    """
    if principal.role in (Role.COMMAND, Role.VIEWER):
        return True
    if principal.role is Role.TOWNSHIP:
        return principal.township is not None and (event.township is None or event.township == principal.township)
    if principal.role is Role.RESPONDER:
        team = principal.team_id
        if team is None:
            return False
        if event.subject_type == "team" and event.subject_id == str(team):
            return True
        team_ids = event.data.get("team_ids")
        # bool is an int in Python; `true` is not team 1.
        return isinstance(team_ids, list) and any(type(i) is int and i == team for i in team_ids)
    return False


def scope_key(principal: Principal) -> tuple[str, str | int | None]:
    """What `can_see` depends on: principals with the same key see the same events, so the fan-out filters a
    cycle's events once per key (and filter), not once per socket."""
    if principal.role in (Role.COMMAND, Role.VIEWER):
        return ("all", None)
    if principal.role is Role.TOWNSHIP:
        return ("township", principal.township)
    if principal.role is Role.RESPONDER:
        return ("team", principal.team_id)
    return ("none", None)


class ScopeViolation(Exception):
    """A subscription asks for more than the token may see."""


def _topic_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    # `*` matches any run of characters (dots included): `incident.*`, `*.created`, `*`.
    alternatives = ("".join(".*" if c == "*" else re.escape(c) for c in p) for p in patterns)
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


@dataclass(frozen=True, slots=True)
class Subscription:
    """A client's filter inside its scope: topics with wildcards; townships (district-wide events always pass)."""

    topics: tuple[str, ...] = ("*",)
    townships: frozenset[str] | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _topic_regex(self.topics))

    def matches(self, event: ScopedEvent) -> bool:
        if self.townships is not None and event.township is not None and event.township not in self.townships:
            return False
        return self._regex.fullmatch(event.topic) is not None


def sees_everything(principal: Principal, subscription: Subscription) -> bool:
    """Whether `can_see` and the filter pass every event for this socket: the fan-out then skips both per event."""
    return (
        principal.role in (Role.COMMAND, Role.VIEWER) and subscription.townships is None and "*" in subscription.topics
    )


def subscription_for(principal: Principal, topics: Iterable[str], townships: Iterable[str] | None) -> Subscription:
    """The filter a client asked for; a township token may only narrow to its own township."""
    wanted = frozenset(townships) if townships is not None else None
    if principal.role is Role.TOWNSHIP and wanted is not None:
        others = wanted - {principal.township or ""}
        if others:
            raise ScopeViolation(f"a township token sees only its own township, not {', '.join(sorted(others))}")
    return Subscription(topics=tuple(dict.fromkeys(topics)), townships=wanted)
