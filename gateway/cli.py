"""`backlay` command line: the entry point of `make run` and the operational tools."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backlay", description="Backlay betting exchange")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="drive the engine in-process through a short trading session")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from gateway.demo import run_demo

        run_demo(sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
