"""The page at `/`: type texts, see the answers (score bars, or entities highlighted inline), read the model card.

Three static files, served from the package (no build step, nothing fetched from elsewhere; static/LICENSE.txt).
They are public: the page itself holds no model data, and asks for the bearer token when the API answers 401. A
Content-Security-Policy lets the page load only its own script and style and talk only to this server."""

from __future__ import annotations

from functools import cache
from importlib import resources

from baton.serving.http.app import Request, Response, Route

__all__ = ["ROUTES"]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {"index.html": "text/html; charset=utf-8", "page.js": "text/javascript", "page.css": "text/css"}


@cache
def _asset(name: str) -> bytes:
    return resources.files("baton.serving.http").joinpath("static", name).read_bytes()


def _serve(name: str) -> Route:
    async def handler(request: Request) -> Response:
        headers = [("content-security-policy", _CSP), ("cache-control", "no-cache")]
        return Response(200, _asset(name), _TYPES[name], headers)

    path = "/" if name == "index.html" else f"/{name}"
    return Route("GET", path, f"page:{name}", handler, public=True, summary=f"The page ({name}).")


ROUTES = [_serve(name) for name in _TYPES]
