"""The small HTML pages behind a note's feedback links: confirm, thank-you/error, and the
refusal of a form the request guard would not accept.

No script, no external resources, every dynamic string escaped. The security headers keep the
token (which is in the URL) out of Referer headers and caches, and the page out of frames
and search engines.
"""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse, JSONResponse, Response

from pipeline.note.feedback_links import ANSWER_LABELS, LinkClaims

COMMENT_MAX_CHARS = 2000
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}
_STYLE = """body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;
color:#222}h1{font-size:1.3rem}.answer{font-size:1.6rem;margin:1rem 0}textarea{width:100%;
min-height:6rem}button{font-size:1.1rem;padding:.5rem 1.5rem;margin-top:1rem}
.muted{color:#666;font-size:.9rem}"""


def _page(title: str, body: str, status: int) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def answer_text(claims: LinkClaims) -> str:
    label = ANSWER_LABELS[claims.answer]
    return f"Rating {label}" if claims.rating_value is not None else label


def confirm_page(claims: LinkClaims, ticket_id: str, previous: str | None) -> HTMLResponse:
    note = ""
    if previous:
        note = (
            f'<p class="muted">Already recorded for this note: '
            f"{html.escape(previous)}. Confirming replaces it.</p>"
        )
    body = (
        f"<h1>Feedback on the AI-Agents note for ticket #{html.escape(ticket_id)}</h1>"
        f'<p>Your answer:</p><p class="answer" id="answer">'
        f"{html.escape(answer_text(claims))}</p>{note}"
        f'<form method="post"><label for="comment">Comment (optional)</label>'
        f'<textarea id="comment" name="comment" maxlength="{COMMENT_MAX_CHARS}">'
        f'</textarea><button type="submit" id="confirm">Confirm</button></form>'
        f'<p class="muted">Nothing is recorded until you confirm.</p>'
    )
    return _page("Confirm your feedback", body, 200)


def thanks_page(claims: LinkClaims, ticket_id: str, updated: bool) -> HTMLResponse:
    what = "updated" if updated else "recorded"
    body = (
        f'<h1 id="thanks">Thank you — your feedback is {what}.</h1>'
        f"<p>Ticket #{html.escape(ticket_id)}: {html.escape(answer_text(claims))}</p>"
        f'<p class="muted">You can close this page.</p>'
    )
    return _page("Feedback recorded", body, 200)


def error_page(
    status: int, message: str, *, wants_json: bool, headers: dict[str, str] | None = None
) -> Response:
    """A clear 4xx for a person (HTML) or a program (JSON ``{"detail": ...}``)."""
    extra = {**HEADERS, **(headers or {})}
    if wants_json:
        return JSONResponse({"detail": message}, status_code=status, headers=extra)
    body = (
        f'<h1 id="error">This feedback link cannot be used</h1>'
        f'<p id="reason">{html.escape(message)}</p>'
        f'<p class="muted">Nothing was recorded.</p>'
    )
    response = _page("Feedback link problem", body, status)
    response.headers.update(headers or {})
    return response


def refused_form_page(status: int, message: str) -> HTMLResponse:
    """What a browser gets when the request guard refuses its form (a NUL in the comment):
    the same kind of page as the feedback link's own errors, not a JSON body."""
    body = (
        f'<h1 id="error">This form cannot be accepted</h1>'
        f'<p id="reason">{html.escape(message)}</p>'
        f'<p class="muted">Nothing was recorded.</p>'
    )
    return _page("Form refused", body, status)
