"""``/docs`` without a third-party script: FastAPI's default page loads swagger-ui from a CDN,
unpinned and without integrity, on the page where the API key is typed (and breaks offline).
Neither FastAPI nor any installed package ships swagger-ui's files, so ``/docs`` is a plain HTML
list of the routes, written here from the OpenAPI schema (every text escaped, no script at all);
``/openapi.json`` is served as before for any OpenAPI tool; ReDoc (also from a CDN) is off.
"""
from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

DOCS_OFF = {"docs_url": None, "redoc_url": None}  # FastAPI's own pages: replaced by add_docs
# No script from elsewhere, ever: what a page may load, for the browser to enforce.
POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def add_docs(app) -> None:
    """``GET /docs``: the plain page of the routes, under a policy that allows no script at all."""
    @app.get("/docs", include_in_schema=False)
    async def plain():
        return HTMLResponse(plain_page(app.openapi()), headers={"Content-Security-Policy": POLICY})


def plain_page(schema: dict) -> str:
    """The routes of ``schema`` (OpenAPI) as one HTML page: method, path, summary, form fields."""
    esc = html.escape
    rows = []
    for path, ops in sorted(schema.get("paths", {}).items()):
        for method, op in ops.items():
            fields = _form_fields(schema, op)
            items = "".join(f"<li><code>{esc(n)}</code>: {esc(d)}</li>" for n, d in fields)
            rows.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2><p>{esc(op.get('summary', ''))}</p>"
                        + (f"<ul>{items}</ul>" if items else ""))
    info = schema.get("info", {})
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(info.get('title', 'API'))} API</title>"
            "</head><body>"
            f"<h1>{esc(info.get('title', 'API'))} {esc(str(info.get('version', '')))}</h1>"
            f"<p>{esc(info.get('description', ''))}</p><p>The OpenAPI schema: <a href='/openapi.json'>"
            "/openapi.json</a>. Routes under /v1/ and /metrics need the API key (header X-API-Key).</p>"
            + "".join(rows) + "</body></html>")


def _form_fields(schema: dict, op: dict) -> list[tuple[str, str]]:
    content = op.get("requestBody", {}).get("content", {})
    body = next(iter(content.values()), {}).get("schema", {})
    ref = body.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        body = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    return [(name, str(p.get("description", ""))) for name, p in body.get("properties", {}).items()]
