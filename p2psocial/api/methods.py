"""The daemon's JSON-RPC methods (docs/rpc.md, "Methods"), registered on the local socket.

Each method reads its named params through :class:`~p2psocial.api.params.Params` (a wrong,
missing or unknown one is -32602 naming it; a malformed id is -32002 naming it), does its
store work on the store thread, and answers JSON. Messages are answered in the form of
:meth:`p2psocial.model.Message.to_json` (see :func:`message_json`).

Our new messages go through one :class:`Publisher`, which coalesces concurrent publishes
into one turn of the store thread.

Live messages: the daemon calls ``node.message_stored`` for every entry it stores (ours and
replicated ones); :func:`start_api` points that hook at the hub, which queues one
``message`` notification per matching ``subscribe`` subscription. Private messages we can
read arrive decrypted through ``node.private_stored`` (:mod:`p2psocial.api.private_api`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from p2psocial.api.invite_api import register_invite_methods
from p2psocial.api.jsonrpc import INVALID_CONTENT, INVALID_ID, NOT_FOUND, InvalidParams
from p2psocial.api.private_api import private_publisher, register_private_methods
from p2psocial.api.server import CallContext, Handler, MethodRegistry, RpcServer, serve_unix
from p2psocial.config import parse_address
from p2psocial.errors import ConfigError, ContentTooLarge, InvalidId, RpcError
from p2psocial.feed.content import MAX_CONTENT_SIZE
from p2psocial.identity import feed_id, parse_feed_id, parse_message_id
from p2psocial.social import post_content

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from p2psocial.api.hub import Subscription
    from p2psocial.api.params import Params
    from p2psocial.daemon import Node
    from p2psocial.feed.content import Content
    from p2psocial.model import Message
    from p2psocial.store.store import Store

__all__ = [
    "MAX_LIMIT",
    "SUBSCRIBE_FILTERS",
    "Publisher",
    "mentions",
    "message_json",
    "start_api",
]

MAX_LIMIT = 1000
"""Most messages one call answers (``limit``)."""
SUBSCRIBE_FILTERS = ("all", "feed", "type", "mentions", "private")
"""What ``subscribe`` can select (its ``filter`` parameter)."""
MAX_MENTIONS = 100
PUBLISH_BATCH = 64
"""Most publishes written in one turn of the store thread."""

_FLOAT_HEADS = (b"\xf9", b"\xfa", b"\xfb")  # CBOR half, single and double floats


def _now() -> int:
    return time.time_ns() // 1_000_000


# ----------------------------------------------------------------------------- JSON forms


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (as JSON.stringify does)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def message_json(message: Message) -> dict[str, Any]:
    """The JSON form of a stored message (:meth:`Message.to_json`), always encodable.

    Content is CBOR, which can hold NaN and infinities that JSON cannot: a peer may publish
    them. They become ``null``, so one such message can never break a timeline answer or a
    subscription. Only content holding floats at all is walked.
    """
    out = message.to_json()
    data = message.content_bytes
    if out["content"] is not None and data and any(head in data for head in _FLOAT_HEADS):
        out["content"] = _finite(out["content"])
    return out


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [message_json(m) for m in messages]


def mentions(message: dict[str, Any], me: str) -> bool:
    """Whether the public message (JSON form) mentions feed id ``me``: in its ``mentions``
    list (an id or ``{"link": id}``) or in its ``text``."""
    content = message["content"]
    if not isinstance(content, dict):
        return False
    listed = content.get("mentions")
    if isinstance(listed, list) and any(
        m == me or (isinstance(m, dict) and m.get("link") == me) for m in listed
    ):
        return True
    text = content.get("text")
    return isinstance(text, str) and me in text


# ----------------------------------------------------------------------------- params


def _feed_id(params: Params, name: str, default: str | None = None) -> tuple[str, bytes]:
    """A feed id parameter as (text, key). -32602 if missing or not a string, -32002
    (``InvalidId``, ``data.param``) if malformed."""
    text = params.require_str(name) if default is None else params.optional_str(name, default)
    return text, _parse_id(parse_feed_id, text, name)


def _message_id(params: Params, name: str) -> tuple[str, bytes]:
    text = params.require_str(name)
    return text, _parse_id(parse_message_id, text, name)


def _parse_id(parse: Callable[[str], bytes], text: str, name: str) -> bytes:
    try:
        return parse(text)
    except InvalidId as exc:
        raise RpcError(
            INVALID_ID, f"parameter {name!r}: {exc}", {"type": "InvalidId", "param": name}
        ) from None


def _limit(params: Params, default: int) -> int:
    return params.optional_int("limit", default, min_value=1, max_value=MAX_LIMIT)


def _check_finite(content: Content) -> None:
    if _has_non_finite(content):
        raise InvalidParams(
            "parameter 'content' holds a number JSON cannot carry (NaN or infinite)", "content"
        )


def _not_found(message: str, **data: Any) -> RpcError:
    return RpcError(NOT_FOUND, message, {"type": "NotFound", **data})


# ----------------------------------------------------------------------------- publishing


class _Job:
    """One publish waiting for the store thread."""

    __slots__ = ("content", "done", "error", "message")

    def __init__(self, content: Content) -> None:
        self.content = content
        self.done = trio.Event()
        self.message: Message | None = None
        self.error: Exception | None = None


class Publisher:
    """Writes our new messages, coalescing concurrent publishes.

    A publish that finds the writer idle is written at once, by its own task. Publishes
    that arrive while a write is under way queue up, and the writer task (:meth:`run`)
    writes all of them in the next turn of the store thread: one thread hop for many
    (in arrival order, each its own transaction). Each message is then announced
    (:meth:`Node.published`: peers and subscribers). A write, once begun, is finished and
    announced even if its caller is cancelled (its connection closed): never half done.
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self._jobs: deque[_Job] = deque()
        self._busy = False
        self._wake = trio.Event()

    async def publish(self, content: Content) -> Message:
        """Append ``content`` to our feed; raise what :meth:`Store.publish` raises."""
        job = _Job(content)
        if self._busy or self._jobs:
            self._jobs.append(job)
            self._wake.set()
            await job.done.wait()
        else:
            await self._write_shielded([job])
        if job.error is not None:
            raise job.error
        assert job.message is not None  # set whenever error is not
        return job.message

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """The writer task for queued publishes: runs until cancelled."""
        task_status.started()
        while True:
            if self._busy or not self._jobs:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            count = min(len(self._jobs), PUBLISH_BATCH)
            await self._write_shielded([self._jobs.popleft() for _ in range(count)])

    async def _write_shielded(self, batch: list[_Job]) -> None:
        self._busy = True
        try:
            with trio.CancelScope(shield=True):
                await self._write(batch)
        finally:
            self._busy = False
            if self._jobs:
                self._wake.set()

    async def _write(self, batch: list[_Job]) -> None:
        keys = self._node.keys

        def write(store: Store) -> None:
            for job in batch:
                try:
                    job.message = store.publish(keys, job.content, _now())
                except Exception as exc:  # handed to the caller, who answers it
                    job.error = exc

        try:
            await self._node.gateway.run(write)
        except Exception as exc:  # the store thread itself failed: every job fails
            for job in batch:
                job.error = job.error or exc
        for job in batch:
            if job.message is not None:
                try:
                    await self._node.published(job.message)
                except Exception as exc:  # a bug: the server logs it when it answers
                    job.error = exc
            job.done.set()


