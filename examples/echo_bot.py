#!/usr/bin/env python3
"""An echo bot: answers every message that mentions you, in its thread.

Run it next to your daemon; it replies "echo: <their text>" to each new message that
mentions your feed id (in the text or in a ``mentions`` list), mentioning the author:

    python examples/echo_bot.py [--home DIR] [--count N]
"""

from __future__ import annotations

import argparse

from p2psocial.client import Client, Overflow
from p2psocial.home import resolve_home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="the daemon's home folder (default: as the CLI)")
    parser.add_argument("--count", type=int, help="stop after answering N messages")
    args = parser.parse_args()

    with (
        Client.for_home(resolve_home(args.home)) as client,
        client.subscribe("subscribe", filter="mentions") as mentions,
    ):
        print("listening for mentions of", client.call("whoami")["feed_id"], flush=True)
        answered = 0
        for message in mentions:
            if isinstance(message, Overflow):  # we were too slow: some were dropped
                print(f"missed {message.dropped} mentions", flush=True)
                continue
            content = message["content"]
            reply = client.call(
                "post",
                text=f"echo: {content.get('text', '')}",
                root=content.get("root") or message["id"],  # stay in the thread
                branch=message["id"],
                mentions=[message["author"]],
            )
            print("answered", message["id"], "with", reply["id"], flush=True)
            answered += 1
            if args.count is not None and answered >= args.count:
                break


if __name__ == "__main__":
    main()
