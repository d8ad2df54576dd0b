"""#12: full-text search (the ``search`` view and ``Store.search``) on stores holding several
real signed feeds: what is found (words, prefixes, accents, emoji, CJK, short words,
phrases), the ranking, edits, deletes, mutes, blocks, hostile queries, content that
arrives later, paging, and rebuilds."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2psocial.errors import InvalidParams
from p2psocial.identity import message_id
from p2psocial.msgtypes.delete import delete_content
from p2psocial.msgtypes.edit import edit_content
from p2psocial.searchtext import index_text, parse_query
from p2psocial.store.store import Store
from tests.helpers import Feeds, make_keys, post, signed_feed
from tests.store.test_views import OWNER, actions, build

if TYPE_CHECKING:
    from collections.abc import Iterator

ME, BOB, CAROL = (make_keys(n) for n in range(61, 64))
NOW = 50_000_000


def found(store: Store, query: str, **kw: Any) -> list[str]:
    return [hit.text for hit in store.search(query, **kw)]


def index_terms(store: Store) -> set[tuple[str, int, int]]:
    """Every (word, rowid, position) the full-text index holds."""
    conn = store._conn
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.words USING fts5vocab(main, search, instance)"
    )
    return set(conn.execute("SELECT term, doc, offset FROM temp.words").fetchall())


def index_ok(store: Store) -> None:
    """FTS5's own check of the index's structure (raises if it is inconsistent)."""
    store._conn.execute("INSERT INTO search (search, rank) VALUES ('integrity-check', 0)")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.sqlite", owner=ME)
    yield s
    s.close()


@pytest.fixture
def feeds(store: Store) -> Feeds:
    f = Feeds(store, NOW)
    f.add(
        BOB,
        post("Un café à Zürich, près du lac"),
        post("The EU and AI: a summit in Brussels"),
        post("Delegation of powers, delegated tasks"),
        post("party time 🎉 with friends"),
        post("我在東京タワーで写真を撮った"),
        post("Łódź and Straße and the Ørsted plant"),
        post("서울에서 만나요"),
    )
    f.add(CAROL, post("AI AI AI everywhere"), post("cafe au lait please"), post("plain words"))
    return f


def test_finds_words_accents_prefixes_emoji_cjk_and_short_words(store: Store, feeds: Feeds) -> None:
    assert found(store, "lac") == ["Un café à Zürich, près du lac"]
    assert sorted(found(store, "cafe")) == ["Un café à Zürich, près du lac", "cafe au lait please"]
    assert found(store, "zurich") == found(store, "ZÜRICH") == ["Un café à Zürich, près du lac"]
    assert found(store, "Café zürich") == ["Un café à Zürich, près du lac"]
    assert found(store, "deleg*") == ["Delegation of powers, delegated tasks"]
    assert found(store, "delegat") == []  # a word is whole unless it ends in *
    assert found(store, "🎉") == ["party time 🎉 with friends"]
    assert found(store, "東京") == ["我在東京タワーで写真を撮った"]
    assert found(store, "タワー") == ["我在東京タワーで写真を撮った"]
    assert found(store, "京東") == []  # the characters in that order
    assert found(store, "서울") == ["서울에서 만나요"]
    assert found(store, "EU") == ["The EU and AI: a summit in Brussels"]
    assert found(store, "lodz strasse orsted") == ["Łódź and Straße and the Ørsted plant"]
    assert sorted(found(store, "ai")) == [
        "AI AI AI everywhere",
        "The EU and AI: a summit in Brussels",
    ]


def test_phrases_or_and_leaving_out(store: Store, feeds: Feeds) -> None:
    assert found(store, '"cafe au lait"') == ["cafe au lait please"]
    assert found(store, '"lait au cafe"') == []
    assert sorted(found(store, "lac OR lait")) == [
        "Un café à Zürich, près du lac",
        "cafe au lait please",
    ]
    assert found(store, "cafe -lait") == ["Un café à Zürich, près du lac"]
    assert found(store, "cafe NOT zurich") == ["cafe au lait please"]
    assert found(store, "cafe lait zurich") == []  # all the words


def test_ranked_by_bm25(store: Store, feeds: Feeds) -> None:
    hits = store.search("ai")
    assert [h.text for h in hits] == ["AI AI AI everywhere", "The EU and AI: a summit in Brussels"]
    assert hits[0].rank < hits[1].rank < 0
    assert [h.message.author for h in hits] == [CAROL.public, BOB.public]


def test_limit_and_before(store: Store, feeds: Feeds) -> None:
    assert len(store.search("cafe OR ai", limit=2)) == 2
    hits = store.search("cafe OR ai OR words")
    assert len(hits) == 5
    cut = sorted(h.sort_ts for h in hits)[2]
    older = store.search("cafe OR ai OR words", before=cut)
    assert older and all(h.sort_ts < cut for h in older)
    assert {h.sort_ts for h in older} == {h.sort_ts for h in hits if h.sort_ts < cut}


def test_repost_comments_are_found(store: Store, feeds: Feeds) -> None:
    target = feeds.add(CAROL, post("a quiet original"))[0]
    feeds.add(BOB, {"type": "repost", "repost": target, "comment": "look at this gem"})
    hits = store.search("gem")
    assert [h.text for h in hits] == ["look at this gem"]
    assert isinstance(hits[0].message.value, dict) and hits[0].message.value["type"] == "repost"


def test_a_deleted_post_is_no_longer_found_and_leaves_the_index(store: Store) -> None:
    kept = store.publish(ME, post("kept pelican words"), NOW)
    gone = store.publish(ME, post("secret pelican zeppelin"), NOW + 1)
    assert len(found(store, "pelican")) == 2
    store.publish(ME, delete_content(message_id(gone.entry.id)), NOW + 2)
    assert found(store, "pelican") == ["kept pelican words"]
    assert found(store, "zeppelin") == []
    assert not any(term == "zeppelin" for term, _doc, _pos in index_terms(store))
    index_ok(store)
    assert kept.entry.id in {h.message.id for h in store.search("kept")}


def test_a_delete_by_someone_else_changes_nothing(store: Store, feeds: Feeds) -> None:
    target = feeds.add(CAROL, post("carol's own albatross"))[0]
    feeds.add(BOB, delete_content(target))
    assert found(store, "albatross") == ["carol's own albatross"]


def test_an_edit_changes_what_is_found(store: Store) -> None:
    original = store.publish(ME, post("first draft about walruses"), NOW)
    target = message_id(original.entry.id)
    store.publish(ME, edit_content(target, "second draft about narwhals"), NOW + 1)
    assert found(store, "walruses") == []
    hits = store.search("narwhals")
    assert [(h.text, h.edited, h.message.id) for h in hits] == [
        ("second draft about narwhals", True, original.entry.id)
    ]
    third = store.publish(ME, edit_content(target, "final word on belugas"), NOW + 2)
    assert found(store, "narwhals") == [] and found(store, "belugas") == ["final word on belugas"]
    # taking back the latest edit gives the post the text of the one before
    store.publish(ME, delete_content(message_id(third.entry.id)), NOW + 3)
    assert found(store, "belugas") == [] and found(store, "narwhals") == [
        "second draft about narwhals"
    ]
    index_ok(store)
    store.publish(ME, delete_content(target), NOW + 4)
    assert found(store, "narwhals OR walruses OR belugas OR draft") == []
    assert index_terms(store) == set()
    index_ok(store)


def test_an_edit_by_someone_else_is_ignored(store: Store, feeds: Feeds) -> None:
    target = feeds.add(CAROL, post("carol wrote about puffins"))[0]
    feeds.add(BOB, {"type": "edit", "edit": target, "text": "bob says otters"})
    assert found(store, "puffins") == ["carol wrote about puffins"]
    assert found(store, "otters") == []


def test_an_older_edit_in_the_same_batch_loses_to_the_latest(store: Store, feeds: Feeds) -> None:
    entries = feeds.entries(BOB, post("v0 lynx"))
    target = message_id(create_entry_id(entries[0]))
    entries += feeds.entries(
        BOB,
        {"type": "edit", "edit": target, "text": "v1 ocelot"},
        {"type": "edit", "edit": target, "text": "v2 caracal"},
    )
    store.append_batch(entries, now_ms=NOW)
    assert found(store, "caracal") == ["v2 caracal"]
    assert found(store, "lynx OR ocelot") == []
    index_ok(store)


def create_entry_id(item: tuple[bytes, bytes]) -> bytes:
    from p2psocial.feed.formats import decode_entry

    return decode_entry(item[0]).id


def test_muted_feeds_are_hidden(store: Store, feeds: Feeds) -> None:
    assert len(found(store, "cafe")) == 2
    store.mute(CAROL.public, NOW)
    assert found(store, "cafe") == ["Un café à Zürich, près du lac"]
    assert found(store, "ai") == ["The EU and AI: a summit in Brussels"]
    store.unmute(CAROL.public)
    assert len(found(store, "cafe")) == 2


def test_a_blocked_feed_is_purged_from_the_index(store: Store, feeds: Feeds) -> None:
    target = feeds.add(CAROL, post("to be edited"))[0]
    feeds.add(CAROL, {"type": "edit", "edit": target, "text": "edited by carol: meerkats"})
    store.purge_feed(CAROL.public)
    assert found(store, "cafe") == ["Un café à Zürich, près du lac"]
    assert found(store, "meerkats OR everywhere OR plain") == []
    carol_words = {"meerkats", "everywhere", "lait", "plain"}
    assert not {term for term, _doc, _pos in index_terms(store)} & carol_words
    assert store._conn.execute("SELECT count(*) FROM search_edits").fetchone()[0] == 0
    index_ok(store)


HOSTILE_QUERIES = [
    '"',
    '"unbalanced quote',
    'un"balanced',
    "*",
    "**",
    "a*",
    "NEAR(cafe lait)",
    "NEAR(",
    "text:cafe",
    "search:cafe",
    "^cafe",
    "cafe AND",
    "OR",
    "AND OR NOT",
    "cafe OR OR lait",
    "(cafe",
    "cafe)",
    "-",
    "-cafe",
    "+cafe",
    "{text}: cafe",
    "cafe\x00lait",
    "'; DROP TABLE entries; --",
    "\u202ecafe",
    "🏽",
    "\ufe0f",
    "\u0301",
    "x" * 5000,
    " ".join(["w"] * 100),
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_answer_or_name_the_query(store: Store, feeds: Feeds, query: str) -> None:
    error: InvalidParams | None = None
    try:
        hits = store.search(query)
    except InvalidParams as exc:
        error, hits = exc, []
    if error is not None:
        assert error.param == "query" and "'query'" in str(error)
    assert isinstance(hits, list)


def test_hostile_queries_that_are_words_are_searched_as_words(store: Store, feeds: Feeds) -> None:
    assert found(store, "text:cafe") == []  # the phrase "text cafe", not a column filter
    assert sorted(found(store, "NEAR(cafe")) == []
    assert len(found(store, "^cafe")) == 2
    assert len(found(store, '"cafe')) == 2  # the quote runs to the end
    assert found(store, "(zurich)") == ["Un café à Zürich, près du lac"]


@pytest.mark.parametrize("query", ["", "   ", "*", "!!!", "-cafe", "NOT cafe"])
def test_queries_with_nothing_to_find_are_invalid(store: Store, query: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        store.search(query)
    assert caught.value.param == "query"


def test_a_short_prefix_is_refused_with_a_reason(store: Store) -> None:
    with pytest.raises(InvalidParams, match="at least 3 characters before"):
        store.search("ca*")
    assert store.search("東*") == []  # one CJK character is a whole word


def test_content_that_arrives_after_its_edit_is_indexed_edited(store: Store) -> None:
    feeds = Feeds(store, NOW)
    entries = feeds.entries(BOB, post("original about herons"))
    target = message_id(create_entry_id(entries[0]))
    entries += feeds.entries(BOB, {"type": "edit", "edit": target, "text": "edited: egrets"})
    store.append_batch([(entries[0][0], None), entries[1]], now_ms=NOW)  # post without content
    assert found(store, "herons OR egrets") == []
    filled = store.append_batch([entries[0]], now_ms=NOW + 1)
    assert len(filled.filled) == 1
    assert found(store, "egrets") == ["edited: egrets"]
    assert found(store, "herons") == []
    index_ok(store)


def test_an_entry_forgotten_behind_the_views_back_is_skipped_then_rebuilt(tmp_path: Path) -> None:
    """The store applies deletes after indexing, so the view drops a deleted post itself;
    should an entry ever lose its content another way, searches skip it and the next
    opening rebuilds the index without it."""
    path = tmp_path / "s.sqlite"
    with Store.open(path, owner=ME) as store:
        gone = store.publish(ME, post("orphaned walrus"), NOW)
        store.publish(ME, post("kept walrus"), NOW + 1)
        conn = store._conn
        conn.execute(
            "UPDATE entries SET content = NULL, ctype = NULL WHERE id = ?", (gone.entry.id,)
        )
        view = next(v for v in store.views if v.name == "search")
        view.forget(conn, [(gone.entry.id, ME.public, gone.entry.seq)])
        assert found(store, "walrus") == ["kept walrus"]
        assert any(term == "orphaned" for term, _doc, _pos in index_terms(store))
    with Store.open(path, owner=ME) as store:
        assert found(store, "walrus") == ["kept walrus"]
        assert not any(term == "orphaned" for term, _doc, _pos in index_terms(store))
        index_ok(store)


def test_rebuild_gives_the_same_index(store: Store, feeds: Feeds) -> None:
    first = store.publish(ME, post("mine: kestrel"), NOW)
    store.publish(ME, edit_content(message_id(first.entry.id), "mine: falcon"), NOW + 1)
    second = store.publish(ME, post("mine: osprey"), NOW + 2)
    store.publish(ME, delete_content(message_id(second.entry.id)), NOW + 3)
    store.mute(BOB.public, NOW)
    queries = ["cafe", "ai", "falcon", "kestrel OR osprey", "deleg*", "東京", "🎉", "mine"]
    before = {q: [(h.message.id, h.rank, h.text) for h in store.search(q)] for q in queries}
    terms = index_terms(store)
    edits = store._conn.execute("SELECT rx, seq FROM search_edits ORDER BY rx").fetchall()
    assert store.rebuild("search") > 0
    assert index_terms(store) == terms
    assert store._conn.execute("SELECT rx, seq FROM search_edits ORDER BY rx").fetchall() == edits
    assert {q: [(h.message.id, h.rank, h.text) for h in store.search(q)] for q in queries} == before
    index_ok(store)


def test_rebuild_of_a_larger_store_matches_incremental_indexing(tmp_path: Path) -> None:
    """Batches of several feeds at once, edits and deletes among them, chunked rebuild."""
    authors = [make_keys(n) for n in range(70, 76)]
    words = ["heron", "egret", "stork", "crane", "ibis", "café", "🎉", "東京"]
    with Store.open(tmp_path / "big.sqlite") as store:
        items = []
        for a, keys in enumerate(authors):
            contents: list[dict[str, Any]] = [
                post(f"{words[(a + i) % 8]} {words[(a * i) % 8]} number {i}")
                for i in range(1, 1200)
            ]
            feed = signed_feed(keys, contents)
            ids = [message_id(create_entry_id(item)) for item in feed]
            extra = [
                {"type": "edit", "edit": ids[5], "text": "edited heron"},
                delete_content(ids[7]),
                {"type": "edit", "edit": ids[9], "text": "edited twice: first"},
                {"type": "edit", "edit": ids[9], "text": "edited twice: second"},
            ]
            items += signed_feed(keys, contents + extra)
        for i in range(0, len(items), 1700):
            store.append_batch(items[i : i + 1700], now_ms=NOW)
        queries = ["heron", "cafe", "🎉 東京", "edited", "number 7", "second", "first"]
        counts = {q: len(store.search(q, limit=1000)) for q in queries}
        terms = index_terms(store)
        index_ok(store)
        store.rebuild("search")
        assert index_terms(store) == terms
        assert {q: len(store.search(q, limit=1000)) for q in queries} == counts
        assert counts["second"] == len(authors) and counts["first"] == 0


def test_text_is_prepared_the_same_for_the_index_and_the_query() -> None:
    assert index_text("plain ascii") == "plain ascii"
    assert index_text("Łódź").strip() == "Lodz"
    assert index_text("\u0386\u0388 \u0451").strip() == "\u0391\u0395 \u0435"  # accents go
    assert index_text("\uff46\uff55\uff4c\uff4c \ufb01le") == "full file"  # fullwidth, ligature
    assert index_text("東京") == " 東  京 "
    assert index_text("👍🏽") == index_text("👍")
    assert index_text("❤️") == index_text("❤")
    query = parse_query('alpha "two words" pre* OR -gone')
    assert query.expression() == '(("alpha" AND "two words" AND "pre" *)) NOT ("gone")'


def index_by_entry(store: Store) -> tuple[set[tuple[str, bytes, int]], set[tuple[bytes, int]]]:
    """The index's (word, entry id, position) and the edits it follows (post id, edit seq),
    whatever receive order the entries got."""
    ids = dict(store._conn.execute("SELECT rx, id FROM entries").fetchall())
    edits = store._conn.execute("SELECT rx, seq FROM search_edits").fetchall()
    return (
        {(term, ids[doc], pos) for term, doc, pos in index_terms(store)},
        {(ids[rx], seq) for rx, seq in edits},
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=actions, cuts=st.lists(st.integers(1, 25), max_size=6))
def test_one_batch_many_batches_and_rebuild_index_the_same(
    plan: list[tuple[str, int, int, bool, bool]], cuts: list[int]
) -> None:
    """Random posts, edits (some of others' posts, some of non-posts), reposts and deletes
    (some of others' messages, some of edits) of three feeds."""
    items = build(plan)
    with tempfile.TemporaryDirectory() as tmp:
        whole = Store.open(Path(tmp) / "whole.sqlite", owner=OWNER)
        parts = Store.open(Path(tmp) / "parts.sqlite", owner=OWNER)
        try:
            assert not whole.append_batch(items, NOW).errors
            bounds = sorted({0, len(items), *(c for c in cuts if c < len(items))})
            for start, end in itertools.pairwise(bounds):
                assert not parts.append_batch(items[start:end], NOW).errors
            expected = index_by_entry(whole)
            assert index_by_entry(parts) == expected
            for store in (whole, parts):
                index_ok(store)
                store.rebuild("search")
                assert index_by_entry(store) == expected
                index_ok(store)
        finally:
            whole.close()
            parts.close()
