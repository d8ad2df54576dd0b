"""Storage: all SQL lives in this package (see store.py and schema.py)."""

from __future__ import annotations

from p2psocial.store.store import BatchResult, Store

__all__ = ["BatchResult", "Store"]
