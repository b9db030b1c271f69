"""Run LatencyRelays in their own process, for the benchmarks.

The relays' event loop then never waits for the GIL of the client under test.
Usage: `_relay_server.py TARGET_URL --latency 0.025`; then one command per stdin
line, one answer per stdout line:

    open            start a relay to TARGET_URL; answers its URL
    count PORT      answers the connections that relay accepted so far
    close PORT      stops that relay; answers "ok"

End of input stops every relay.
"""

from __future__ import annotations

import argparse
import sys

from langchain_holysheep.simulator import LatencyRelay


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--latency", type=float, default=0.025)
    args = ap.parse_args()
    relays: dict[int, LatencyRelay] = {}
    try:
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "open":
                relay = LatencyRelay(args.target, latency=args.latency).start()
                relays[relay.port] = relay
                answer = relay.url
            elif command == "count":
                answer = str(relays[int(arg)].connections)
            elif command == "close":
                relays.pop(int(arg)).stop()
                answer = "ok"
            else:
                answer = f"error: unknown command {command!r}"
            print(answer, flush=True)
    finally:
        for relay in relays.values():
            relay.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
