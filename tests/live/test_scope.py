"""The live feed's scope rule (one function) and the client's topic/township filter."""

from typing import Any

import pytest

from app.auth import Principal
from app.live.schemas import FeedEvent
from app.live.scope import ScopeViolation, Subscription, can_see, subscription_for
from app.users.models import Role

A, B = "120119001", "120119104"  # two townships


def event(
    *,
    township: str | None = None,
    topic: str = "incident.created",
    subject_type: str = "incident",
    subject_id: str = "1",
    data: dict[str, Any] | None = None,
) -> FeedEvent:
    from datetime import UTC, datetime

    return FeedEvent.build(
        seq=1,
        topic=topic,
        ts=datetime.now(UTC),
        township=township,
        subject_type=subject_type,
        subject_id=subject_id,
        actor="test",
        exercise=False,
        data=data or {},
    )


COMMAND = Principal(subject="c", role=Role.COMMAND)
VIEWER = Principal(subject="v", role=Role.VIEWER)
TOWNSHIP_A = Principal(subject="a", role=Role.TOWNSHIP, township=A)
RESPONDER_3 = Principal(subject="r", role=Role.RESPONDER, team_id=3)
PARTNER = Principal(subject="p", role=Role.PARTNER, partner_id="pinggu")


@pytest.mark.parametrize(
    ("principal", "the_event", "visible"),
    [
        (COMMAND, event(township=A), True),
        (COMMAND, event(township=None), True),
        (VIEWER, event(township=B), True),
        (TOWNSHIP_A, event(township=A), True),
        (TOWNSHIP_A, event(township=None), True),
        (TOWNSHIP_A, event(township=B), False),
        (RESPONDER_3, event(subject_type="team", subject_id="3", township=B), True),
        (RESPONDER_3, event(subject_type="team", subject_id="4"), False),
        (RESPONDER_3, event(subject_type="team", subject_id="33"), False),
        (RESPONDER_3, event(topic="dispatch.created", data={"team_ids": [7, 3]}), True),
        (RESPONDER_3, event(topic="dispatch.created", data={"team_ids": [7, 4]}), False),
        (RESPONDER_3, event(topic="dispatch.created", data={"team_ids": ["3"]}), False),
        (RESPONDER_3, event(topic="dispatch.created", data={"team_ids": 3}), False),
        (RESPONDER_3, event(township=None), False),
        (RESPONDER_3, event(subject_type="incident", subject_id="3"), False),
        (PARTNER, event(township=None), False),
    ],
)
def test_scope_rule(principal: Principal, the_event: FeedEvent, visible: bool) -> None:
    assert can_see(principal, the_event) is visible


def test_a_json_true_is_not_team_one() -> None:
    responder_1 = Principal(subject="r", role=Role.RESPONDER, team_id=1)
    assert not can_see(responder_1, event(data={"team_ids": [True]}))
    assert can_see(responder_1, event(data={"team_ids": [1]}))


@pytest.mark.parametrize(
    ("patterns", "topic", "matches"),
    [
        (["*"], "incident.created", True),
        (["incident.*"], "incident.created", True),
        (["incident.*"], "incidents.created", False),
        (["incident.*"], "team.status_changed", False),
        (["*.created"], "shelter.created", True),
        (["team.status_changed"], "team.status_changed", True),
        (["team.status"], "team.status_changed", False),
        (["team.*", "dispatch.*"], "dispatch.created", True),
    ],
)
def test_topic_wildcards(patterns: list[str], topic: str, matches: bool) -> None:
    assert Subscription(topics=tuple(patterns)).matches(event(topic=topic)) is matches


def test_township_filter_keeps_district_wide_events() -> None:
    only_a = Subscription(townships=frozenset({A}))
    assert only_a.matches(event(township=A))
    assert only_a.matches(event(township=None))
    assert not only_a.matches(event(township=B))


def test_a_township_token_may_only_narrow_to_its_own_township() -> None:
    assert subscription_for(TOWNSHIP_A, ["*"], [A]).townships == {A}
    assert subscription_for(TOWNSHIP_A, ["*"], None).townships is None  # its whole scope
    with pytest.raises(ScopeViolation, match=B):
        subscription_for(TOWNSHIP_A, ["*"], [A, B])
    # command and viewer may narrow to any township
    assert subscription_for(COMMAND, ["incident.*"], [B]).townships == {B}
