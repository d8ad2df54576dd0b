"""``pub``: a pub's address, published by whoever joined it (or by the pub itself).

``{"type": "pub", "address": {"host": HOST, "port": PORT, "key": FEED_ID}}``. Daemons that
replicate such an entry learn the pub as a connection candidate.
"""

from __future__ import annotations

from typing import Any

from p2psocial.errors import UnpublishableContent
from p2psocial.identity import feed_id
from p2psocial.msgtypes.base import ContentType, Value, feed_field


def pub_content(host: str, port: int, key: bytes) -> dict[str, Any]:
    """The content announcing a pub's address in a feed."""
    return {"type": "pub", "address": {"host": host, "port": port, "key": feed_id(key)}}


def parse_pub_content(value: Value) -> tuple[str, bytes] | None:
    """(``host:port``, key) of ``pub`` content, None if it is not usable."""
    if value.get("type") != "pub":
        return None
    address = value.get("address")
    if not isinstance(address, dict):
        return None
    host, port = address.get("host"), address.get("port")
    if not isinstance(host, str) or not host or type(port) is not int or not 0 < port < 65536:
        return None
    key = feed_field(address.get("key"))
    if key is None:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}", key


def _check(value: Value) -> None:
    if parse_pub_content(value) is None:
        raise UnpublishableContent(
            "a pub's 'address' must be {host: text, port: 1-65535, key: feed id}"
        )


def _describe(value: Value) -> str | None:
    parsed = parse_pub_content(value)
    return f"pub at {parsed[0]} ({feed_id(parsed[1])})" if parsed else None


TYPE = ContentType(
    "pub", check=_check, describe=_describe, links=lambda value: [], link_fields=frozenset()
)
