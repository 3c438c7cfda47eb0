"""Message preferences: every message kind on every channel, and unsubscribe.

Reads and writes through the decision service's preference centre
(:class:`ppx.rules.messages.preferences.PreferenceStore`), which every decision reads
before it plans a message, so a stage turned off here sends nothing. The form posts the
whole grid: a channel switch (``ch:<channel>``) and one box per kind and channel
(``k:<kind>:<channel>``); an unticked box is "off". Kinds the policy locks (an order
confirmation, a refund notice) are shown ticked and disabled and are never sent, so the
store's own check (a locked kind cannot be turned off) is never tripped by the page.
"Unsubscribe from offers" is the store's one-click unsubscribe for each channel: every
marketing kind off, service and delivery notices kept.

Kinds are grouped the way a shopper thinks of them: the delivery stages first
(the tracking page's notifications), then account news, then offers.
"""

from __future__ import annotations

import weakref
from datetime import UTC

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ppx.portal.account import reader, require_account
from ppx.portal.web import PageContext, page
from ppx.rules.messages.preferences import PreferenceError, PreferenceStore
from ppx.rules.messages.render import RenderError, _Words
from ppx.rules.messages.unsubscribe import Scope
from ppx.rules.policy import CHANNELS

#: Policy message categories in the page's order, with their catalogue heading key.
GROUPS = (
    ("transactional", "preferences.groups.transactional"),
    ("service", "preferences.groups.service"),
    ("marketing", "preferences.groups.marketing"),
)
DONE = ("saved", "unsubscribed")


def _store(ctx: PageContext) -> PreferenceStore:
    store = ctx.portal.engine.preferences
    if store is None:  # an engine built without one (tests, tools): the same tables
        store = PreferenceStore(ctx.portal.engine.ledger.engine, ctx.portal.policy)
        ctx.portal.engine.preferences = store
    return store


def _reads(ctx: PageContext) -> PreferenceStore:
    """The preference tables read without the ledger's write lock (see ``reader``)."""
    got = _READS.get(ctx.portal)
    if got is None:
        _store(ctx)  # the tables exist once the engine's store was built
        got = PreferenceStore(reader(ctx.portal.engine.ledger).engine, ctx.portal.policy, False)
        _READS[ctx.portal] = got
    return got


_READS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _message_words(ctx: PageContext) -> _Words:
    """The messages' own catalogue: kinds and channels are named once, for emails and page."""
    return _Words(ctx.lang, UTC, ctx.portal.policy.currency)


def _label(words: _Words, key: str, fallback: str) -> str:
    try:
        return words.tr(key)
    except RenderError:  # a kind a brand added without words for it
        return fallback


def _grid(ctx: PageContext, prefs: dict) -> list[dict]:
    words = _message_words(ctx)
    groups = []
    for category, heading in GROUPS:
        rows = [
            {
                "kind": kind,
                "label": _label(words, f"preferences.kinds.{kind}", kind.replace("_", " ")),
                "locked": v["locked"],
                "channels": {c: v["channels"].get(c) for c in CHANNELS},
            }
            for kind, v in prefs["kinds"].items()
            if v["category"] == category
        ]
        if rows:
            groups.append({"category": category, "heading": heading, "rows": rows})
    return groups


def _render(ctx: PageContext, status: int = 200, error: str | None = None) -> Response:
    prefs = _reads(ctx).get(ctx.customer_id)
    done = ctx.request.query_params.get("done")
    words = _message_words(ctx)
    return ctx.render(
        "preferences.html.j2",
        status=status,
        error=error,
        done=done if done in DONE else None,
        channels=[(c, _label(words, f"preferences.channels.{c}", c)) for c in CHANNELS],
        channel_on=prefs["channels"],
        groups=_grid(ctx, prefs),
    )


async def preferences(ctx: PageContext) -> Response:
    require_account(ctx)
    return await run_in_threadpool(_render, ctx)


def _update(ctx: PageContext) -> dict:
    """The preference centre's update from the posted grid (unticked boxes are off)."""
    form = ctx.form
    assert form is not None
    policy = ctx.portal.policy
    ticked = set(form.keys())
    unknown = sorted(k for k in ticked if k.startswith(("k:", "ch:")) and not _known(k, policy))
    if unknown:
        raise PreferenceError(f"unknown fields {unknown}")
    channels = {c: f"ch:{c}" in ticked for c in CHANNELS}
    kinds = {
        kind: {c: f"k:{kind}:{c}" in ticked for c in spec.channels}
        for kind, spec in policy.messages.catalogue.items()
        if kind not in policy.preferences.locked
    }
    return {"channels": channels, "kinds": kinds}


def _known(field: str, policy) -> bool:
    parts = field.split(":")
    if parts[0] == "ch":
        return len(parts) == 2 and parts[1] in CHANNELS
    if len(parts) != 3:
        return False
    spec = policy.messages.catalogue.get(parts[1])
    return spec is not None and parts[2] in spec.channels


async def save(ctx: PageContext) -> Response:
    """POST ``/preferences``: the whole grid at once (validated before anything is written)."""
    require_account(ctx)
    try:
        update = _update(ctx)
        await run_in_threadpool(_store(ctx).put, ctx.customer_id, update, "portal")
    except PreferenceError:
        return await run_in_threadpool(
            _render, ctx, 400, ctx.words.tr("preferences.errors.invalid")
        )
    return ctx.redirect("preferences", _query="done=saved")


async def unsubscribe(ctx: PageContext) -> Response:
    """POST ``/preferences/unsubscribe``: every marketing kind off on every channel."""
    require_account(ctx)
    store = _store(ctx)

    def go() -> None:
        for channel in CHANNELS:
            store.unsubscribe(Scope(ctx.customer_id, "*", channel))

    await run_in_threadpool(go)
    return ctx.redirect("preferences", _query="done=unsubscribed")


ROUTES = [
    page("/preferences", preferences, name="preferences"),
    page("/preferences/save", save, name="preferences_save", methods=["POST"]),
    page("/preferences/unsubscribe", unsubscribe, name="preferences_unsubscribe", methods=["POST"]),
]
NAV = [("preferences.nav", "preferences")]
