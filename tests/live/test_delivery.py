"""From the hub to a socket without a server: batch frames, shares per filter, the backlog's bound in events."""

import asyncio
from datetime import UTC, datetime

import orjson

from app.auth import Principal
from app.live.delivery import EVERYTHING, Share, Subscriber, batch_frames
from app.live.schemas import BATCH_MAX_BYTES, FeedEvent
from app.live.scope import Subscription, subscription_for
from app.users.models import Role

A, B = "120119001", "120119104"
COMMAND = Principal(subject="c", role=Role.COMMAND)


def event(seq: int, *, township: str | None = None, padding: int = 0, title: str = "") -> FeedEvent:
    return FeedEvent.build(
        seq=seq,
        topic="incident.created",
        ts=datetime.now(UTC),
        township=township,
        subject_type="incident",
        subject_id=str(seq),
        actor="test",
        exercise=False,
        data={"padding": "x" * padding, "title": title},
    )


def subscriber(principal: Principal = COMMAND, subscription: Subscription | None = None) -> Subscriber:
    return Subscriber(principal, subscription or Subscription(), queue_size=10, on_overflow=lambda: None, batch=True)


def test_a_batch_frame_joins_the_events_as_sent_one_by_one() -> None:
    events = [event(1), event(2, title="济州 火情"), event(3)]
    (frame,) = batch_frames((e, False) for e in events)
    message = orjson.loads(frame.text)
    assert message == {"type": "batch", "events": [orjson.loads(e.text) for e in events]}
    assert (frame.events, frame.last_seq) == (3, 3)


def test_late_events_are_marked_and_do_not_move_the_resume_point() -> None:
    frames = batch_frames([(event(5), False), (event(2), True)])
    assert [e.get("late") for e in orjson.loads(frames[0].text)["events"]] == [None, True]
    assert frames[0].last_seq == 5
    assert batch_frames([(event(2), True)])[0].last_seq is None


def test_frames_stay_under_the_byte_limit_and_keep_the_order() -> None:
    events = [event(seq, padding=100_000, title="汛") for seq in range(1, 12)]
    frames = batch_frames((e, False) for e in events)
    assert len(frames) > 1
    assert all(len(f.text.encode()) <= BATCH_MAX_BYTES for f in frames)
    assert [e["seq"] for f in frames for e in orjson.loads(f.text)["events"]] == list(range(1, 12))
    assert [f.last_seq for f in frames] == [max(e["seq"] for e in orjson.loads(f.text)["events"]) for f in frames]
    # One event larger than the limit still goes, in a frame of its own.
    (alone,) = batch_frames([(event(1, padding=BATCH_MAX_BYTES), False)])
    assert alone.events == 1


def test_sockets_with_the_same_scope_and_filter_share_one_selection() -> None:
    viewer = subscriber(Principal(subject="v", role=Role.VIEWER))
    assert subscriber().filter_key == viewer.filter_key == EVERYTHING
    one = subscriber(Principal(subject="a", role=Role.TOWNSHIP, township=A))
    two = subscriber(Principal(subject="b", role=Role.TOWNSHIP, township=A))
    other = subscriber(Principal(subject="c", role=Role.TOWNSHIP, township=B))
    assert one.filter_key == two.filter_key != other.filter_key
    narrowed = subscriber(COMMAND, subscription_for(COMMAND, ["incident.*"], [A]))
    assert narrowed.filter_key != EVERYTHING
    events = [event(1, township=A), event(2, township=B), event(3)]
    assert [e.seq for e in one.share_of(events, late=False).events] == [1, 3]
    assert [e.seq for e in other.share_of(events, late=False).events] == [2, 3]


async def test_the_backlog_counts_events_not_frames_and_is_taken_whole() -> None:
    closed: list[bool] = []
    s = Subscriber(COMMAND, Subscription(), queue_size=5, on_overflow=lambda: closed.append(True), batch=True)
    first, second = Share([event(1), event(2)], late=False), Share([event(3), event(4)], late=False)
    assert s.offer(first) and s.offer(second)
    assert s.waiting_events == 4
    assert await asyncio.wait_for(s.take(), 1) == [first, second]
    assert s.waiting_events == 0
    assert s.offer(Share([event(5), event(6), event(7)], late=False))
    assert not s.offer(Share([event(8), event(9), event(10)], late=False)), "6 events waiting > 5"
    assert closed == [True]


def test_events_the_socket_had_already_are_left_out_of_its_share() -> None:
    s = subscriber()
    s.skip_through = 2
    shared = Share([event(1), event(2), event(3)], late=False)
    assert s.offer(shared)
    (mine,) = s.waiting
    assert [e.seq for e in mine.events] == [3] and mine is not shared
    assert s.offer(Share([event(1)], late=True)), "late events are not skipped by seq"
    assert s.waiting_events == 2
