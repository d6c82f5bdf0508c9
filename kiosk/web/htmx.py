"""htmx helpers: render a page's named block for htmx requests and the whole page otherwise.

A block name matches the id of the element it fills (`{% block console %}` <-> `#console`), so a
view answers an htmx request with just that part and a plain request (no JavaScript, a boosted
link, a history restore) with the full page, from one template.
"""
from __future__ import annotations

from flask import Response, current_app, make_response, render_template, request
from flask import redirect as flask_redirect


def is_htmx() -> bool:
    """True for an htmx request that expects a fragment (not boosted, not a history restore)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-Boosted") != "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def render_block(template_name: str, block: str, **context) -> str:
    """Render one named block of a template with the full template context (filters, globals)."""
    env = current_app.jinja_env
    template = env.get_or_select_template(template_name)
    if block not in template.blocks:
        raise KeyError(f"template {template_name} has no block {block!r}")
    current_app.update_template_context(context)
    ctx = template.new_context(context)
    return env.concat(template.blocks[block](ctx))  # type: ignore[attr-defined]


def render(template_name: str, block: str, *, status: int = 200, **context) -> Response:
    """The block for htmx requests, the full page otherwise; always `Vary: HX-Request`."""
    if is_htmx():
        body = render_block(template_name, block, **context)
    else:
        body = render_template(template_name, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def redirect(location: str) -> Response:
    """A full-page redirect that htmx follows too (HX-Redirect), e.g. after a language change,
    because htmx swaps only inside <body> and would leave <html lang dir> of the old language."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
    else:
        response = flask_redirect(location, 303)
    response.vary.add("HX-Request")
    return response
