"""Storage: all SQL lives in this package (see store.py for the parts)."""

from __future__ import annotations
