"""Real-time events of a livestream session: publishing, history, and the streams that carry
them to WebSocket and Server-Sent Events clients.

Every session has two channels on Redis: the public one and the host's, which carries exact
stock where the public sees rounded buckets. Publishing is one Lua script per channel that
numbers the event (`seq`), appends it to the channel's history (the last 100) and PUBLISHes
it, atomically; so every API instance subscribed through Litestar's channels plugin sees the
events of a channel in one order, and that order is the history's. A client that joins late
gets the history first, then live events, each exactly once: live events at or below the last
`seq` it was sent are skipped.

A subscriber's queue is bounded. A client that falls that far behind is disconnected with a
close reason (WebSocket) or a final `close` event (SSE) rather than holding events in memory or
slowing the shared fan-out down.

Events leave only after the database commit that caused them: services put them in the
session's `AfterCommitEvents`, which publishes on the outermost commit and drops what a
rollback (or a rolled-back savepoint) undid.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

import anyio
import msgspec
import structlog
from litestar import Litestar, WebSocket
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.app import AppConfig
from litestar.response import ServerSentEventMessage
from litestar.status_codes import WS_1008_POLICY_VIOLATION
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from marketplace.redis_clients import connect_redis
from marketplace.resources import Resources

log = structlog.get_logger(__name__)

HISTORY_SIZE: Final = 100
"""Events a late joiner receives first, per channel."""
HISTORY_TTL_SECONDS: Final = 3 * 24 * 3600
DEFAULT_MAX_BACKLOG: Final = 256
"""Events a subscriber may fall behind before it is disconnected as too slow."""
SLOW_CONSUMER_REASON: Final = "slow consumer: fell too far behind the live events"
SLOW_CLOSE_TIMEOUT_SECONDS: Final = 30.0
"""How long a client closed as too slow may take to read what it was sent before the close
frame; after that the connection is dropped without one."""
PUBLISHER_KEY: Final = "livestream_events"
"""Where the process's publisher lives in `Resources.extras`."""
CHANNEL_PREFIX: Final = "livestream:"


class EventType(StrEnum):
    ITEM_PINNED = "item_pinned"
    ITEM_UNPINNED = "item_unpinned"
    PRICE_CHANGED = "price_changed"
    FLASH_COUNTDOWN = "flash_countdown"
    FLASH_STARTED = "flash_started"
    FLASH_ENDED = "flash_ended"
    STOCK_LEFT = "stock_left"
    ORDER_ACCEPTED = "order_accepted"
    SESSION_STATE_CHANGED = "session_state_changed"


Audience = Literal["public", "host"]


def public_channel(session_id: uuid.UUID) -> str:
    return f"{CHANNEL_PREFIX}{session_id}"


def host_channel(session_id: uuid.UUID) -> str:
    return f"{CHANNEL_PREFIX}{session_id}:host"


def channel_for(session_id: uuid.UUID, audience: Audience) -> str:
    return host_channel(session_id) if audience == "host" else public_channel(session_id)


_STOCK_BUCKETS: Final = ((100, "100+"), (50, "50+"), (20, "20+"), (10, "10+"), (1, "<10"))


def stock_bucket(available: int) -> str:
    """What the public sees of an item's stock: a rounded bucket, so competitors and bots
    cannot read sales off the stream; `"0"` once sold out."""
    for floor, label in _STOCK_BUCKETS:
        if available >= floor:
            return label
    return "0"


