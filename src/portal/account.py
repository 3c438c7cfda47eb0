"""What the account pages (subscriptions, loyalty, preferences) share.

* :func:`require_account`: these pages act on the whole account, so a session opened
  from a link for one order (a shipping message's link) is refused with 403; the
  shopper asks for a link to the account instead.
* :func:`form_key`: the request key of a form's action, its single-use CSRF nonce, so
  one submitted form is one action in the rules' idempotency tables.
* :func:`text`: a catalogue look-up with a fallback, for labels of things the policy
  names (a brand may add a cancel reason the catalogue does not know).
"""

from __future__ import annotations

from ppx.portal.access import AccessDenied
from ppx.portal.csrf import FIELD
from ppx.portal.web import PageContext


def require_account(ctx: PageContext) -> None:
    """Refuse (403) a session scoped to one order: account pages need a customer link."""
    if ctx.access.order_id is not None:
        raise AccessDenied("this link is for one order; ask for a link to your account")


def form_key(ctx: PageContext) -> str:
    """``portal:<nonce>`` of the form being handled (its CSRF token was checked and spent)."""
    token = ctx.form.get(FIELD) if ctx.form is not None else None
    if not isinstance(token, str) or "." not in token:
        raise AccessDenied("this form has no token")  # the CSRF check refuses this earlier
    return "portal:" + token.split(".", 1)[0]


def text(ctx: PageContext, key: str, fallback: str, **values) -> str:
    """``ctx.words.tr(key)``, or ``fallback`` when the catalogue has no such key."""
    node = ctx.words.cat
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return fallback
        node = node[part]
    return ctx.words.tr(key, **values)
