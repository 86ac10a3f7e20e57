"""Writes the generated parts of docs/protocol.md from the code, so they cannot drift.

    .venv/bin/python docs/gen_protocol.py          # rewrite the generated blocks in place
    .venv/bin/python docs/gen_protocol.py --check  # exit 1 if any block is out of date

A generated block sits between `<!-- generated:NAME -->` and `<!-- /generated -->`; everything
outside those markers is written by hand. Blocks:

- `fields:<op>`: the request fields of one op, from its pydantic model (gateway/protocol.py);
- `fields:SlipLeg`, `fields:SelectionSpec`: the nested request objects;
- `settings`: the bounds and push timings with their defaults (gateway/settings.py);
- `constants`: bounds that are constants in the code rather than settings.

tests/test_docs_protocol.py fails when `render(doc) != doc`.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway import protocol as p  # noqa: E402
from gateway.settings import Settings  # noqa: E402

DOC = ROOT / "docs" / "protocol.md"
BLOCK = re.compile(r"(<!-- generated:(?P<name>[^ ]+) -->\n)(?P<body>.*?)(<!-- /generated -->)",
                   re.S)

NESTED = {"SlipLeg": p.SlipLeg, "SelectionSpec": p.SelectionSpec}

# (setting, what it bounds and what happens at the bound); the default comes from Settings
SETTINGS = (
    ("frame_bytes_max", "largest WebSocket frame accepted; a bigger one closes the connection "
                        "with 1009"),
    ("messages_per_s_max", "token bucket refill rate (frames per second per connection)"),
    ("message_burst_max", "token bucket size; a frame finding the bucket empty gets "
                          "`RATE_LIMITED`; more than this many refused in a row closes with 4029"),
    ("subscriptions_max", "markets one connection may subscribe to; beyond it `subscribe` is "
                          "`LIMIT_EXCEEDED`"),
    ("send_queue_max", "frames queued for one connection; past it market data is dropped (a "
                       "fresh image follows) and if a reply or owner push still does not fit "
                       "the connection is closed with 1008"),
    ("slip_legs_max", "legs in one bet slip; beyond it `slip.set` is `LIMIT_EXCEEDED` (the "
                      "request model also caps `legs` at 20: `BAD_REQUEST`)"),
    ("connections_max", "open WebSocket connections per server; the next one is closed at once "
                        "with 1013"),
    ("auth_timeout_s", "seconds the first frame (`auth`) may take; then 4001"),
    ("conflation_ms", "market data is flushed at most this often: one delta per market per "
                      "subscriber per flush"),
    ("heartbeat_s", "an `hb` push is sent after this long without any frame to the client"),
    ("exposure_push_ms", "the operator `exposure` channel is re-sent at most this often, only "
                         "when something changed"),
    ("cancel_on_disconnect_ms", "reserved; the dead-man switch currently cancels as soon as the "
                                "disconnect is noticed"),
    ("webhook_tolerance_s", "a deposit notice whose `ts` is further than this from the "
                            "server's clock is refused (`BAD_REQUEST`)"),
    ("velocity_orders_max", "orders per user per velocity window, across all connections "
                            "(engine rule, `RATE_LIMITED`; 0 = off)"),
    ("velocity_window_ms", "the rolling window of `velocity_orders_max`"),
    ("house_default_liability_minor", "house liability cap (minor units) used for quoting a "
                                      "market whose trader set no `max_liability`"),
    ("house_back_ticks", "house BACK quotes this many ticks above its LAY quotes (0: the house "
                         "only offers odds to back)"),
    ("self_limit_cooling_off_ms", "how long a bettor's raise or removal of one of their own "
                                  "limits waits before it applies (engine rule, journaled)"),
    ("currency", "the default currency: the `wallet` reply's own fields, and deposits, "
                 "withdrawals and `market.create` that name none"),
    ("currencies", "every currency wallets, deposits, withdrawals and markets may use (JSON "
                   "list, e.g. `[\"BDT\",\"USD\"]`); `currency` is always among them, first; "
                   "any other is `BAD_REQUEST`"),
    ("statement_wait_ms_max", "how long `statement` and `cleared` wait for the Postgres read "
                              "model to reach the exchange's seq; past it `READ_MODEL_BEHIND`"),
)


def _constants() -> tuple:
    from gateway import exposure, http, session, statements, views

    return (
        ("gateway.session.INFLIGHT_MAX", session.INFLIGHT_MAX,
         "requests of one connection in progress at once; reading pauses beyond it"),
        ("gateway.views.LEVELS_MAX", views.LEVELS_MAX, "deepest `subscribe` depth"),
        ("gateway.exposure.TOP_USERS_MAX", exposure.TOP_USERS_MAX,
         "`top_users` per market in the exposure view"),
        ("gateway.http.BODY_BYTES_MAX", http.BODY_BYTES_MAX,
         "largest HTTP request body; beyond it 413"),
        ("gateway.http.BOOK_DEPTH", http.BOOK_DEPTH, "book levels in `GET /admin/markets/{id}`"),
        ("gateway.statements.PAGE_MAX", statements.PAGE_MAX,
         "movements or bets per `statement` / `cleared` page (their `limit`)"),
    )


# -- describing a JSON schema in a few words -----------------------------------------------------


def _strip_null(schema: dict) -> tuple[dict, bool]:
    options = schema.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            return rest[0], True
        return {"anyOf": rest}, True
    return schema, False


def describe(schema: dict) -> str:
    """A JSON schema (as pydantic writes it for the request models) in a few words."""
    schema, nullable = _strip_null(schema)
    text = _describe(schema)
    return f"{text} or null" if nullable else text


def _describe(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return ", ".join(_describe(s) for s in schema["anyOf"][:-1]) + " or " + _describe(
            schema["anyOf"][-1])
    if "const" in schema:
        return f'`"{schema["const"]}"`'
    if "enum" in schema:
        return " \\| ".join(f'`"{v}"`' for v in schema["enum"])
    kind = schema.get("type")
    examples = schema.get("examples") or []
    if kind == "string":
        if schema.get("pattern") == p.MONEY_PATTERN:
            word = "odds" if examples == ["2.50"] else "money"
            return f"{word} string (≤ 2 decimals, e.g. `\"{examples[0]}\"`)"
        if examples == ["0.5", "1/3"]:
            return 'factor string (`"0.5"` or `"1/3"`)'
        if examples == ["0.05"]:
            return 'rate string (≤ 4 decimals, `"0.05"` = 5%)'
        if "pattern" in schema and schema.get("maxLength") == 64:
            return "id (1–64 of `A-Z a-z 0-9 _ . : -`)"
        if "pattern" in schema:
            return f"string matching `{schema['pattern']}`"
        if "maxLength" in schema:
            return f"string (≤ {schema['maxLength']} chars)"
        return "string"
    if kind == "integer":
        if "minimum" in schema or "maximum" in schema:
            return f"integer {schema.get('minimum', '')}–{schema.get('maximum', '')}"
        return "integer"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        bounds = _count(schema.get("minItems"), schema.get("maxItems"))
        return f"list of {_describe(schema['items'])}{bounds}"
    if kind == "object":
        values = next(iter(schema.get("patternProperties", {}).values()), None)
        bounds = _count(schema.get("minProperties"), schema.get("maxProperties"))
        if values is not None:
            return f"object: selection id → {_describe(values)}{bounds}"
        return "object"
    raise ValueError(f"no words for schema {schema}")


def _count(low: int | None, high: int | None) -> str:
    if low is None and high is None:
        return ""
    if low is None:
        return f" (≤ {high})"
    if high is None:
        return f" (≥ {low})"
    return f" ({low}–{high})"


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def fields_table(model) -> str:
    schema = model.model_json_schema()
    lines = ["| field | type | default |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        lines.append(f"| `{name}` | {describe(schema['properties'][name])} | "
                     f"{_default(field)} |")
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    lines = ["| setting (env `BACKLAY_<NAME>`) | default | bounds / effect |", "|---|---|---|"]
    for name, text in SETTINGS:
        default = Settings.model_fields[name].default
        if isinstance(default, list):  # as the environment variable takes it: JSON
            default = json.dumps(default, separators=(",", ":"))
        lines.append(f"| `{name}` | `{default}` | {text} |")
    return "\n".join(lines) + "\n"


def constants_table() -> str:
    lines = ["| constant | value | bounds |", "|---|---|---|"]
    for name, value, text in _constants():
        lines.append(f"| `{name}` | `{value}` | {text} |")
    return "\n".join(lines) + "\n"


def block(name: str) -> str:
    if name == "settings":
        return settings_table()
    if name == "constants":
        return constants_table()
    kind, _, target = name.partition(":")
    if kind == "fields" and target in p.BY_OP:
        return fields_table(p.BY_OP[target])
    if kind == "fields" and target in NESTED:
        return fields_table(NESTED[target])
    raise KeyError(f"unknown generated block {name!r}")


def render(text: str) -> str:
    """`text` with every generated block rewritten from the code."""
    return BLOCK.sub(lambda m: m.group(1) + block(m.group("name")) + m.group(4), text)


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    fresh = render(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{DOC} is out of date: run .venv/bin/python docs/gen_protocol.py",
                  file=sys.stderr)
            return 1
        return 0
    if fresh != text:
        DOC.write_text(fresh, encoding="utf-8")
        print(f"rewrote the generated blocks of {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