def short_name(display_name: str) -> str:
    """A buyer's name as the public sees it: the given name (the last word of a Vietnamese
    name) in full, the other words as initials: "Nguyễn Văn An" -> "N. V. An"."""
    words = display_name.split()
    if not words:
        return "Khách"
    if len(words) == 1:
        return words[0][0] + "."
    return " ".join([*(word[0] + "." for word in words[:-1]), words[-1]])


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event for a session's channels. `public` None: the host's channel only; `host`
    None: the host sees what the public sees."""

    type: EventType
    session_id: uuid.UUID
    at: datetime
    public: dict[str, Any] | None
    host: dict[str, Any] | None = None

    def body(self, audience: Audience) -> bytes | None:
        data = self.host if audience == "host" and self.host is not None else self.public
        if data is None:
            return None
        return msgspec.json.encode(
            {"type": self.type.value, "session_id": self.session_id, "at": self.at, "data": data}
        )


# KEYS: the pub/sub channel, its history list, its sequence counter.
# ARGV: the event as a JSON object without `seq`, the history size, the TTL in seconds.
# Numbering, history and PUBLISH in one script: no two events can be numbered in one order
# and delivered in another, and the history always matches what subscribers received.
_PUBLISH_SCRIPT: Final = """
local seq = redis.call('INCR', KEYS[3])
local body = ARGV[1]
local payload
if body == '{}' then
    payload = '{"seq":' .. seq .. '}'
else
    payload = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
