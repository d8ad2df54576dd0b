"""Invite codes: ``HOST:PORT:@PUB_KEY.ed25519~SEED``.

``SEED`` is 32 random bytes in base64. The newcomer derives an Ed25519 keypair from it
(``crypto_sign_seed_keypair``), dials the pub with that *invite key* and calls
``invite.use``; the pub knows the invite by the key, so the code itself never crosses the
wire. See docs/protocol.md, "Pubs and invites".
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from p2psocial.config import parse_address
from p2psocial.errors import ConfigError, InvalidId, InvalidInvite
from p2psocial.identity import Keypair, feed_id, parse_feed_id


@dataclass(frozen=True)
class Invite:
    host: str
    port: int
    pub_key: bytes
    seed: bytes

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def keys(self) -> Keypair:
        """The invite keypair the newcomer dials with."""
        return Keypair.from_seed(self.seed)

    def __str__(self) -> str:
        return f"{self.address}:{feed_id(self.pub_key)}~{base64.b64encode(self.seed).decode()}"


def parse_invite(code: str) -> Invite:
    """Parse an invite code. Raises InvalidInvite naming what is wrong."""
    code = code.strip()
    address, sep, rest = code.partition(":@")
    if not sep:
        raise InvalidInvite("invite code is malformed: expected HOST:PORT:@PUB_KEY.ed25519~SEED")
    pub_text, tilde, seed_text = rest.partition("~")
    if not tilde:
        raise InvalidInvite("invite code is malformed: the '~SEED' part is missing")
    try:
        host, port = parse_address(address, "invite address")
    except ConfigError as exc:
        raise InvalidInvite(f"invite code is malformed: {exc}") from None
    if port == 0:
        raise InvalidInvite("invite code is malformed: port 0")
    try:
        pub_key = parse_feed_id("@" + pub_text)
    except InvalidId as exc:
        raise InvalidInvite(f"invite code is malformed: pub key: {exc}") from None
    try:
        seed = base64.b64decode(seed_text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInvite("invite code is malformed: the seed is not base64") from None
    if len(seed) != 32:
        raise InvalidInvite(f"invite code is malformed: the seed is {len(seed)} bytes, not 32")
    return Invite(host, port, pub_key, seed)


def parse_duration(text: str) -> int:
    """``30s``, ``15m``, ``2h``, ``7d`` (or plain seconds) as milliseconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    unit = units.get(text[-1:]) if text else None
    number = text[:-1] if unit else text
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"duration must be like 30m, 12h or 7d, got {text!r}") from None
    if value <= 0:
        raise ConfigError("duration must be positive")
    return int(value * (unit or 1) * 1000)
