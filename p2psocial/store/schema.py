"""The store's schema, created and upgraded by numbered migrations.

``PRAGMA user_version`` holds the number of the last migration applied and
``PRAGMA application_id`` marks the file as a p2psocial store, so a foreign SQLite file is
recognised and left alone. Each migration runs in its own transaction; a store written by a
newer version (a higher user_version) is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

APPLICATION_ID = 0x70327073  # "p2ps"

Migration = Callable[[sqlite_utils.Database], None]


def _m1_feeds_and_entries(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE feeds (
            author      BLOB PRIMARY KEY,        -- 32-byte Ed25519 public key
            latest_seq  INTEGER NOT NULL,
            latest_id   BLOB,                    -- 32-byte id of the latest entry
            forked      INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;

        CREATE TABLE entries (
            rx          INTEGER PRIMARY KEY,     -- local receive order
            id          BLOB NOT NULL UNIQUE,    -- sha256 of raw
            author      BLOB NOT NULL,
            seq         INTEGER NOT NULL,
            ts          INTEGER NOT NULL,        -- the author's claimed time (ms)
            rx_ts       INTEGER NOT NULL,        -- when we stored it (ms)
            sort_ts     INTEGER NOT NULL,        -- min(ts, rx_ts): timeline order
            raw         BLOB NOT NULL,           -- signed entry bytes, exactly as received
            content     BLOB,                    -- content bytes; NULL if not held
            ctype       TEXT,                    -- content type; NULL if private/not held
            UNIQUE (author, seq)
        );
        CREATE INDEX entries_sort ON entries (sort_ts);

        CREATE TABLE forks (
            author      BLOB NOT NULL,
            seq         INTEGER NOT NULL,
            first       BLOB NOT NULL,           -- raw bytes of the entry we held
            second      BLOB NOT NULL,           -- raw bytes of the conflicting entry
            detected_ts INTEGER NOT NULL,
            PRIMARY KEY (author, seq)
        );
        """
    )


MIGRATIONS: list[Migration] = [_m1_feeds_and_entries]
"""Applied in order; migration ``i`` (0-based) brings the store to user_version ``i + 1``."""

LATEST = len(MIGRATIONS)
