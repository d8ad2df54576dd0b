"""Peers to reconnect to, and the invites a pub has handed out."""

from __future__ import annotations

from p2psocial.store.db import StoreBase


class Peers(StoreBase):
    """Remembered peers and pub invites."""

    def remember_peer(self, address: str, feed: bytes, source: str, now_ms: int) -> None:
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "INSERT INTO peers (address, feed, source, added_ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET feed = excluded.feed",
                (address, feed, source, now_ms),
            )

    def forget_peer(self, address: str) -> bool:
        with self._errors(), self._transaction() as conn:
            return conn.execute("DELETE FROM peers WHERE address = ?", (address,)).rowcount > 0

    def known_peers(self) -> list[tuple[str, bytes, str]]:
        """(address, feed, source) of every remembered peer."""
        with self._errors():
            return [
                (r[0], r[1], r[2])
                for r in self._conn.execute("SELECT address, feed, source FROM peers")
            ]

    def peer_outcome(self, address: str, ok: bool, now_ms: int) -> None:
        with self._errors(), self._transaction() as conn:
            if ok:
                conn.execute(
                    "UPDATE peers SET last_ok_ts = ?, failures = 0 WHERE address = ?",
                    (now_ms, address),
                )
            else:
                conn.execute(
                    "UPDATE peers SET failures = failures + 1 WHERE address = ?", (address,)
                )

    # ------------------------------------------------------------------ invites (pubs)

    def add_invite(self, invite_key: bytes, uses: int, expires_ts: int | None, now_ms: int) -> None:
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "INSERT INTO invites (invite_key, uses_left, expires_ts, created_ts) "
                "VALUES (?, ?, ?, ?)",
                (invite_key, uses, expires_ts, now_ms),
            )

    def use_invite(self, invite_key: bytes, now_ms: int) -> str | None:
        """Spend one use of an invite. None if it worked, else why not (in words)."""
        with self._errors(), self._transaction() as conn:
            row = conn.execute(
                "SELECT uses_left, expires_ts FROM invites WHERE invite_key = ?", (invite_key,)
            ).fetchone()
            if row is None:
                return "this pub does not know that invite"
            uses_left, expires = row
            if expires is not None and now_ms >= expires:
                return "the invite has expired"
            if uses_left <= 0:
                return "the invite is used up"
            conn.execute(
                "UPDATE invites SET uses_left = uses_left - 1 WHERE invite_key = ?", (invite_key,)
            )
        return None
