"""The p2psocial home folder: where the identity, the store and the daemon's files live.

The home is ``--home DIR``, else ``$P2PSOCIAL_HOME``, else ``$XDG_DATA_HOME/p2psocial``
(``~/.local/share/p2psocial`` when XDG_DATA_HOME is unset). Inside it:

- ``secret``        the Ed25519 identity, JSON, mode 0600 (never overwritten)
- ``store.sqlite``  the SQLite store (plus its ``-wal`` and ``-shm`` files)
- ``daemon.json``   written by a running daemon: its listen address, feed id and pid
- ``rpc.sock``      the daemon's local socket (mode 0600)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from p2psocial.errors import IdentityError, InvalidId
from p2psocial.identity import KEY_SIZE, SECRET_KEY_SIZE, Keypair, parse_feed_id


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The home folder from the flag, the environment or the XDG default."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("P2PSOCIAL_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "p2psocial"


@dataclass(frozen=True)
class Home:
    """Paths inside one home folder."""

    path: Path

    @property
    def secret_path(self) -> Path:
        return self.path / "secret"

    @property
    def store_path(self) -> Path:
        return self.path / "store.sqlite"

    @property
    def daemon_info_path(self) -> Path:
        return self.path / "daemon.json"

    @property
    def socket_path(self) -> Path:
        return self.path / "rpc.sock"

    def has_identity(self) -> bool:
        return self.secret_path.exists()

    def create_identity(self, seed: bytes) -> Keypair:
        """Write a new identity from ``seed``. Raises IdentityError if one exists.

        The file is created with O_EXCL and mode 0600, so an existing key is never
        overwritten, not even by a race between two ``init`` runs.
        """
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = Keypair.from_seed(seed)
        text = json.dumps(
            {
                "curve": "ed25519",
                "id": keys.feed_id,
                "public": base64.b64encode(keys.public).decode() + ".ed25519",
                "private": base64.b64encode(keys.secret).decode() + ".ed25519",
            },
            indent=2,
        )
        try:
            fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise IdentityError(f"an identity already exists at {self.secret_path}") from None
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        return keys

    def load_identity(self) -> Keypair:
        """Read and check the identity. Raises IdentityError naming the file and problem."""
        path = self.secret_path
        try:
            st = path.stat()
        except FileNotFoundError:
            raise IdentityError(
                f"no identity at {path}: run 'p2psocial init' to create one"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise IdentityError(f"{path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise IdentityError(
                f"secret key {path} is readable by others (mode {mode:04o}); "
                f"fix it with: chmod 600 {path}"
            )
        try:
            data = json.loads(path.read_text("utf-8"))
            public_text, private_text = data["public"], data["private"]
            if not (isinstance(public_text, str) and isinstance(private_text, str)):
                raise TypeError
            public = base64.b64decode(public_text.removesuffix(".ed25519"), validate=True)
            secret = base64.b64decode(private_text.removesuffix(".ed25519"), validate=True)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
            raise IdentityError(
                f"secret key file {path} is damaged (not a p2psocial key)"
            ) from None
        if len(public) != KEY_SIZE or len(secret) != SECRET_KEY_SIZE:
            raise IdentityError(
                f"secret key file {path} holds a key of the wrong size "
                f"(public {len(public)} bytes, secret {len(secret)} bytes; "
                f"expected {KEY_SIZE} and {SECRET_KEY_SIZE})"
            )
        keys = Keypair.from_seed(secret[:32])
        if keys.public != public or keys.secret != secret:
            raise IdentityError(f"secret key file {path} is damaged: keys do not match")
        declared = data.get("id")
        if declared is not None:
            try:
                if parse_feed_id(declared) != public:
                    raise IdentityError(f"secret key file {path}: its id does not match its key")
            except InvalidId:
                raise IdentityError(f"secret key file {path}: its id is malformed") from None
        return keys


__all__ = ["Home", "resolve_home"]