# ----------------------------------------------------------------------------- methods


class _Api:
    """The daemon's methods, bound to its :class:`~p2psocial.daemon.Node`."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.gateway = node.gateway
        self.keys = node.keys
        self.me = node.keys.feed_id
        self.server: RpcServer | None = None  # set once serving
        self.publisher = Publisher(node)

    def register(self, registry: MethodRegistry) -> None:
        methods: dict[str, Handler] = {
            "whoami": self.whoami,
            "publish": self.publish,
            "post": self.post,
            "get": self.get,
            "feed": self.feed,
            "feed.info": self.feed_info,
            "feeds": self.feeds,
            "timeline": self.timeline,
            "thread": self.thread,
            "contacts": self.contacts,
            "peers.list": self.peers_list,
            "peers.connect": self.peers_connect,
            "status": self.status,
            "subscribe": self.subscribe,
        }
        for name, handler in methods.items():
            registry.add(name, handler)
        for name, stance in (
            ("follow", {"following": True}),
            ("unfollow", {"following": False}),
            ("block", {"blocking": True}),
            ("unblock", {"blocking": False}),
        ):
            registry.add(name, self._contact_method(stance))

        async def methods_method(params: Params, ctx: CallContext) -> Any:
            params.reject_unknown()
            return registry.names()

        registry.add("methods", methods_method)

    # ------------------------------------------------------------------ identity, writing

    async def whoami(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return {"feed_id": self.me}

    async def _publish(self, content: Content) -> dict[str, Any]:
        _check_finite(content)
        try:
            message = await self.publisher.publish(content)
        except ContentTooLarge as exc:
            raise RpcError(
                INVALID_CONTENT,
                str(exc),
                {"type": "ContentTooLarge", "param": "content", "limit": MAX_CONTENT_SIZE},
            ) from None
        return message_json(message)

    async def publish(self, params: Params, ctx: CallContext) -> Any:
        content = params.require_dict("content")
        params.reject_unknown()
        return await self._publish(content)

    async def post(self, params: Params, ctx: CallContext) -> Any:
        text = params.require_str("text")
        root = _message_id(params, "root")[0] if params.get("root") is not None else None
        branch = _message_id(params, "branch")[0] if params.get("branch") is not None else None
        listed = params.optional_list("mentions")
        params.reject_unknown()
        if not text.strip():
            raise InvalidParams("parameter 'text' must not be empty", "text")
        if branch is not None and root is None:
            raise InvalidParams("parameter 'branch' needs 'root' (the thread's root)", "branch")
        content = post_content(text, root=root, branch=branch)
        if listed is not None:
            content["mentions"] = self._mention_list(listed)
        return await self._publish(content)

    @staticmethod
    def _mention_list(listed: list[Any]) -> list[str]:
        if len(listed) > MAX_MENTIONS:
            raise InvalidParams(
                f"parameter 'mentions' has {len(listed)} ids; the limit is {MAX_MENTIONS}",
                "mentions",
            )
        for index, item in enumerate(listed):
            if not isinstance(item, str):
                raise InvalidParams(f"parameter 'mentions'[{index}] must be a feed id", "mentions")
            _parse_id(parse_feed_id, item, "mentions")
        return listed

    # ------------------------------------------------------------------ reading

    async def get(self, params: Params, ctx: CallContext) -> Any:
        _text, msg_id = _message_id(params, "id")
        params.reject_unknown()
        return message_json(await self.gateway.run(lambda s: s.get(msg_id)))

    async def feed(self, params: Params, ctx: CallContext) -> Any:
        _text, author = _feed_id(params, "feed_id", self.me)
        from_seq = params.optional_int("from_seq", min_value=1)
        limit = _limit(params, 50)
        reverse = params.optional_bool("reverse", False)
        params.reject_unknown()
        if reverse and from_seq is not None:
            raise InvalidParams(
                "parameter 'from_seq' cannot be combined with 'reverse' (newest first)",
                "from_seq",
            )
        since = (from_seq or 1) - 1
        rows = await self.gateway.run(
            lambda s: s.feed(author, since_seq=since, limit=limit, reverse=reverse)
        )
        return _messages(rows)

    async def feed_info(self, params: Params, ctx: CallContext) -> Any:
        text, author = _feed_id(params, "feed_id", self.me)
        params.reject_unknown()
        me = self.keys.public

        def read(store: Store) -> tuple[Any, tuple[bool, bool]]:
            return store.feed_info(author), store.contact_state(me, author)

        info, (following, blocking) = await self.gateway.run(read)
        if info is None:
            raise _not_found(f"no entry of feed {text} is stored here", feed_id=text)
        return {**info.to_json(), "following": following, "blocking": blocking}

    async def feeds(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return [info.to_json() for info in await self.gateway.run(lambda s: s.feeds())]

    async def timeline(self, params: Params, ctx: CallContext) -> Any:
        limit = _limit(params, 50)
        before = params.optional_int("before", min_value=0)
        params.reject_unknown()
        return _messages(await self.gateway.run(lambda s: s.timeline(limit=limit, before=before)))

    async def thread(self, params: Params, ctx: CallContext) -> Any:
        text, root = _message_id(params, "root")
        limit = _limit(params, 500)
        params.reject_unknown()
        rows = await self.gateway.run(lambda s: s.thread(root, limit=limit))
        if not rows:
            raise _not_found(
                f"neither the message {text} nor any reply to it is stored here", root=text
            )
        return _messages(rows)

    # ------------------------------------------------------------------ the graph

    def _contact_method(self, stance: dict[str, bool]) -> Handler:
        async def handler(params: Params, ctx: CallContext) -> Any:
            _text, contact = _feed_id(params, "feed_id")
            params.reject_unknown()
            if contact == self.keys.public:
                raise InvalidParams("you cannot follow or block yourself", "feed_id")
            message = await self.node.set_contact(contact, **stance)
            return {
                "changed": message is not None,
                "message": message_json(message) if message is not None else None,
            }

        return handler

    async def contacts(self, params: Params, ctx: CallContext) -> Any:
        text, author = _feed_id(params, "feed_id", self.me)
        params.reject_unknown()

        def read(store: Store) -> tuple[set[bytes], set[bytes]]:
            return store.follows().get(author, set()), store.blocked_by(author)

        following, blocking = await self.gateway.run(read)
        return {
            "feed_id": text,
            "following": sorted(feed_id(k) for k in following),
            "blocking": sorted(feed_id(k) for k in blocking),
        }

    # ------------------------------------------------------------------ peers, daemon

    async def peers_list(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        return {
            "connected": self.node.replication.peer_report(),
            "known": self.node.scheduler.report(),
        }

    async def peers_connect(self, params: Params, ctx: CallContext) -> Any:
        address = params.require_str("address", max_length=300)
        text, key = _feed_id(params, "feed_id")
        params.reject_unknown()
        try:
            parse_address(address, "parameter 'address'")
        except ConfigError as exc:
            raise InvalidParams(str(exc), "address") from None
        if key == self.keys.public:
            raise InvalidParams("that is this daemon's own feed id", "feed_id")
        await self.gateway.run(lambda s: s.remember_peer(address, key, "manual", _now()))
        self.node.scheduler.add(address, key)
        return {"address": address, "feed_id": text, "remembered": True}

    async def status(self, params: Params, ctx: CallContext) -> Any:
        params.reject_unknown()
        result = await self.node.status()
        subs = ctx.hub.subscriptions()
        result["rpc"] = {
            "connections": self.server.connection_count if self.server is not None else 0,
            "subscriptions": len(subs),
            "queued_notifications": sum(sub.queued for sub in subs),
            "dropped_notifications": sum(sub.dropped_total for sub in subs),
        }
        return result

    async def subscribe(self, params: Params, ctx: CallContext) -> Any:
        kind = params.optional_str("filter")
        if kind is None:  # inferred from the other params
            kind = "feed" if "feed_id" in params else "type" if "type" in params else "all"
        if kind not in SUBSCRIBE_FILTERS:
            raise InvalidParams(
                f"parameter 'filter' must be one of {', '.join(SUBSCRIBE_FILTERS)}, not {kind!r}",
                "filter",
            )
        wanted: Any = None
        if kind == "feed":
            wanted = feed_id(_feed_id(params, "feed_id")[1])  # canonical text
        elif kind == "type":
            wanted = params.require_str("type", max_length=64)
        params.reject_unknown()
        sub = ctx.subscribe("messages", params, (kind, wanted))
        return {"subscription": sub.id, "filter": kind}


def _build(node: Node) -> tuple[MethodRegistry, _Api]:
    """Every method of the daemon's local socket (its publisher task must run)."""
    registry = MethodRegistry()
    api = _Api(node)
    api.register(registry)
    register_invite_methods(registry, node)
    register_private_methods(registry, node)
    return registry, api


