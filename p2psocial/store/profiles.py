"""Names: our petnames (a core table, never published) and the ``profiles`` view, read."""

from __future__ import annotations

from p2psocial.msgtypes.names import NameData
from p2psocial.store.db import StoreBase
from p2psocial.store.views import profiles


class Profiles(StoreBase):
    """Profiles, petnames, and the data display names are computed from."""

    def set_petname(self, feed: bytes, petname: str | None, now_ms: int) -> bool:
        """Set our petname for ``feed`` (None clears it). Returns whether it changed."""
        with self._errors(), self._transaction() as conn:
            if petname is None:
                return conn.execute("DELETE FROM petnames WHERE feed = ?", (feed,)).rowcount > 0
            return (
                conn.execute(
                    "INSERT INTO petnames (feed, petname, set_ts) VALUES (?, ?, ?) "
                    "ON CONFLICT (feed) DO UPDATE SET petname = excluded.petname, "
                    "set_ts = excluded.set_ts WHERE petname IS NOT excluded.petname",
                    (feed, petname, now_ms),
                ).rowcount
                > 0
            )

    def petname(self, feed: bytes) -> str | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT petname FROM petnames WHERE feed = ?", (feed,)
            ).fetchone()
        return row[0] if row else None

    def petnames(self) -> dict[bytes, str]:
        with self._errors():
            return dict(self._conn.execute("SELECT feed, petname FROM petnames").fetchall())

    def profile(self, author: bytes) -> dict[str, str | None]:
        """The name, bio and avatar ``author`` gives itself (None where it set none)."""
        with self._errors():
            return profiles.profile(self._conn, author)

    def name_data(self, me: bytes) -> NameData:
        """Everything display names are computed from, as ``me`` sees it."""
        with self._errors():
            followed = frozenset(
                r[0]
                for r in self._conn.execute(
                    "SELECT contact FROM contacts WHERE author = ? AND following = 1 "
                    "AND blocking = 0",
                    (me,),
                )
            )
            return NameData(
                petnames=dict(self._conn.execute("SELECT feed, petname FROM petnames")),
                self_names=profiles.self_names(self._conn),
                others=profiles.names_by_followed(self._conn, me),
                followed=followed,
            )
