"""A bounded FIFO that drops when full and reports the gap in order. Sans-IO; the
client's subscription buffers use it."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

from p2psocial.errors import LocalProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")


class DropQueue(Generic[_T]):
    """A FIFO of at most ``maxlen`` items that drops new items when full and reports the gap.

    :meth:`push` drops the item (and counts it) when the queue is full. The gap is reported
    in order: by an overflow item made with ``make_overflow(count)``, inserted before the
    next item accepted, or returned by :meth:`pop` once the queue has drained. At most
    ``maxlen + 1`` items are ever held.
    """

    def __init__(self, maxlen: int, make_overflow: Callable[[int], _T]) -> None:
        if maxlen < 1:
            raise LocalProtocolError(f"queue length must be at least 1, not {maxlen}")
        self.maxlen = maxlen
        self._make_overflow = make_overflow
        self._items: deque[_T] = deque()
        self.dropped = 0
        """Items dropped since the last overflow report."""
        self.dropped_total = 0
        """Items dropped over the queue's life."""

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        """True when :meth:`pop` would return something (an item or an overflow report)."""
        return bool(self._items) or self.dropped > 0

    def push(self, item: _T, *, counts_as: int = 1) -> bool:
        """Append ``item``, or drop it if the queue is full. Returns whether it was kept.

        A dropped item counts as ``counts_as`` items (an overflow report that is itself
        dropped passes its count on).
        """
        if len(self._items) >= self.maxlen:
            self.dropped += counts_as
            self.dropped_total += counts_as
            return False
        if self.dropped:
            self._items.append(self._make_overflow(self.dropped))
            self.dropped = 0
        self._items.append(item)
        return True

    def pop(self) -> _T | None:
        """The next item, or an overflow report, or ``None`` when there is nothing."""
        if self._items:
            return self._items.popleft()
        if self.dropped:
            count, self.dropped = self.dropped, 0
            return self._make_overflow(count)
        return None

    def clear(self) -> None:
        self._items.clear()
        self.dropped = 0
