"""From the hub to a socket: the events of a cycle as each filter sees them, and a socket's bounded backlog.

The hub hands every cycle's events out once per filter, not once per socket: sockets with the same scope and
filter (most are command or viewer sockets that take everything) share one `Share`, its event list and, for
sockets that asked for batch frames, its frames, which the first socket to send them builds. Each event is
serialized once when the hub reads it (`FeedEvent.text`); a batch frame only joins those texts.
"""

import asyncio
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from app.auth import Principal
from app.live.schemas import BATCH_MAX_BYTES, BATCH_OVERHEAD_BYTES, FeedEvent, batch_message
from app.live.scope import Subscription, can_see, scope_key, sees_everything

# The filter key of every socket that sees everything, whatever its role or spelling of `*`.
EVERYTHING: Hashable = ("everything",)


@dataclass(frozen=True, slots=True)
class Frame:
    """One batch message as sent: its text, how many events it carries, and the highest on-time seq in it
    (None when it carries only late events, which never move a socket's resume point)."""

    text: str
    events: int
    last_seq: int | None


def batch_frames(events: Iterable[tuple[FeedEvent, bool]], max_bytes: int = BATCH_MAX_BYTES) -> list[Frame]:
    """(event, late) pairs, in the order they are to arrive, as batch frames of at most `max_bytes` each (one
    event larger than that gets a frame of its own)."""
    frames: list[Frame] = []
    texts: list[str] = []
    size = BATCH_OVERHEAD_BYTES
    last: int | None = None
    for event, late in events:
        text = event.late_text() if late else event.text
        grow = event.size + (len(text) - len(event.text)) + 1  # the comma
        if texts and size + grow > max_bytes:
            frames.append(Frame(batch_message(texts), len(texts), last))
            texts, size, last = [], BATCH_OVERHEAD_BYTES, None
        texts.append(text)
        size += grow
        if not late:
            last = event.seq
    if texts:
        frames.append(Frame(batch_message(texts), len(texts), last))
    return frames


@dataclass(slots=True)
class Share:
    """Events of one hand-out as one filter sees them, in delivery order; shared by the sockets of that filter."""

    events: Sequence[FeedEvent]
    late: bool
    _frames: list[Frame] | None = field(default=None, repr=False)

    def frames(self) -> list[Frame]:
        """Built once, by the first socket that sends them; the others send the same strings."""
        if self._frames is None:
            self._frames = batch_frames((event, self.late) for event in self.events)
        return self._frames


class Subscriber:
    """One socket's place in the fan-out: its scope, its filter and a bounded backlog. The hub never awaits it.

    The backlog holds whole shares and counts their events: past `queue_size` events waiting, the socket is a
    slow consumer. Its sender takes everything waiting at once when it wakes."""

    def __init__(
        self,
        principal: Principal,
        subscription: Subscription,
        *,
        queue_size: int,
        on_overflow: Callable[[], None],
        batch: bool = False,
    ) -> None:
        self.principal = principal
        self.subscription = subscription  # sets filter_key
        self.batch = batch
        self.queue_size = queue_size
        self.waiting: list[Share] = []
        self.waiting_events = 0
        self._has_waiting = asyncio.Event()
        # Live events at or below this were replayed already, or the client had them (its since).
        self.skip_through = 0
        # Seqs the hub had given up that the replay found and sent: their late copy is dropped when it comes up.
        self.replayed_late: set[int] = set()
        self._on_overflow = on_overflow

    @property
    def subscription(self) -> Subscription:
        return self._subscription

    @subscription.setter
    def subscription(self, subscription: Subscription) -> None:
        self._subscription = subscription
        # Decided once per subscription, not once per event: most sockets (command, viewer) take everything.
        self.sees_all = sees_everything(self.principal, subscription)
        self.filter_key: Hashable = EVERYTHING if self.sees_all else (scope_key(self.principal), subscription)

    def wants(self, event: FeedEvent) -> bool:
        return can_see(self.principal, event) and self._subscription.matches(event)

    def share_of(self, events: Sequence[FeedEvent], *, late: bool) -> Share:
        """What this socket's filter keeps of a hand-out: for every socket with the same filter_key alike."""
        return Share(events if self.sees_all else [e for e in events if self.wants(e)], late)

    def offer(self, share: Share) -> bool:
        """Queue the share (less what the socket had already); False if that overflowed the backlog (the socket
        is being closed)."""
        events = share.events
        if not share.late and events and events[0].seq <= self.skip_through:
            share = Share([e for e in events if e.seq > self.skip_through], late=False)
            events = share.events
        if not events:
            return True
        if self.waiting_events + len(events) > self.queue_size:
            self._on_overflow()
            return False
        self.waiting.append(share)
        self.waiting_events += len(events)
        self._has_waiting.set()
        return True

    async def take(self) -> list[Share]:
        """Everything waiting, once there is something, in the order it was offered."""
        await self._has_waiting.wait()
        self._has_waiting.clear()
        shares, self.waiting, self.waiting_events = self.waiting, [], 0
        return shares
