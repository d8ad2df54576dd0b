"""scripts/bench_views.py (#12) at a very small size, through its real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from tests.helpers import REPO

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = REPO / "scripts" / "bench_views.py"
MEASURED = [
    "call_floor",
    "timeline_first",
    "timeline_page50",
    "thread",
    "profile",
    "notifications",
    "search_common",
    "search_rare",
    "search_prefix",
    "sql_page",
]
KEYS = {
    *(f"{name}_{p}_ms" for name in MEASURED for p in ("p50", "p99")),
    "entries",
    "authors",
    "thread_messages",
    "rebuild_entries_per_s",
    "rebuild_view_s",
    "store_bytes",
    "raw_bytes",
    "size_ratio",
    "sql_scan_rows_per_s",
    "replay_decode_entries_per_s",
    "targets_met",
    "notes",
}


def bench(*args: str) -> tuple[dict[str, Any], str]:
    """(the JSON line, what went to stderr) of one run of the script."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--samples", "5", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0]), done.stderr


def test_bench_views_builds_measures_and_reuses_its_store(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    first, log = bench("--entries", "6000", "--authors", "30", "--store", str(store))
    assert KEYS <= first.keys(), KEYS - first.keys()
    assert "building 6000 entries" in log
    assert first["entries"] == 6000
    assert first["authors"] == 30
    assert first["thread_messages"] == 201  # the root and its 200 replies, nothing else
    assert first["timeline_page50_items"] == 50
    for name in ("call_floor", "timeline_first", "timeline_page50", "thread", "profile"):
        assert 0 < first[f"{name}_p50_ms"] <= first[f"{name}_p99_ms"], name
    for name in MEASURED:  # a method not built yet is null, and says why
        assert first[f"{name}_p50_ms"] is not None or name in first["notes"], name
    assert {"contacts", "links", "votes", "deletions"} <= first["rebuild_view_s"].keys()
    assert first["rebuild_entries_per_s"] > 0
    assert first["raw_bytes"] < first["store_bytes"]
    assert first["size_ratio"] == round(first["store_bytes"] / first["raw_bytes"], 3)
    assert first["search_matches"]["rare"] == 10
    assert store.exists()

    again, log = bench("--store", str(store))
    assert "not building" in log
    assert again["build_s"] is None
    assert again["entries"] == 6000
    assert again["thread_messages"] == 201
