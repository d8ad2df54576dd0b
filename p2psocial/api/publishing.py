"""Publishing for the methods: the app's publish, with our content's errors as RPC errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2psocial.errors import LocalContentTooLarge, RpcError, UnpublishableContent
from p2psocial.feed.content import MAX_CONTENT_SIZE
from p2psocial.proto.jsonrpc import INVALID_CONTENT

if TYPE_CHECKING:
    from p2psocial.app import App
    from p2psocial.feed.chain import Accepted
    from p2psocial.feed.content import Content


async def publish_or_explain(app: App, content: Content) -> Accepted:
    """Publish through the app; content over the limit is INVALID_CONTENT with the limit."""
    try:
        return await app.publish(content)
    except LocalContentTooLarge as exc:
        raise RpcError(
            INVALID_CONTENT,
            str(exc),
            {"type": "ContentTooLarge", "param": "content", "limit": MAX_CONTENT_SIZE},
        ) from None
    except UnpublishableContent as exc:
        raise RpcError(
            INVALID_CONTENT, str(exc), {"type": "InvalidContent", "param": "content"}
        ) from None
