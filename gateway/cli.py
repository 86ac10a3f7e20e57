"""`backlay` command line: serve, token, replay, simulate, demo."""

import argparse
import logging
import sys


def _serve(args) -> int:
    import uvloop

    from .auth import make_token
    from .seed import DEMO_USERS, seed_demo
    from .server import Server
    from .settings import Settings

    overrides = {k: v for k, v in (("host", args.host), ("ws_port", args.ws_port),
                                   ("http_port", args.http_port), ("var_dir", args.var_dir))
                 if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def main() -> int:
        server = Server(settings)
        print("backlay serve: settings\n" + settings.describe(), flush=True)
        await server.start()
        if args.demo:
            await seed_demo(server.exchange, settings.currency)
        host = settings.host
        print(f"\nBacklay is up.\n  WebSocket  ws://{host}:{server.ws_port}/ws\n"
              f"  HTTP       http://{host}:{server.http_port}/  (/health /ready /metrics /ops "
              f"/openapi.json)", flush=True)
        if args.demo:
            print("\nDevelopment tokens (send {\"op\":\"auth\",\"id\":1,\"token\":...} first):")
            for user, roles in [(DEMO_USERS[0], ["bettor"]), (DEMO_USERS[1], ["bettor"]),
                                ("trader1", ["trader"]), ("ops1", ["operator"]),
                                ("admin1", ["admin"])]:
                print(f"  {user:<8} {','.join(roles):<9} "
                      f"{make_token(settings.jwt_secret, user, roles)}")
            ops_token = make_token(settings.jwt_secret, "ops1", ["operator", "trader"])
            print("\nDemo markets: demo-m1 (Match Odds), demo-m2 (Over/Under 2.5); "
                  "u1..u3 hold 10000.00 BDT each.")
            print(f"Live exposure page: http://{host}:{server.http_port}/ops#token={ops_token}",
                  flush=True)
        return await server.serve_forever()

    return uvloop.run(main())


def _token(args) -> int:
    from .auth import make_token
    from .settings import Settings

    print(make_token(Settings().jwt_secret, args.user, args.role, ttl_s=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backlay", description="Backlay betting exchange")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the exchange (embedded Redis/Postgres by default)")
    serve.add_argument("--host")
    serve.add_argument("--ws-port", type=int)
    serve.add_argument("--http-port", type=int)
    serve.add_argument("--var-dir")
    serve.add_argument("--demo", action="store_true",
                       help="seed demo markets and users and print tokens")
    token = sub.add_parser("token", help="print a development JWT")
    token.add_argument("--user", required=True)
    token.add_argument("--role", action="append", required=True,
                       choices=["bettor", "trader", "operator", "admin"])
    token.add_argument("--ttl", type=int, default=86_400)
    sub.add_parser("replay", help="rebuild state from the journal and print entries/s",
                   add_help=False)
    sub.add_parser("simulate", help="seeded bots under Locust for a bounded time, then audit "
                                    "the books", add_help=False)
    sub.add_parser("demo", help="drive the engine in-process through a short session")
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        return _token(args)
    if args.command == "replay":
        from persistence.replay_tool import main as replay_main

        return replay_main(rest)
    if args.command == "simulate":
        from loadtests.run import main as simulate_main

        return simulate_main(rest)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(sys.stdout)
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
