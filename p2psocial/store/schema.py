"""The store's schema, created and upgraded by numbered migrations.

Migrations change the core tables only (entries, feeds, forks, peers, invites,
petnames, mutes, blobs). Tables
derived from the entries belong to views (``views/``), which have versions of their own and
are rebuilt, never migrated.

``PRAGMA user_version`` holds the number of the last migration applied and
``PRAGMA application_id`` marks the file as a p2psocial store, so a foreign SQLite file is
recognised and left alone. Each migration runs in its own transaction; a store written by a
newer version (a higher user_version) is refused rather than guessed at.

From migration 7 on, the ``meta`` table repeats in the file's pages what the header says
(``application``: ``"p2psocial"``, ``schema``: the user_version, rewritten with it) and
records the store's ``owner`` (the 32-byte public key of the identity whose store it is,
written when that identity first opens it). A damaged header byte (application id, schema
version) is then told apart from another program's file or a newer p2psocial's store, and
a secret key that does not belong to the store is refused (``db.py``).
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


def _m2_peers(db: sqlite_utils.Database) -> None:
    # Before views were plug-ins this migration also made the contacts table; it is a view
    # now (store/views/contacts.py), made and filled by its rebuild.
    db.executescript(
        """
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


def _m3_none(db: sqlite_utils.Database) -> None:
    """Made the first links table, a view now (store/views/links.py)."""


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


def _m5_none(db: sqlite_utils.Database) -> None:
    """Made the first inbox table, a view now (store/views/inbox.py)."""


def _m6_views(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Tables derived from the entries by views (store/views/): dropped here, made
        -- again and filled by each view's rebuild when the store is next opened.
        DROP TABLE IF EXISTS contacts;
        DROP TABLE IF EXISTS links;
        DROP TABLE IF EXISTS inbox;
        -- The version of each view the derived tables were built by.
        CREATE TABLE views (
            name        TEXT PRIMARY KEY,
            version     INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _m7_meta(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Facts about the store itself: 'application' ('p2psocial'), 'schema' (the
        -- user_version again, so a damaged header is recognised), 'owner' (the public key
        -- of the identity whose store this is). IF NOT EXISTS / OR IGNORE: it may run again
        -- on a store whose header was set back to an older schema.
        CREATE TABLE IF NOT EXISTS meta (
            key         TEXT PRIMARY KEY,
            value                        -- no type: stored as given
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta (key, value) VALUES ('application', 'p2psocial');
        """
    )


def _m8_petnames(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Our own local names for feeds (issue #12): never published, never replicated.
        -- IF NOT EXISTS: it may run again on a store whose header was set back.
        CREATE TABLE IF NOT EXISTS petnames (
            feed        BLOB PRIMARY KEY,          -- 32-byte public key
            petname     TEXT NOT NULL,
            set_ts      INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _m9_mutes(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Feeds we muted (issue #12): hidden from our views, still replicated (unlike a
        -- block). Local, never published. IF NOT EXISTS: it may run again on a store
        -- whose header was set back.
        CREATE TABLE IF NOT EXISTS mutes (
            feed        BLOB PRIMARY KEY,          -- 32-byte public key
            set_ts      INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _m10_no_entry_sort_index(db: sqlite_utils.Database) -> None:
    """Timelines walk the ``posts`` view (issue #12): the entries' own sort index, kept
    up to date on every stored entry, served nothing any more."""
    db.execute("DROP INDEX IF EXISTS entries_sort")


def _m11_blobs(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- The blobs held in <home>/blobs (issue #13): local state beside the files, never
        -- published. ``pinned``: ours (added by us, or fetched because we asked for it),
        -- never purged for room; ``relay``: fetched for a peer's forwarded want.
        CREATE TABLE IF NOT EXISTS blobs (
            blob        BLOB PRIMARY KEY,          -- 32-byte sha256
            size        INTEGER NOT NULL,
            stored_ts   INTEGER NOT NULL,
            used_ts     INTEGER NOT NULL,          -- last read or served (LRU purging)
            pinned      INTEGER NOT NULL DEFAULT 0,
            relay       INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS blobs_used ON blobs (used_ts);
        """
    )


MIGRATIONS: list[Migration] = [
    _m1_feeds_and_entries,
    _m2_peers,
    _m3_none,
    _m4_invites,
    _m5_none,
    _m6_views,
    _m7_meta,
    _m8_petnames,
    _m9_mutes,
    _m10_no_entry_sort_index,
    _m11_blobs,
]
"""Applied in order; migration ``i`` (0-based) brings the store to user_version ``i + 1``."""

LATEST = len(MIGRATIONS)
META_SINCE = 7
"""The first schema with the ``meta`` table."""
