"""`backlay` command line: serve, token, replay, simulate, demo."""

import argparse
import logging
import os
import sys


def _serve(args) -> int:
    import uvloop

    from .auth import make_token
    from .seed import DEMO_USERS, seed_demo
    from .server import Server
    from .settings import Settings

    overrides = {k: v for k, v in (("host", args.host), ("ws_port", args.ws_port),
                                   ("http_port", args.http_port), ("var_dir", args.var_dir),
                                   ("gateways", args.gateways), ("shards", args.shards))
                 if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.gateways:
        return _serve_split(settings, args.demo)
    if settings.shards != 1:
        raise SystemExit("--shards needs --gateways: one process serves one shard")

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


def _serve_split(settings, demo: bool) -> int:
    import uvloop

    from .split.supervisor import Supervisor

    async def main() -> int:
        supervisor = Supervisor(settings, settings.gateways, settings.shards, demo)
        print("backlay serve: settings\n" + settings.describe(), flush=True)
        await supervisor.start()
        print(f"\nBacklay is up: {settings.gateways} gateways in front of {settings.shards} "
              f"engine shards.", flush=True)
        for name, ws_url, http_url in supervisor.gateway_urls():
            print(f"  WebSocket  {ws_url}  ({name})\n  HTTP       {http_url}  ({name})",
                  flush=True)
        return await supervisor.serve_forever()

    return uvloop.run(main())


def _node_settings(args):
    from .settings import Settings

    overrides = {k: v for k, v in (("ws_port", getattr(args, "ws_port", None)),
                                   ("http_port", args.http_port)) if v is not None}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return Settings(**overrides)


def _engine(args) -> int:
    import uvloop

    from .split.calls import command_shard
    from .split.engine_node import EngineNode

    settings = _node_settings(args)

    async def main() -> int:
        node = EngineNode(settings, args.shard)
        await node.start()
        if args.demo:
            from .seed import seed_demo

            await seed_demo(node.exchange, settings.currency,
                            owns=lambda cmd: command_shard(node.shards, cmd) == node.shard)
        print(f"engine s{args.shard} up: pid {os.getpid()} "
              f"HTTP http://{settings.host}:{node.http_port}/", flush=True)
        return await node.serve_forever()

    return uvloop.run(main())


def _gateway(args) -> int:
    import uvloop

    from .split.gateway_node import GatewayNode

    settings = _node_settings(args)

    async def main() -> int:
        node = GatewayNode(settings, args.id)
        await node.start()
        host = settings.host
        print(f"gateway {args.id} up: pid {os.getpid()} WebSocket ws://{host}:{node.ws_port}/ws "
              f"HTTP http://{host}:{node.http_port}/", flush=True)
        return await node.serve_forever()

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
    serve.add_argument("--gateways", type=int,
                       help="the split shape: this many gateway processes in front of the engine "
                            "shards, over Redis Streams (docs/scale-out.md)")
    serve.add_argument("--shards", type=int, help="engine processes, markets hashed across them "
                                                  "(with --gateways)")
    engine = sub.add_parser("engine", help="one engine shard of the split shape (started by "
                                           "serve --gateways)")
    engine.add_argument("--shard", type=int, required=True)
    engine.add_argument("--http-port", type=int)
    engine.add_argument("--demo", action="store_true")
    gateway = sub.add_parser("gateway", help="one gateway of the split shape (started by "
                                             "serve --gateways)")
    gateway.add_argument("--id", required=True, help="g1, g2, ...")
    gateway.add_argument("--ws-port", type=int)
    gateway.add_argument("--http-port", type=int)
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
    if args.command == "engine":
        return _engine(args)
    if args.command == "gateway":
        return _gateway(args)
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
