"""Typed access to a call's named parameters, sans-IO.

A handler receives a :class:`Params` and asks for what it needs::

    feed_id = params.require_str("feed_id")
    limit = params.optional_int("limit", 100, min_value=1, max_value=1000)
    params.reject_unknown()

Every accessor raises :class:`~p2psocial.proto.jsonrpc.InvalidParams` (answered with code
-32602 and ``data.param`` naming the parameter) when the parameter is missing, has the wrong
JSON type or is out of range. ``null`` counts as absent for ``optional_*`` accessors and is
a type error for ``require_*`` ones. Booleans are never accepted as numbers.

Whatever a method reads, every value of the params object must keep two bounds, checked
when the :class:`Params` is made (#11): arrays and objects nested at most
:data:`MAX_DEPTH` levels deep, and integers within :data:`MIN_INT`..:data:`MAX_INT` (what
SQLite and most clients' languages hold). Beyond them the store, the content encoder or an
app would fail on the value, so it is an invalid parameter named as such.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar, overload

from p2psocial.errors import InvalidId, RpcError
from p2psocial.identity import parse_blob_id, parse_feed_id, parse_message_id
from p2psocial.proto.jsonrpc import INVALID_ID, InvalidParams

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["MAX_DEPTH", "MAX_INT", "MIN_INT", "InvalidParams", "Params"]

MAX_DEPTH = 64
"""Most levels of arrays and objects in one parameter's value (``[[1]]`` is two)."""
MAX_INT = 2**63 - 1
"""Largest integer a parameter may hold anywhere in its value."""
MIN_INT = -(2**63)
"""Smallest integer a parameter may hold anywhere in its value."""

