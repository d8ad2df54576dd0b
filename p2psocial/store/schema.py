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


def _m2_contacts_and_peers(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- The follow graph, from 'contact' content: the latest state per (author, contact).
        CREATE TABLE contacts (
            author      BLOB NOT NULL,
            contact     BLOB NOT NULL,
            following   INTEGER NOT NULL DEFAULT 0,
            blocking    INTEGER NOT NULL DEFAULT 0,
            seq         INTEGER NOT NULL,          -- the entry that set this state
            PRIMARY KEY (author, contact)
        ) WITHOUT ROWID;
        CREATE INDEX contacts_contact ON contacts (contact);

        -- Peers we were asked to connect to (or learnt), for reconnecting.
        CREATE TABLE peers (
            address     TEXT PRIMARY KEY,          -- host:port
            feed        BLOB NOT NULL,
            source      TEXT NOT NULL,             -- 'manual', 'pub', 'lan'
            added_ts    INTEGER NOT NULL,
            last_ok_ts  INTEGER,
            failures    INTEGER NOT NULL DEFAULT 0
        );
        """
    )
    # Index contact entries already stored.
    rows = db.execute("SELECT author, seq, content FROM entries WHERE ctype = 'contact'")
    from p2psocial.store.contacts import contact_rows

    db.conn.executemany(CONTACT_UPSERT, contact_rows(rows.fetchall()))


CONTACT_UPSERT = (
    "INSERT INTO contacts (author, contact, following, blocking, seq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (author, contact) DO UPDATE SET following = excluded.following, "
    "blocking = excluded.blocking, seq = excluded.seq WHERE excluded.seq > contacts.seq"
)


def _m3_threads(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Replies: which messages name which root (content field 'root').
        CREATE TABLE links (
            root        BLOB NOT NULL,
            id          BLOB NOT NULL,
            PRIMARY KEY (root, id)
        ) WITHOUT ROWID;
        """
    )
    from p2psocial.feed.content import decode_content, thread_root

    rows = db.execute("SELECT id, content FROM entries WHERE ctype IS NOT NULL").fetchall()
    links = []
    for msg_id, content in rows:
        root = thread_root(decode_content(content)) if content else None
        if root is not None:
            links.append((root, msg_id))
    db.conn.executemany("INSERT OR IGNORE INTO links (root, id) VALUES (?, ?)", links)


def _m4_invites(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Invites this node (a pub) has handed out, by the key derived from their seed.
        CREATE TABLE invites (
            invite_key  BLOB PRIMARY KEY,
            uses_left   INTEGER NOT NULL,
            expires_ts  INTEGER,                   -- NULL: never
            created_ts  INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _m5_private_inbox(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Private messages we could open (we are a recipient), with their plaintext
        -- content. Entries we could not open are not listed: we learn nothing of them.
        CREATE TABLE inbox (
            id          BLOB PRIMARY KEY,          -- the entry's id
            author      BLOB NOT NULL,
            sort_ts     INTEGER NOT NULL,
            plaintext   BLOB NOT NULL,             -- the decrypted CBOR content
            root        BLOB                       -- thread root, if it replies
        ) WITHOUT ROWID;
        CREATE INDEX inbox_sort ON inbox (sort_ts);
        CREATE INDEX inbox_root ON inbox (root);
        """
    )


MIGRATIONS: list[Migration] = [
    _m1_feeds_and_entries,
    _m2_contacts_and_peers,
    _m3_threads,
    _m4_invites,
    _m5_private_inbox,
]
"""Applied in order; migration ``i`` (0-based) brings the store to user_version ``i + 1``."""

LATEST = len(MIGRATIONS)
