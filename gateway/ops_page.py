"""The operators' live exposure page: `GET /ops` and its assets under `/static/ops/`.

The page (gateway/static/ops.html, ops.js, ops.css: plain HTML, JS and CSS, no build step, no
third-party code) is just another client of the trading WebSocket: the operator's JWT is typed
in or passed as `/ops#token=...` (a URL fragment never reaches any server), the page sends
`auth`, subscribes to the `exposure` channel and redraws each push in place; a trader-role
token also gets the trader ops (market.status, prices.set, limits.set, market.settle,
market.void) over the same socket. The server only serves files: it holds no session and
never sees the token on this route.

The one thing the page cannot know by itself is the WebSocket's port: it is rendered into the
page on every request from `exchange.ws_port` (the bound port, which differs from the setting
when that is 0) or else `settings.ws_port`. The browser connects to the host it loaded the page
from, so the WebSocket's `allowed_origins` must include this page's origin.
"""

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
ASSETS = {"ops.js": "text/javascript", "ops.css": "text/css"}
WS_PORT_SLOT = "{{ws_port}}"

# The page runs only its own script and styles and talks only to the WebSocket.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self' ws: wss:; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


# These routes' part of the OpenAPI description (gateway/openapi.py merges it into PATHS).
OPENAPI_PATHS = {
    "/ops": {"get": {
        "summary": "the operators' live exposure page: a WebSocket client of the exposure "
                   "channel, with trader controls for trader tokens (token in #token=...)",
        "operationId": "opsPage", "tags": ["operator"],
        "responses": {"200": {"description": "the page",
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }},
    "/static/ops/{name}": {"get": {
        "summary": "the page's script and stylesheet",
        "operationId": "opsAsset", "tags": ["operator"],
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"enum": sorted(ASSETS)}}],
        "responses": {
            "200": {"description": "the asset",
                    "content": {kind: {"schema": {"type": "string"}}
                                for kind in sorted(set(ASSETS.values()))}},
            "404": {"description": "NOT_FOUND: no such asset", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }},
}


def ws_port(exchange) -> int:
    bound = getattr(exchange, "ws_port", None)
    return bound if isinstance(bound, int) and bound > 0 else exchange.settings.ws_port


def render_page(exchange) -> str:
    return (STATIC_DIR / "ops.html").read_text().replace(WS_PORT_SLOT, str(ws_port(exchange)))


def add_ops_routes(app: web.Application, exchange) -> None:
    """GET /ops (the page) and GET /static/ops/{name} (its script and stylesheet)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=render_page(exchange), content_type="text/html",
                            charset="utf-8",
                            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content_type = ASSETS.get(name)
        if content_type is None:
            raise web.HTTPNotFound(reason=f"no asset {name!r}")
        return web.Response(body=(STATIC_DIR / name).read_bytes(), content_type=content_type,
                            charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "no-cache"})

    app.router.add_get("/ops", page)
    app.router.add_get("/static/ops/{name}", asset)
