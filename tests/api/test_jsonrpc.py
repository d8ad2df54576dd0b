"""The JSON-RPC codec, sans-IO: lines in, items out; answers, errors and notifications out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2psocial.errors import (
    CodecError,
    ConfigError,
    ContentTooLarge,
    DaemonNotRunning,
    DatabaseCorrupt,
    HandshakeFailed,
    IdentityError,
    InvalidContent,
    InvalidId,
    LocalProtocolError,
    NotFound,
    PeerDisconnected,
    RpcError,
    StorageError,
)
from p2psocial.proto.jsonrpc import (
    CONFIG_ERROR,
    ERROR_CODES,
    ERROR_NAMES,
    IDENTITY_ERROR,
    INTERNAL_ERROR,
    INVALID_CONTENT,
    INVALID_ID,
    INVALID_PARAMS,
    INVALID_REQUEST,
    NOT_FOUND,
    PARSE_ERROR,
    PEER_ERROR,
    SERVER_ERROR,
    STORAGE_ERROR,
    ErrorObject,
    ErrorResponse,
    InvalidParams,
    LineReader,
    LineTooLong,
    Notification,
    Request,
    Response,
    dumps,
    encode_batch,
    encode_error,
    encode_message_notification,
    encode_notification,
    encode_overflow_notification,
    encode_request,
    encode_response,
    error_for_exception,
    parse_line,
    parse_server_line,
)


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def one(data: bytes) -> Request | ErrorResponse:
    items, is_batch = parse_line(data)
    assert not is_batch
    assert len(items) == 1
    return items[0]


def error_code(item: Request | ErrorResponse) -> int:
    assert isinstance(item, ErrorResponse), item
    return item.error.code


# ------------------------------------------------------------------------------ requests


@pytest.mark.parametrize("request_id", [1, 0, -7, "abc", "", None, 1.5])
def test_request_ids_are_kept(request_id: Any) -> None:
    item = one(line({"jsonrpc": "2.0", "id": request_id, "method": "m", "params": {"a": 1}}))
    assert item == Request("m", {"a": 1}, request_id, is_notification=False)


def test_notification_has_no_id() -> None:
    item = one(line({"jsonrpc": "2.0", "method": "m"}))
    assert item == Request("m", {}, None, is_notification=True)


def test_explicit_null_id_is_a_request_not_a_notification() -> None:
    item = one(line({"jsonrpc": "2.0", "method": "m", "id": None}))
    assert isinstance(item, Request)
    assert not item.is_notification


@pytest.mark.parametrize("bad_id", [True, [1], {"a": 1}])
def test_bad_id_is_invalid_request_with_null_id(bad_id: Any) -> None:
    item = one(line({"jsonrpc": "2.0", "id": bad_id, "method": "m"}))
    assert error_code(item) == INVALID_REQUEST
    assert item.id is None


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ({"id": 3, "method": "m"}, '"jsonrpc": "2.0"'),
        ({"jsonrpc": "1.0", "id": 3, "method": "m"}, '"jsonrpc": "2.0"'),
        ({"jsonrpc": "2.0", "id": 3}, "method must be a string"),
        ({"jsonrpc": "2.0", "id": 3, "method": 5}, "method must be a string"),
        ({"jsonrpc": "2.0", "id": 3, "method": "m", "params": "x"}, "params must be an object"),
        ({"jsonrpc": "2.0", "id": 3, "method": "m", "params": 1}, "params must be an object"),
    ],
)
def test_malformed_requests_echo_a_valid_id(obj: dict[str, Any], needle: str) -> None:
    item = one(line(obj))
    assert error_code(item) == INVALID_REQUEST
    assert isinstance(item, ErrorResponse)
    assert item.id == 3
    assert needle in item.error.message


@pytest.mark.parametrize("value", [1, "text", None, True])
def test_non_object_request_is_invalid(value: Any) -> None:
    assert error_code(one(line(value))) == INVALID_REQUEST


def test_params_by_position_parse_but_are_refused_naming_the_rule() -> None:
    item = one(line({"jsonrpc": "2.0", "id": 1, "method": "add", "params": [1, 2]}))
    assert isinstance(item, Request)
    with pytest.raises(InvalidParams, match="named parameters") as info:
        item.named_params()
    assert info.value.code == INVALID_PARAMS


@pytest.mark.parametrize(
    "data",
    [
        b"{",
        b"not json",
        b'{"jsonrpc": "2.0", "id": 1, "method": "m"',
        b"\xff\xfe{}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' + b"9" * 10_000 + b"}",
        "\ufeff{}".encode(),
    ],
    ids=["brace", "text", "truncated", "utf16", "nan", "inf", "deep", "bigint", "bom"],
)
def test_parse_errors(data: bytes) -> None:
    item = one(data)
    assert error_code(item) == PARSE_ERROR
    assert item.id is None


# ------------------------------------------------------------------------------ batches


def test_batch_gives_one_item_per_element_in_order() -> None:
    items, is_batch = parse_line(
        line(
            [
                {"jsonrpc": "2.0", "id": 1, "method": "a"},
                {"jsonrpc": "2.0", "method": "b"},
                5,
                {"jsonrpc": "2.0", "id": 2, "method": "c", "params": {"x": 1}},
            ]
        )
    )
    assert is_batch
    assert items[0] == Request("a", {}, 1)
    assert items[1] == Request("b", {}, None, is_notification=True)
    assert error_code(items[2]) == INVALID_REQUEST
    assert items[3] == Request("c", {"x": 1}, 2)


def test_empty_batch_is_one_invalid_request_not_a_batch() -> None:
    items, is_batch = parse_line(b"[]")
    assert not is_batch
    assert [error_code(i) for i in items] == [INVALID_REQUEST]


def test_batch_over_the_limit_is_refused() -> None:
    batch = [{"jsonrpc": "2.0", "id": i, "method": "m"} for i in range(11)]
    items, is_batch = parse_line(line(batch), max_batch=10)
    assert not is_batch
    assert isinstance(items[0], ErrorResponse)
    assert "limit is 10" in items[0].error.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_line_never_raises_on_bytes(data: bytes) -> None:
    items, _ = parse_line(data)
    assert items
    for item in items:
        assert isinstance(item, Request | ErrorResponse)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parse_line_never_raises_on_json(value: Any) -> None:
    items, _ = parse_line(json.dumps(value).encode())
    assert items


# ------------------------------------------------------------------------------ encoding


def test_response_round_trip() -> None:
    data = encode_response(7, {"ok": [1, "é"]})
    assert data.endswith(b"\n")
    assert b"\\u" not in data  # UTF-8, not ASCII escapes
    assert parse_server_line(data) == [Response(7, {"ok": [1, "é"]})]


def test_error_round_trip_keeps_code_message_and_data() -> None:
    data = encode_error("x", ErrorObject(NOT_FOUND, "no such feed", {"type": "NotFound"}))
    assert parse_server_line(data) == [
        ErrorResponse("x", ErrorObject(NOT_FOUND, "no such feed", {"type": "NotFound"}))
    ]


def test_error_without_data_has_no_data_member() -> None:
    assert "data" not in json.loads(encode_error(1, ErrorObject(-32000, "x")))["error"]


def test_batch_encoding() -> None:
    data = encode_batch([encode_response(1, True), encode_response(2, False)])
    assert data.count(b"\n") == 1
    assert parse_server_line(data) == [Response(1, True), Response(2, False)]


def test_lone_surrogate_is_escaped_so_the_line_stays_utf8() -> None:
    data = encode_response(1, "\ud800x")
    data.decode("utf-8")
    assert json.loads(data)["result"] == "\ud800x"


def test_non_json_result_raises_type_error() -> None:
    with pytest.raises(TypeError):
        encode_response(1, object())
    with pytest.raises(ValueError, match="Out of range"):
        encode_response(1, float("nan"))


def test_notifications() -> None:
    message = encode_message_notification("s1", dumps({"n": 1}))
    assert json.loads(message) == {
        "jsonrpc": "2.0",
        "method": "message",
        "params": {"subscription": "s1", "message": {"n": 1}},
    }
    assert parse_server_line(message) == [
        Notification("message", {"subscription": "s1", "message": {"n": 1}})
    ]
    overflow = encode_overflow_notification("s1", 42)
    assert json.loads(overflow)["params"] == {"subscription": "s1", "dropped": 42}
    assert json.loads(encode_notification("ping")) == {"jsonrpc": "2.0", "method": "ping"}


def test_request_encoding() -> None:
    assert json.loads(encode_request(3, "add", {"a": 1})) == {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "add",
        "params": {"a": 1},
    }
    assert "params" not in json.loads(encode_request(3, "whoami"))


@pytest.mark.parametrize(
    "data",
    [
        b"nope",
        b"[]",
        b"{}",
        b'{"jsonrpc": "2.0", "id": 1}',
        b'{"jsonrpc": "2.0", "id": [1], "result": 1}',
        b'{"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}}',
        b'{"jsonrpc": "2.0", "method": 1}',
    ],
)
def test_parse_server_line_rejects_garbage(data: bytes) -> None:
    with pytest.raises(CodecError):
        parse_server_line(data)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("no feed @x"), NOT_FOUND),
        (InvalidId("bad id"), INVALID_ID),
        (ContentTooLarge("too big"), INVALID_CONTENT),
        (InvalidContent("no type"), INVALID_CONTENT),
        (ConfigError("bad setting"), CONFIG_ERROR),
        (StorageError("disk full"), STORAGE_ERROR),
        (DatabaseCorrupt("damaged"), STORAGE_ERROR),
        (IdentityError("no key"), IDENTITY_ERROR),
        (PeerDisconnected("gone"), PEER_ERROR),
        (HandshakeFailed("client hello"), PEER_ERROR),
        (DaemonNotRunning("?"), SERVER_ERROR),
    ],
)
def test_our_exceptions_map_to_their_codes(exc: Exception, code: int) -> None:
    error = error_for_exception(exc)
    assert error.code == code
    assert error.message == str(exc)
    assert error.data == {"type": type(exc).__name__}


@pytest.mark.parametrize("exc", [ValueError("secret detail"), LocalProtocolError("our bug")])
def test_bugs_are_internal_errors_without_details(exc: Exception) -> None:
    error = error_for_exception(exc)
    assert error.code == INTERNAL_ERROR
    assert error.message == "internal error"
    assert error.data == {"type": type(exc).__name__}


def test_rpc_error_keeps_its_code_and_data() -> None:
    error = error_for_exception(RpcError(-32005, "not yours", {"feed": "@x"}))
    assert error == ErrorObject(-32005, "not yours", {"type": "RpcError", "feed": "@x"})
    error = error_for_exception(RpcError(-32099, "odd", [1, 2]))
    assert error.data == {"type": "RpcError", "value": [1, 2]}


def test_invalid_params_names_the_parameter() -> None:
    error = error_for_exception(InvalidParams("missing required parameter 'feed_id'", "feed_id"))
    assert error.code == INVALID_PARAMS
    assert error.data == {"type": "InvalidParams", "param": "feed_id"}


def test_code_table_is_consistent() -> None:
    for code in ERROR_CODES.values():
        assert code in ERROR_NAMES
    for code in ERROR_NAMES:
        assert -32099 <= code <= -32000 or -32768 <= code <= -32600


# ------------------------------------------------------------------------------ lines


def test_line_reader_whole_and_byte_by_byte() -> None:
    stream = b'{"a":1}\n\r\n{"b":2}\r\n{"c"'
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        reader = LineReader(100)
        lines: list[bytes] = []
        for chunk in chunks:
            reader.receive_data(chunk)
            while (got := reader.next_line()) is not None:
                lines.append(got)
        assert lines == [b'{"a":1}', b"", b'{"b":2}']
        assert reader.buffered == 4


def test_line_reader_refuses_a_long_line_before_its_newline() -> None:
    reader = LineReader(10)
    reader.receive_data(b"x" * 10)
    assert reader.next_line() is None
    reader.receive_data(b"x")
    with pytest.raises(LineTooLong):
        reader.next_line()
    reader.receive_data(b"\nok\n")
    with pytest.raises(LineTooLong):  # no resynchronisation
        reader.next_line()


def test_line_reader_refuses_a_complete_long_line() -> None:
    reader = LineReader(10)
    reader.receive_data(b"ok\n" + b"y" * 11 + b"\n")
    assert reader.next_line() == b"ok"
    with pytest.raises(LineTooLong):
        reader.next_line()


def test_line_reader_exact_limit_is_fine() -> None:
    reader = LineReader(10)
    reader.receive_data(b"z" * 10 + b"\r\n")
    assert reader.next_line() == b"z" * 10


def test_line_reader_compacts_its_buffer() -> None:
    reader = LineReader(100)
    for _ in range(1000):
        reader.receive_data(b"abc\n")
        assert reader.next_line() == b"abc"
    assert reader.buffered == 0
    assert len(reader._buf) < 100
