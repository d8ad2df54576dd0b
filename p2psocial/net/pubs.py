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
    InviteFailed,
    InviteRefused,
    PeerDisconnected,
    RpcError,
)
from p2psocial.identity import Keypair, feed_id, parse_feed_id
from p2psocial.invite import Invite
from p2psocial.msgtypes.pub import parse_pub_content
from p2psocial.net.connection import Connection, connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from p2psocial.events import Stored
    from p2psocial.store.gateway import StoreGateway

log = logging.getLogger("p2psocial.pubs")

METHOD = "invite.use"


def pub_learner(me: bytes, add_candidate: Callable[[str, bytes], None]) -> Callable[[Stored], None]:
    """A ``Stored`` subscriber: pub addresses published in feeds become connection
    candidates (``add_candidate(address, key)``), except our own."""

    def on_stored(event: Stored) -> None:
        for accepted in event.entries:
            if accepted.content_type == "pub" and isinstance(accepted.value, dict):
                found = parse_pub_content(accepted.value)
                if found is not None and found[1] != me:
                    add_candidate(*found)

    return on_stored


class PubService:
    """The pub side: creates invites and serves ``invite.use``."""

    def __init__(
        self,
        gateway: StoreGateway,
        keys: Keypair,
        public_address: str,
        now: Callable[[], int],
        follow: Callable[[bytes], Awaitable[object]],
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
