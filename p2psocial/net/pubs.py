"""Pubs and invites: the pub's ``invite.use`` method, and redeeming an invite.

A pub is an always-on peer that follows whoever redeems one of its invites, so it
replicates their feeds for everyone else. Redeeming: the newcomer dials the pub with the
invite's key (derived from the code's seed) and calls ``invite.use({"feed": ID})``; the pub
spends one use, follows the newcomer, and answers with its own feed id. The newcomer then
follows the pub, publishes the pub's address in its feed (so its friends learn of the pub)
and keeps a connection to it. Every failure is reported in words (see :func:`redeem`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from p2psocial.errors import (
    ConfigError,
    HandshakeFailed,
    P2PSocialError,
    PeerDisconnected,
    RpcError,
)
from p2psocial.identity import Keypair, feed_id, parse_feed_id
from p2psocial.invite import Invite
from p2psocial.net.connection import Connection, connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from p2psocial.model import Message
    from p2psocial.store.gateway import StoreGateway

log = logging.getLogger("p2psocial.pubs")

METHOD = "invite.use"


class InviteFailed(P2PSocialError):
    """Redeeming an invite failed; the message says why, in words."""


class InviteRefused(P2PSocialError):
    """The pub refused an invite (unknown, used up, expired)."""


def pub_content(host: str, port: int, key: bytes) -> dict[str, Any]:
    """The content announcing a pub's address in a feed."""
    return {"type": "pub", "address": {"host": host, "port": port, "key": feed_id(key)}}


def parse_pub_content(content: Any) -> tuple[str, bytes] | None:
    """(``host:port``, key) of ``pub`` content, None if it is not usable."""
    if not isinstance(content, dict) or content.get("type") != "pub":
        return None
    address = content.get("address")
    if not isinstance(address, dict):
        return None
    host, port, key = address.get("host"), address.get("port"), address.get("key")
    if not isinstance(host, str) or not host or type(port) is not int or not 0 < port < 65536:
        return None
    try:
        key_bytes = parse_feed_id(key)
    except P2PSocialError:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}", key_bytes


class PubService:
    """The pub side: creates invites and serves ``invite.use``."""

    def __init__(
        self,
        gateway: StoreGateway,
        keys: Keypair,
        public_address: str,
        now: Callable[[], int],
        follow: Callable[[bytes], Awaitable[Message | None]],
    ) -> None:
        self.gateway = gateway
        self.keys = keys
        self.public_address = public_address
        self.now = now
        self.follow = follow

    async def create_invite(self, uses: int, expires_ms: int | None) -> str:
        """A new invite code, good for ``uses`` redemptions (and until ``expires_ms`` from
        now, if given)."""
        from p2psocial.config import parse_address

        if uses < 1:
            raise ConfigError("an invite needs at least one use")
        host, port = parse_address(self.public_address, "public address")
        invite = Invite(host, port, self.keys.public, os.urandom(32))
        now = self.now()
        expires = now + expires_ms if expires_ms is not None else None
        await self.gateway.run(lambda s: s.add_invite(invite.keys.public, uses, expires, now))
        return str(invite)

    def handlers(self) -> dict[str, Any]:
        return {METHOD: self._use}

    async def _use(self, conn: Connection, args: Any) -> Any:
        if not isinstance(args, dict) or not isinstance(args.get("feed"), str):
            raise InviteRefused("invite.use needs {'feed': FEED_ID}")
        newcomer = parse_feed_id(args["feed"])
        if newcomer == self.keys.public:
            raise InviteRefused("that is the pub's own feed")
        now = self.now()
        reason = await self.gateway.run(lambda s: s.use_invite(conn.remote_key, now))
        if reason is not None:
            log.info("refused invite from %s: %s", conn.remote_id, reason)
            raise InviteRefused(reason)
        await self.follow(newcomer)
        log.info("invite redeemed: now following %s", feed_id(newcomer))
        return {"pub": self.keys.feed_id}


async def redeem(
    invite: Invite, me: Keypair, network_key: bytes, handshake_timeout: float = 15.0
) -> None:
    """Redeem ``invite`` for feed ``me`` at its pub. Raises InviteFailed saying why."""
    where = f"the pub at {invite.address}"
    try:
        async with connect(
            invite.host,
            invite.port,
            invite.pub_key,
            keys=invite.keys,
            network_key=network_key,
            handshake_timeout=handshake_timeout,
        ) as conn:
            await conn.call(METHOD, {"feed": me.feed_id})
    except HandshakeFailed as exc:
        if exc.step == "timeout":
            raise InviteFailed(
                f"{where} did not answer the handshake within {handshake_timeout:g} s"
            ) from None
        raise InviteFailed(
            f"{where} ended the handshake ({exc.step}): it is on another network "
            "(network key), or the code names another pub key"
        ) from None
    except PeerDisconnected as exc:
        raise InviteFailed(f"pub unreachable at {invite.address}: {exc}") from None
    except RpcError as exc:
        detail = exc.message.partition(": ")[2] or exc.message
        raise InviteFailed(f"{where} refused the invite: {detail}") from None