# ----------------------------------------------------------------------------- live messages


def _matcher(message: dict[str, Any], me: str) -> Callable[[Subscription], bool]:
    """Which ``subscribe`` subscriptions want ``message`` (JSON form)."""

    def match(sub: Subscription) -> bool:
        kind, wanted = sub.filter
        if kind == "all":
            return True
        if kind == "feed":
            return bool(message["author"] == wanted)
        if kind == "type":
            content = message["content"]
            return isinstance(content, dict) and content.get("type") == wanted
        if kind == "private":
            return False  # readable ones come decrypted through private_publisher
        return message["author"] != me and mentions(message, me)

    return match


async def start_api(nursery: trio.Nursery, node: Node) -> RpcServer:
    """Serve the daemon's methods on ``<home>/rpc.sock``; live messages go to subscribers."""
    registry, api = _build(node)
    await nursery.start(api.publisher.run)
    server: RpcServer = await nursery.start(
        lambda task_status: serve_unix(node.home.socket_path, registry, task_status=task_status)
    )
    api.server = server
    me = node.keys.feed_id
    hub = server.hub

    def message_stored(messages: Sequence[Message]) -> None:
        if not len(hub):
            return
        for message in messages:
            item = message_json(message)
            hub.publish("messages", item, _matcher(item, me))

    node.message_stored = message_stored  # type: ignore[method-assign]
    node.private_stored = private_publisher(hub)  # type: ignore[method-assign]
    return server
