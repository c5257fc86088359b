"""``lookout``: the service command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading

from services.embedded.stack import SERVICES, LocalStack


def _stack(args: argparse.Namespace) -> int:
    """Run the embedded services until Ctrl-C, printing how to reach them."""
    services = args.services.split(",") if args.services else list(SERVICES)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalStack(services) as stack:
        print("embedded stack running (Ctrl-C to stop); point clients at it with:")
        for key, value in stack.environment().items():
            print(f"export {key}={value}")
        print(f"state and logs: {stack.state_dir}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    print("stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="lookout", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    stack = sub.add_parser("stack", help="run the embedded Redis / Kafka-protocol broker / STAC API")
    stack.add_argument(
        "--services", default="", help=f"comma-separated subset of {','.join(SERVICES)} (default: all)"
    )
    stack.set_defaults(func=_stack)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lookout`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