_T = TypeVar("_T")
_N = TypeVar("_N", int, float)

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def _check_value(name: str, value: Any) -> None:
    """Raise :class:`InvalidParams` naming ``name`` if ``value`` nests arrays or objects
    deeper than :data:`MAX_DEPTH`, or holds an integer outside :data:`MIN_INT`..
    :data:`MAX_INT`. Iterative: any depth JSON can parse is walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise InvalidParams(
                    f"parameter {name!r} holds an integer outside -2**63..2**63-1", name
                )
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise InvalidParams(
                    f"parameter {name!r} nests arrays or objects more than {MAX_DEPTH} levels deep",
                    name,
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    for klass in (bool, int, float, str, list, dict):
        if isinstance(value, klass):
            return _TYPE_NAMES[klass]
    return type(value).__name__


class Params:
    """A read-only view of a call's params object with typed, checked accessors.

    Raises :class:`InvalidParams` from every accessor when the parameter is unusable; the
    message names the parameter, and so does ``data.param`` in the error answer. Making
    one raises it for a value nested too deep or holding an integer out of range (see the
    module docstring), naming the first such parameter in name order.
    """

    def __init__(self, raw: Mapping[str, Any] | None = None) -> None:
        self._raw: dict[str, Any] = dict(raw or {})
        self._seen: set[str] = set()
        for name in sorted(self._raw):
            _check_value(name, self._raw[name])

    def __repr__(self) -> str:
        return f"Params({self._raw!r})"

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def to_dict(self) -> dict[str, Any]:
        """A copy of the raw params (e.g. to keep as a subscription's params)."""
        return dict(self._raw)

    # --------------------------------------------------------------------- generic

    def _fetch(self, name: str, required: bool) -> Any:
        self._seen.add(name)
        value = self._raw.get(name)
        if value is None and required:
            if name in self._raw:
                raise InvalidParams(f"parameter {name!r} must not be null", name)
            raise InvalidParams(f"missing required parameter {name!r}", name)
        return value

    def _typed(self, name: str, value: Any, klass: type[_T]) -> _T:
        ok = isinstance(value, klass) and not (klass is not bool and isinstance(value, bool))
        if not ok:
            raise InvalidParams(
                f"parameter {name!r} must be {_TYPE_NAMES[klass]}, not {_describe(value)}", name
            )
        return value  # type: ignore[no-any-return]

    def get(self, name: str) -> Any:
        """The raw value of ``name`` (any JSON value), or ``None`` when absent."""
        return self._fetch(name, required=False)

    def reject_unknown(self) -> None:
        """Raise :class:`InvalidParams` naming the first parameter no accessor has read.

        Call it after reading every parameter, so a misspelt optional parameter is an error
        and not silently ignored.
        """
        for name in sorted(self._raw.keys() - self._seen):
            raise InvalidParams(f"unknown parameter {name!r}", name)

    # --------------------------------------------------------------------- strings

    def require_str(self, name: str, *, max_length: int | None = None) -> str:
        value = self._typed(name, self._fetch(name, required=True), str)
        return self._check_length(name, value, max_length)

    @overload
    def optional_str(self, name: str, default: str, *, max_length: int | None = None) -> str: ...
    @overload
    def optional_str(
        self, name: str, default: None = None, *, max_length: int | None = None
    ) -> str | None: ...
    def optional_str(
        self, name: str, default: str | None = None, *, max_length: int | None = None
    ) -> str | None:
        value = self._fetch(name, required=False)
        if value is None:
            return default
        return self._check_length(name, self._typed(name, value, str), max_length)

    @staticmethod
    def _check_length(name: str, value: str, max_length: int | None) -> str:
        if max_length is not None and len(value) > max_length:
            raise InvalidParams(
                f"parameter {name!r} is {len(value)} characters long; the limit is {max_length}",
                name,
            )
        return value

    # --------------------------------------------------------------------- numbers

    def require_int(
        self, name: str, *, min_value: int | None = None, max_value: int | None = None
    ) -> int:
        value = self._typed(name, self._fetch(name, required=True), int)
        return self._check_range(name, value, min_value, max_value)

    @overload
    def optional_int(
        self,
        name: str,
        default: int,
        *,
        min_value: int | None = None,
        max_value: int | None = None,
    ) -> int: ...
    @overload
    def optional_int(
        self,
        name: str,
        default: None = None,
        *,
        min_value: int | None = None,
        max_value: int | None = None,
    ) -> int | None: ...
    def optional_int(
        self,
        name: str,
        default: int | None = None,
        *,
        min_value: int | None = None,
        max_value: int | None = None,
    ) -> int | None:
        value = self._fetch(name, required=False)
        if value is None:
            return default
        return self._check_range(name, self._typed(name, value, int), min_value, max_value)

    def require_float(
        self, name: str, *, min_value: float | None = None, max_value: float | None = None
    ) -> float:
        return self._number(name, self._fetch(name, required=True), min_value, max_value)

    @overload
    def optional_float(
        self,
        name: str,
        default: float,
        *,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> float: ...
    @overload
    def optional_float(
        self,
        name: str,
        default: None = None,
        *,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> float | None: ...
    def optional_float(
        self,
        name: str,
        default: float | None = None,
        *,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> float | None:
        value = self._fetch(name, required=False)
        if value is None:
            return default
        return self._number(name, value, min_value, max_value)

    def _number(
        self, name: str, value: Any, min_value: float | None, max_value: float | None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParams(
                f"parameter {name!r} must be a number, not {_describe(value)}", name
            )
        number = float(value)
        if not math.isfinite(number):
            raise InvalidParams(f"parameter {name!r} must be a finite number", name)
        return self._check_range(name, number, min_value, max_value)

    @staticmethod
    def _check_range(name: str, value: _N, min_value: float | None, max_value: float | None) -> _N:
        if min_value is not None and value < min_value:
            raise InvalidParams(f"parameter {name!r} must be >= {min_value}, not {value}", name)
        if max_value is not None and value > max_value:
            raise InvalidParams(f"parameter {name!r} must be <= {max_value}, not {value}", name)
        return value

    # --------------------------------------------------------------------- others

    def require_bool(self, name: str) -> bool:
        return self._typed(name, self._fetch(name, required=True), bool)

    def optional_bool(self, name: str, default: bool = False) -> bool:
        value = self._fetch(name, required=False)
        return default if value is None else self._typed(name, value, bool)

    def require_list(self, name: str) -> list[Any]:
        return self._typed(name, self._fetch(name, required=True), list)

    def optional_list(self, name: str) -> list[Any] | None:
        value = self._fetch(name, required=False)
        return None if value is None else self._typed(name, value, list)

    def require_str_list(self, name: str) -> list[str]:
        """An array of strings; the message names the parameter and the bad element's index."""
        values = self.require_list(name)
        for index, element in enumerate(values):
            if not isinstance(element, str):
                raise InvalidParams(
                    f"parameter {name!r}[{index}] must be a string, not {_describe(element)}",
                    name,
                )
        return values

    def require_message_id(self, name: str) -> tuple[str, bytes]:
        """A required message id parameter as (its text, its 32 bytes): INVALID_PARAMS if
        missing or not a string, INVALID_ID naming it if malformed."""
        text = self.require_str(name)
        return text, message_id_param(text, name)

    def require_blob_id(self, name: str) -> tuple[str, bytes]:
        """A required blob id parameter as (its text, its 32-byte sha256): INVALID_PARAMS if
        missing or not a string, INVALID_ID naming it if malformed."""
        text = self.require_str(name)
        return text, _id_param(parse_blob_id, text, name)

    def require_dict(self, name: str) -> dict[str, Any]:
        return self._typed(name, self._fetch(name, required=True), dict)

    def optional_dict(self, name: str) -> dict[str, Any] | None:
        value = self._fetch(name, required=False)
        return None if value is None else self._typed(name, value, dict)


def _id_param(parse: Callable[[str], bytes], text: str, name: str) -> bytes:
    try:
        return parse(text)
    except InvalidId as exc:
        raise RpcError(
            INVALID_ID, f"parameter {name!r}: {exc}", {"type": "InvalidId", "param": name}
        ) from None


def feed_id_param(text: str, name: str) -> bytes:
    """The key of feed id ``text``, given as parameter ``name``: INVALID_ID (-32002) with
    ``data.param`` naming it if malformed."""
    return _id_param(parse_feed_id, text, name)


def message_id_param(text: str, name: str) -> bytes:
    """The 32-byte id of message id ``text``, given as parameter ``name``: INVALID_ID
    (-32002) with ``data.param`` naming it if malformed."""
    return _id_param(parse_message_id, text, name)
