"""Typed params: every wrong or missing parameter is InvalidParams naming it."""

from __future__ import annotations

from typing import Any

import pytest

from p2psocial.api.params import Params
from p2psocial.proto.jsonrpc import INVALID_PARAMS, InvalidParams

P = Params(
    {
        "name": "alice",
        "count": 5,
        "ratio": 0.5,
        "flag": True,
        "items": ["a", "b"],
        "mixed": ["a", 1],
        "obj": {"k": 1},
        "nothing": None,
    }
)


def refused(call: Any, param: str, needle: str) -> None:
    with pytest.raises(InvalidParams) as info:
        call()
    assert info.value.code == INVALID_PARAMS
    assert info.value.param == param
    assert info.value.data == {"type": "InvalidParams", "param": param}
    assert needle in info.value.message
    assert repr(param) in info.value.message


def test_accessors_return_values() -> None:
    assert P.require_str("name") == "alice"
    assert P.optional_str("name") == "alice"
    assert P.optional_str("absent") is None
    assert P.optional_str("absent", "x") == "x"
    assert P.optional_str("nothing", "x") == "x"  # null counts as absent
    assert P.require_int("count", min_value=0, max_value=5) == 5
    assert P.optional_int("absent", 10) == 10
    assert P.optional_int("absent") is None
    assert P.require_float("ratio") == 0.5
    assert P.require_float("count") == 5.0
    assert P.optional_float("absent", 1.5) == 1.5
    assert P.require_bool("flag") is True
    assert P.optional_bool("absent") is False
    assert P.require_list("items") == ["a", "b"]
    assert P.require_str_list("items") == ["a", "b"]
    assert P.optional_list("absent") is None
    assert P.require_dict("obj") == {"k": 1}
    assert P.optional_dict("absent") is None
    assert P.get("obj") == {"k": 1}
    assert "name" in P
    assert P.to_dict()["count"] == 5


def test_missing_and_null_required() -> None:
    refused(lambda: P.require_str("feed_id"), "feed_id", "missing required parameter")
    refused(lambda: P.require_int("nothing"), "nothing", "must not be null")


@pytest.mark.parametrize(
    ("call", "param", "needle"),
    [
        (lambda: P.require_str("count"), "count", "must be a string, not an integer"),
        (lambda: P.require_int("name"), "name", "must be an integer, not a string"),
        (lambda: P.require_int("flag"), "flag", "must be an integer, not a boolean"),
        (lambda: P.require_int("ratio"), "ratio", "must be an integer, not a number"),
        (lambda: P.optional_int("flag", 1), "flag", "must be an integer"),
        (lambda: P.require_float("flag"), "flag", "must be a number, not a boolean"),
        (lambda: P.require_bool("count"), "count", "must be a boolean"),
        (lambda: P.require_list("obj"), "obj", "must be an array, not an object"),
        (lambda: P.require_dict("items"), "items", "must be an object, not an array"),
        (lambda: P.require_str_list("mixed"), "mixed", "[1] must be a string"),
        (lambda: P.require_int("count", min_value=6), "count", "must be >= 6"),
        (lambda: P.optional_int("count", 1, max_value=4), "count", "must be <= 4"),
        (lambda: P.require_float("ratio", max_value=0.1), "ratio", "must be <= 0.1"),
        (lambda: P.require_str("name", max_length=3), "name", "the limit is 3"),
    ],
)
def test_wrong_parameters_are_named(call: Any, param: str, needle: str) -> None:
    refused(call, param, needle)


def test_reject_unknown_names_the_first_unread_parameter() -> None:
    params = Params({"feed_id": "@x", "limt": 3})
    params.require_str("feed_id")
    params.optional_int("limit", 10)
    refused(params.reject_unknown, "limt", "unknown parameter")
    params.get("limt")
    params.reject_unknown()


def test_empty_params() -> None:
    params = Params()
    assert params.optional_int("limit", 3) == 3
    params.reject_unknown()


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of arrays and objects, alternating, around ``leaf``."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("value", [nested(64), 2**63 - 1, -(2**63), [2**63 - 1], True, 1.5e300])
def test_values_within_the_bounds_are_kept(value: Any) -> None:
    assert Params({"p": value}).get("p") == value


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (nested(65), "more than 64 levels deep"),
        (nested(500), "more than 64 levels deep"),
        ([[[[]]]] * 3 + [nested(80, [])], "more than 64 levels deep"),
        (2**63, "integer outside -2**63..2**63-1"),
        (-(2**63) - 1, "integer outside -2**63..2**63-1"),
        ({"deep": [1, 2, {"x": 2**64}]}, "integer outside -2**63..2**63-1"),
    ],
)
def test_values_beyond_the_bounds_are_refused_naming_the_parameter(value: Any, needle: str) -> None:
    """What used to reach the store or the encoder and fail as INTERNAL_ERROR (#11)."""
    refused(lambda: Params({"fine": 1, "p": value}), "p", needle)


def test_depth_any_json_can_parse_is_checked_without_recursion() -> None:
    value: Any = 1
    for _ in range(100_000):
        value = [value]
    refused(lambda: Params({"p": value}), "p", "levels deep")
