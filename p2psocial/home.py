"""The p2psocial home folder: where the identity, the store and the daemon's files live.

The home is ``--home DIR``, else ``$P2PSOCIAL_HOME``, else ``$XDG_DATA_HOME/p2psocial``
(``~/.local/share/p2psocial`` when XDG_DATA_HOME is unset). Inside it:

- ``secret``        the Ed25519 identity, JSON, mode 0600 (never overwritten)
- ``store.sqlite``  the SQLite store (plus its ``-wal`` and ``-shm`` files)
- ``daemon.json``   written by a running daemon: its listen address, feed id and pid (0600)
- ``daemon.lock``   locked by the running daemon (one daemon per home)
- ``daemon.running`` there while a daemon has the store open: found at start, it says the
  last daemon did not stop cleanly (killed, crashed, power lost), and the daemon then runs
  a full integrity check of the store before using it
- ``rpc.sock``      the daemon's local socket (mode 0600)

The folder itself is kept at mode 0700: :meth:`Home.make_private` creates it so, or
tightens an existing one (the daemon and ``init`` call it).

An identity and a store belong together: :meth:`Home.create_identity` refuses to make a new
identity next to an existing store (the secret key of that store was lost or moved, and a
new key would never match it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2psocial.errors import ConfigError, IdentityError, InvalidId
from p2psocial.identity import KEY_SIZE, SECRET_KEY_SIZE, Keypair, parse_feed_id

if TYPE_CHECKING:
    from collections.abc import Iterator


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

    @property
    def lock_path(self) -> Path:
        return self.path / "daemon.lock"

    @property
    def running_path(self) -> Path:
        return self.path / "daemon.running"

    def has_identity(self) -> bool:
        return self.secret_path.exists()

    def has_store(self) -> bool:
        """Whether a store (of any size, even damaged) or its write-ahead log is here."""
        wal = self.store_path.with_name(self.store_path.name + "-wal")
        return os.path.lexists(self.store_path) or (wal.exists() and wal.stat().st_size > 0)

    def make_private(self) -> int | None:
        """Create the folder with mode 0700, or tighten an existing one readable or
        writable by others to 0700. Returns the mode it had when it was tightened (for the
        caller to say so), else None."""
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if not mode & 0o077:
                return None
            os.chmod(self.path, 0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot make the home folder {self.path} private: {exc.strerror or exc}"
            ) from exc
        return mode

    @contextlib.contextmanager
    def try_lock(self) -> Iterator[bool]:
        """Take the daemon's lock on this home if it is free: yields True while holding it
        (no daemon can start meanwhile), False if a daemon runs."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open {self.lock_path}: {exc.strerror or exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            yield held
        finally:
            os.close(fd)

    def unclean_stop(self) -> dict[str, Any] | None:
        """What ``daemon.running`` says if it is here (the last daemon did not stop cleanly),
        else None. Only meaningful while holding the lock: a running daemon has it too."""
        try:
            text = self.running_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            info = json.loads(text)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def mark_running(self, pid: int, started: int) -> None:
        """Write ``daemon.running`` (mode 0600): the store is open in daemon ``pid``."""
        write_private(self.running_path, json.dumps({"pid": pid, "started": started}) + "\n")

    def clear_running(self) -> None:
        """Remove ``daemon.running``: the daemon closed the store cleanly."""
        self.running_path.unlink(missing_ok=True)

    def create_identity(self, seed: bytes) -> Keypair:
        """Write a new identity from ``seed``. Raises IdentityError if one exists, or if a
        store is already here (its secret key was lost or moved: restore it instead).

        The file is created with O_EXCL and mode 0600, so an existing key is never
        overwritten, not even by a race between two ``init`` runs.
        """
        if not self.has_identity() and self.has_store():
            raise IdentityError(
                f"no secret key at {self.secret_path}, but a store is at {self.store_path}: "
                "its secret key was lost or moved, and a new identity would never match it. "
                f"Put the secret key back from your backup (as {self.secret_path}, mode "
                f"0600). To start afresh with a new identity instead, first move "
                f"{self.store_path.name} and its -wal and -shm files aside. Nothing was changed. "
                "('p2psocial check' shows which identity the store belongs to.)"
            )
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
            if self.has_store():
                raise IdentityError(
                    f"no secret key at {path}, but a store is at {self.store_path}: put the "
                    "secret key back from your backup (a new identity would not match "
                    "the store)"
                ) from None
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


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600 whatever the umask."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    tmp.replace(path)


__all__ = ["Home", "resolve_home", "write_private"]
