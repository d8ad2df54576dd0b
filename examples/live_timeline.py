#!/usr/bin/env python3
"""A live timeline: prints the latest messages, then every new one as it arrives.

python examples/live_timeline.py [--home DIR] [--last N] [--count N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from p2psocial.client import Client, Overflow
from p2psocial.home import resolve_home


def show(message: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(message), flush=True)
        return
    when = time.strftime("%H:%M:%S", time.localtime(message["timestamp"] / 1000))
    content = message["content"] or {}
    body = content.get("text") or f"({content.get('type', 'private')})"
    print(f"{when} {message['author'][:9]}… {body}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="the daemon's home folder (default: as the CLI)")
    parser.add_argument("--last", type=int, default=10, help="show the N latest first")
    parser.add_argument("--count", type=int, help="exit after N new messages")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()

    with Client.for_home(resolve_home(args.home)) as client:
        # Subscribe first, then read the history: nothing falls between the two.
        with client.subscribe("subscribe") as live:
            history = client.call("timeline", limit=args.last) if args.last > 0 else []
            seen = {m["id"] for m in history}
            for message in reversed(history):
                show(message, args.json)
            new = 0
            for message in live:
                if isinstance(message, Overflow):
                    print(f"... {message.dropped} messages skipped (reading too slowly)")
                    continue
                if message["id"] in seen:
                    continue
                show(message, args.json)
                new += 1
                if args.count is not None and new >= args.count:
                    break


if __name__ == "__main__":
    main()