end
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
redis.call('PUBLISH', KEYS[1], payload)
return seq
"""


def _history_key(channel: str) -> str:
    return f"mp:{{{channel}}}:history"


def _seq_key(channel: str) -> str:
    return f"mp:{{{channel}}}:seq"


def event_seq(payload: bytes) -> int:
    """The sequence number of a published event, read without decoding the whole event:
    the script always writes it first, as `{"seq":<n>,`."""
    end = payload.find(b",", 7)
    return int(payload[7 : end if end != -1 else -1])


def _flash_void_key(deal_id: uuid.UUID) -> str:
    return f"mp:livestream:flash:{deal_id}:void"


class LiveEventPublisher:
    """Publishes events to their channels; keeps the tasks it starts (after a commit, or at
    a flash deal's start and end) so they can be awaited in tests and on shutdown."""

    def __init__(
        self, redis: Redis, *, history_size: int = HISTORY_SIZE, clock: Callable[[], datetime]
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_PUBLISH_SCRIPT)
        self._history_size = history_size
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish_body(self, channel: str, body: bytes) -> int:
        seq = await self._script(
            keys=[channel, _history_key(channel), _seq_key(channel)],
            args=[body, self._history_size, HISTORY_TTL_SECONDS],
        )
        return int(seq)

    async def publish(self, events: Iterable[LiveEvent]) -> None:
        """In the given order, each event to the public channel and the host's."""
        for live_event in events:
            for audience in ("public", "host"):
                body = live_event.body(audience)
                if body is not None:
                    await self.publish_body(channel_for(live_event.session_id, audience), body)

    def spawn(self, events: Sequence[LiveEvent]) -> None:
        """Publish in the background (from synchronous code such as a commit hook)."""
        if events:
            self.track(self._publish_logged(list(events)))

    def schedule(
        self, at: datetime, events: Sequence[LiveEvent], *, void_if: uuid.UUID | None = None
    ) -> None:
        """Publish at a moment of the server's clock (a flash deal starting or ending), unless
        the deal `void_if` was voided meanwhile (its item unpinned, its session closed).

        In-process: a restart loses the announcement, not the price, which the server's
        clock decides at each reservation whatever was announced."""
        self.track(self._publish_at(at, list(events), void_if), name=f"at:{at.isoformat()}")

    async def void_flash_deals(self, deal_ids: Iterable[uuid.UUID]) -> None:
        keys = [_flash_void_key(deal_id) for deal_id in deal_ids]
        if keys:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, b"1", ex=HISTORY_TTL_SECONDS)
                await pipe.execute()

    async def drain(self) -> None:
        """Wait for every publication started so far (not for scheduled ones still due)."""
        while pending := [task for task in self._tasks if not task.get_name().startswith("at:")]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            if task.get_name().startswith("at:"):
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def track(self, coro: Awaitable[None], name: str = "now") -> None:
        """Run in the background, kept until done so it is neither lost nor left behind."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_logged(self, events: list[LiveEvent]) -> None:
        try:
            await self.publish(events)
        except Exception:
            # The rows are committed; a lost announcement is corrected by the next event
            # and by the REST state every client can read.
            log.exception("livestream_events_not_published", types=[e.type for e in events])

    async def _publish_at(
        self, at: datetime, events: list[LiveEvent], void_if: uuid.UUID | None
    ) -> None:
        delay = (at - self._clock()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        if void_if is not None and await self._redis.exists(_flash_void_key(void_if)):
            return
        await self._publish_logged(events)


def live_events(resources: Resources) -> LiveEventPublisher:
    """The process's publisher, made on first use from the process's Redis client."""

    def now() -> datetime:
        # Read each time: the clock is a resource tests may replace.
        return resources.clock()

    return resources.made_once(
        PUBLISHER_KEY, LiveEventPublisher, lambda: LiveEventPublisher(resources.redis, clock=now)
    )


_BUFFER_KEY: Final = "livestream_after_commit_events"


@dataclass(slots=True)
class AfterCommitEvents:
    """Events waiting for the commit of one database session.

    SQLAlchemy fires `after_commit` for savepoint releases as well: only the outermost
    commit publishes. A rolled-back savepoint drops the events added since it began; a
    rolled-back transaction drops them all.
    """

    publisher: LiveEventPublisher
    events: list[LiveEvent] = field(default_factory=list)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    marks: dict[int, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, session: AsyncSession, publisher: LiveEventPublisher) -> AfterCommitEvents:
        """The buffer of this session, hooked to its transactions on first use; call it
        before any savepoint is opened so each savepoint's events can be told apart."""
        buffer = session.info.get(_BUFFER_KEY)
        if isinstance(buffer, AfterCommitEvents):
            return buffer
        buffer = cls(publisher)
        session.info[_BUFFER_KEY] = buffer
        sync = session.sync_session
        event.listen(sync, "after_transaction_create", buffer._on_begin)
        event.listen(sync, "after_commit", buffer._on_commit)
        event.listen(sync, "after_rollback", buffer._on_rollback)
        return buffer

    def add(self, *events: LiveEvent) -> None:
        self.events.extend(events)

    def call_after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """A Redis write that must not happen for a rolled-back change (a cache flag)."""
        self.after_commit.append(callback)

    def _on_begin(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            self.marks[id(transaction)] = (len(self.events), len(self.after_commit))

    def _on_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return
        events, self.events = self.events, []
        callbacks, self.after_commit = self.after_commit, []
        self.marks.clear()
        self.publisher.spawn(events)
        for callback in callbacks:
            self.publisher.track(callback())

    def _on_rollback(self, session: Session) -> None:
        nested = session.get_nested_transaction()
        mark = self.marks.pop(id(nested), None) if nested is not None else None
        if mark is None:
            self.events.clear()
            self.after_commit.clear()
            self.marks.clear()
            return
        del self.events[mark[0] :]
        del self.after_commit[mark[1] :]


class HistoryPubSubBackend(RedisChannelsPubSubBackend):
    """Redis pub/sub with the history the plain backend lacks, kept by the publish script."""

    def __init__(self, *, redis: Redis, history_size: int = HISTORY_SIZE) -> None:
        super().__init__(redis=redis)
        self._history_script = redis.register_script(_PUBLISH_SCRIPT)
        self._history_size = history_size

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        for channel in channels:
            await self._history_script(
                keys=[channel, _history_key(channel), _seq_key(channel)],
                args=[data, self._history_size, HISTORY_TTL_SECONDS],
            )

    async def reconnect(self) -> None:
        """Connect the pub/sub again; it subscribes to its channels as it connects."""
        await self._pub_sub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        count = min(limit or self._history_size, self._history_size)
        entries = await self._redis.lrange(_history_key(channel), -count, -1)
        return [entry if isinstance(entry, bytes) else entry.encode() for entry in entries]


class LiveSubscriber(Subscriber):
    """A subscriber whose queue, once full, ends its stream instead of dropping events
    silently: the connection is then closed as too slow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.overflowed = asyncio.Event()

    def put_nowait(self, item: bytes | None) -> bool:
        if self.overflowed.is_set():
            return False
        if item is None:
            self._end_stream()
            return True
        if super().put_nowait(item):
            return True
        self.overflowed.set()
        self._end_stream()
        return False

    async def put(self, item: bytes | None) -> None:
        # The plugin ends a stream with `put(None)`; on a full queue whose reader is gone
        # that would wait forever.
        if item is None:
            self._end_stream()
        else:
            await super().put(item)

    def _end_stream(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
        self._queue.put_nowait(None)


class LiveChannels(ChannelsPlugin):
    """Litestar's channels plugin on Redis pub/sub with history, made for session channels.

    The Redis client is made at start-up from the settings' URL (a pub/sub connection of its
    own); the process's publisher is closed before the app's Redis client is.
    """

    def __init__(
        self, redis_url: str, *, max_backlog: int = DEFAULT_MAX_BACKLOG, history: int = HISTORY_SIZE
    ) -> None:
        super().__init__(
            backend=_NotStartedBackend(),
            arbitrary_channels_allowed=True,
            subscriber_max_backlog=max_backlog,
            subscriber_backlog_strategy="backoff",
            subscriber_class=LiveSubscriber,
        )
        self._redis_url = redis_url
        self._history_size = history
        self._redis: Redis | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        app_config.lifespan.append(self._close_publisher)
        app_config.signature_namespace.update(LiveChannels=LiveChannels)
        return app_config

    @asynccontextmanager
    async def _close_publisher(self, app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            resources = app.state.get("resources")
            publisher = resources.extras.get(PUBLISHER_KEY) if resources else None
            if isinstance(publisher, LiveEventPublisher):
                await publisher.close()

    async def _on_startup(self) -> None:
        self._redis = connect_redis(self._redis_url)
        self._backend = HistoryPubSubBackend(redis=self._redis, history_size=self._history_size)
        await super()._on_startup()

    async def _on_shutdown(self) -> None:
        try:
            await super()._on_shutdown()
        finally:
            if self._redis is not None:
                await self._redis.aclose()
                self._redis = None

    async def history(self, channel: str) -> list[bytes]:
        return await self._backend.get_history(channel, self._history_size)

    async def _sub_worker(self) -> None:
        """The fan-out of this process. Litestar's loop ends at the first Redis error, and
        with it every live stream of the process, left open and silent. This one waits for
        Redis to come back, subscribes again (the pub/sub resubscribes as it reconnects) and
        hands every subscriber its channel's history, so what was published between the loss
        and the resubscription is not missed (streams skip by `seq` what they already sent)."""
        failures = 0
        while True:
            try:
                if failures:
                    await self._resubscribe()
                    failures = 0
                await super()._sub_worker()
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if not failures:
                    log.warning("livestream_fanout_lost_redis", error=str(exc)[:200])
                delay = FANOUT_RETRY_SECONDS[min(failures, len(FANOUT_RETRY_SECONDS) - 1)]
                failures += 1
                await asyncio.sleep(delay)

    async def _resubscribe(self) -> None:
        backend = self._backend
        if not isinstance(backend, HistoryPubSubBackend):
            return
        await backend.reconnect()
        for channel, subscribers in list(self._channels.items()):
            for payload in await self.history(channel):
                for subscriber in subscribers:
                    subscriber.put_nowait(payload)
        log.info("livestream_fanout_resubscribed", channels=len(self._channels))

    @asynccontextmanager
    async def _events(self, channel: str, after_seq: int) -> AsyncIterator[_EventStream]:
        subscriber = await self.subscribe(channel)
        try:
            # Subscribed first, history second: nothing published in between is missed,
            # and what arrives twice is skipped by its sequence number.
            history = await self.history(channel)
            if not isinstance(subscriber, LiveSubscriber):
                raise TypeError("LiveChannels makes LiveSubscriber subscribers")
            yield _EventStream(subscriber, history, after_seq)
        finally:
            with anyio.CancelScope(shield=True):
                await self.unsubscribe(subscriber, channel)

    async def serve_websocket(self, socket: WebSocket[Any, Any, Any], channel: str) -> None:
        """Stream a channel to an accepted socket until the client leaves or falls behind.

        A client that fell behind is unsubscribed first, so it costs the fan-out nothing
        more, then closed with the reason; the close frame follows what was already sent,
        and the client has SLOW_CLOSE_TIMEOUT_SECONDS to read that far before the
        connection is dropped without it."""
        after_seq = _after_seq(socket.query_params.get("after"))
        slow = False
        async with self._events(channel, after_seq) as stream, anyio.create_task_group() as tg:

            async def until_disconnect() -> None:
                with contextlib.suppress(Exception):
                    while (await socket.receive())["type"] != "websocket.disconnect":
                        continue
                tg.cancel_scope.cancel()

            tg.start_soon(until_disconnect)
            slow = await stream.run(socket.send_text)
            tg.cancel_scope.cancel()
        if slow:
            with anyio.move_on_after(SLOW_CLOSE_TIMEOUT_SECONDS), contextlib.suppress(Exception):
                await socket.close(code=WS_1008_POLICY_VIOLATION, reason=SLOW_CONSUMER_REASON)

    async def sse_messages(
        self, channel: str, last_event_id: str | None
    ) -> AsyncGenerator[ServerSentEventMessage, None]:
        """Server-Sent Events of a channel; `id` is the event's sequence number, so a
        reconnecting EventSource resumes after the last event it saw (`Last-Event-ID`)."""
        async with self._events(channel, _after_seq(last_event_id)) as stream:
            async for payload in stream.payloads():
                yield ServerSentEventMessage(
                    data=payload.decode(), event="live", id=event_seq(payload)
                )
            if stream.subscriber.overflowed.is_set():
                yield ServerSentEventMessage(
                    data=msgspec.json.encode({"reason": SLOW_CONSUMER_REASON}).decode(),
                    event="close",
                )


@dataclass(slots=True)
class _EventStream:
    subscriber: LiveSubscriber
    history: list[bytes]
    last_seq: int

    async def payloads(self) -> AsyncIterator[bytes]:
        """History then live events, each once and in order, until the subscriber's stream
        ends (unsubscribed, or overflowed: the caller then closes as too slow)."""
        for payload in self.history:
            if (seq := event_seq(payload)) > self.last_seq:
                self.last_seq = seq
                yield payload
        self.history = []
        async for payload in self.subscriber.iter_events():
            if (seq := event_seq(payload)) > self.last_seq:
                self.last_seq = seq
                yield payload

    async def run(self, send: Callable[[str], Awaitable[None]]) -> bool:
        """Send until the stream ends; True when it ended because the client was too slow.
        A send blocked on a client that stopped reading is abandoned at once."""
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await self.subscriber.overflowed.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            async for payload in self.payloads():
                await send(payload.decode())
            tg.cancel_scope.cancel()
        return self.subscriber.overflowed.is_set()


def _after_seq(raw: str | None) -> int:
    try:
        return max(0, int(raw)) if raw else 0
    except ValueError:
        return 0


class _NotStartedBackend(ChannelsBackend):
    """Stands in until start-up makes the real backend and its Redis client, in the loop
    that will use them."""

    async def on_startup(self) -> None:
        raise RuntimeError(_NOT_STARTED)

    async def on_shutdown(self) -> None:
        return None

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        raise RuntimeError(_NOT_STARTED)

    async def subscribe(self, channels: Iterable[str]) -> None:
        raise RuntimeError(_NOT_STARTED)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        raise RuntimeError(_NOT_STARTED)

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        raise RuntimeError(_NOT_STARTED)
        yield  # pragma: no cover - makes this an async generator

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise RuntimeError(_NOT_STARTED)


_NOT_STARTED: Final = "the livestream channels are used before the app started"
FANOUT_RETRY_SECONDS: Final = (0.2, 0.5, 1.0, 2.0)
"""Waits between attempts to subscribe again after Redis was lost (the last one repeats)."""
