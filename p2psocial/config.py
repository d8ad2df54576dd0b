"""Daemon settings: defaults, then ``<home>/config.toml``, then the environment, then flags.

Every setting has a working default, so a fresh home needs no configuration at all.

``config.toml`` keys (all optional)::

    listen = "0.0.0.0:8018"     # where peers connect; port 0 picks a free port
    hops = 2                    # replicate feeds within this many follows of you
    network_key = "fe33a4..."   # 64 hex digits: a private network of your own
    lan = true                  # LAN discovery by mDNS
    interfaces = ["eth0"]       # mDNS only on these interfaces (default: all)
    pub = false                 # run as a pub: follow whoever redeems our invites
    public_address = "pub.example.org:8018"   # what invite codes point to (pubs)
    blob_max_size = "5MiB"      # the largest blob fetched or added (bytes, or KiB/MiB/GiB)
    blob_quota = "1GiB"         # all blobs together; the least recently used go first
    blob_hops = 1               # fetch blobs of feeds this many follows away (0: only ours)

Environment: ``P2PSOCIAL_NETWORK_KEY`` (hex) overrides ``network_key``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from p2psocial.errors import ConfigError
from p2psocial.proto.handshake import NETWORK_KEY

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_PORT = 8018
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
DEFAULT_HOPS = 2
DEFAULT_BLOB_MAX_SIZE = 5 * 1024 * 1024
DEFAULT_BLOB_QUOTA = 1024 * 1024 * 1024
MAX_BLOB_MAX_SIZE = 32 * 1024 * 1024
"""The largest blob_max_size (a blob travels whole in one answer of the local socket)."""
SERVE_CHOICES = ("everyone", "follows")
"""Who the daemon serves feeds to: ``everyone`` (public gossip, the default: any peer is
sent any feed it asks for that we hold) or ``follows`` (only the feeds of people we
follow, and our own, to peers we follow and the pubs we joined)."""


def parse_address(text: str, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port). Raises ConfigError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} must be HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{what} has a port that is not a number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what} port must be 0..65535, got {port}")
    return host, port


def parse_serve(value: object, what: str = "--serve") -> str:
    """One of :data:`SERVE_CHOICES`. Raises ConfigError."""
    if value not in SERVE_CHOICES:
        raise ConfigError(f"{what} must be one of {', '.join(SERVE_CHOICES)}, not {value!r}")
    return str(value)


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_size(value: object, what: str) -> int:
    """A size in bytes: an integer, or text such as ``"5MiB"``, ``"1.5GB"``. ConfigError."""
    if type(value) is int:
        number: float = value
    else:
        text = str(value).strip().lower().replace(" ", "")
        digits = text.rstrip("kmgib")
        unit = text[len(digits) :]
        if unit not in _UNITS:
            raise ConfigError(f"{what} must be a size such as 5MiB or 1GiB, got {value!r}")
        try:
            number = float(digits) * _UNITS[unit]
        except ValueError:
            raise ConfigError(
                f"{what} must be a size such as 5MiB or 1GiB, got {value!r}"
            ) from None
    if not 1 <= number <= 2**50:
        raise ConfigError(f"{what} must be at least 1 byte, got {value!r}")
    return int(number)


def parse_network_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError("network key must be 64 hex digits") from None
    if len(key) != 32:
        raise ConfigError(f"network key must be 32 bytes (64 hex digits), got {len(key)}")
    return key


@dataclass(frozen=True)
class Config:
    listen: str = DEFAULT_LISTEN
    hops: int = DEFAULT_HOPS
    network_key: bytes = NETWORK_KEY
    lan: bool = True
    interfaces: tuple[str, ...] = field(default_factory=tuple)
    pub: bool = False
    public_address: str | None = None
    serve: str = "everyone"
    blob_max_size: int = DEFAULT_BLOB_MAX_SIZE
    blob_quota: int = DEFAULT_BLOB_QUOTA
    blob_hops: int = 1

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_address(self.listen, "listen address")

    def with_overrides(self, **values: Any) -> Config:
        """A copy with the given values (None means: keep)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def load_config(home: Path) -> Config:
    """Defaults, overridden by ``home/config.toml`` and the environment."""
    config = Config()
    path = home / "config.toml"
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        known = {
            "listen",
            "hops",
            "network_key",
            "lan",
            "interfaces",
            "pub",
            "public_address",
            "serve",
            "blob_max_size",
            "blob_quota",
            "blob_hops",
        }
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        if "listen" in data:
            values["listen"] = str(data["listen"])
            parse_address(values["listen"], f"{path}: listen")
        if "hops" in data:
            if type(data["hops"]) is not int or not 0 <= data["hops"] <= 6:
                raise ConfigError(f"{path}: hops must be an integer from 0 to 6")
            values["hops"] = data["hops"]
        if "network_key" in data:
            values["network_key"] = parse_network_key(str(data["network_key"]))
        if "lan" in data:
            values["lan"] = bool(data["lan"])
        if "pub" in data:
            values["pub"] = bool(data["pub"])
        if "public_address" in data:
            values["public_address"] = str(data["public_address"])
            parse_address(values["public_address"], f"{path}: public_address")
        if "interfaces" in data:
            values["interfaces"] = tuple(str(i) for i in data["interfaces"])
        if "serve" in data:
            values["serve"] = parse_serve(data["serve"], f"{path}: serve")
        for name in ("blob_max_size", "blob_quota"):
            if name in data:
                values[name] = parse_size(data[name], f"{path}: {name}")
        if values.get("blob_max_size", 0) > MAX_BLOB_MAX_SIZE:
            raise ConfigError(
                f"{path}: blob_max_size can be at most {MAX_BLOB_MAX_SIZE // (1024 * 1024)}MiB"
            )
        if "blob_hops" in data:
            if type(data["blob_hops"]) is not int or not 0 <= data["blob_hops"] <= 6:
                raise ConfigError(f"{path}: blob_hops must be an integer from 0 to 6")
            values["blob_hops"] = data["blob_hops"]
        config = replace(config, **values)
    env_key = os.environ.get("P2PSOCIAL_NETWORK_KEY")
    if env_key:
        config = replace(config, network_key=parse_network_key(env_key))
    return config
