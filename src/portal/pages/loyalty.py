"""The loyalty panel: balance, points to the next reward, tier, rewards, vouchers, referral.

Every figure comes from the loyalty programme (:mod:`ppx.rules.loyalty`): the balance,
next reward and tier from :func:`~ppx.rules.loyalty.summary.loyalty_summary` (the same
call the messages and the ``/loyalty`` API make, so the page and an email never
disagree), affordability from :func:`~ppx.rules.loyalty.catalogue.catalogue_entry`, and a
redemption is :func:`~ppx.rules.loyalty.redemption.redeem_reward` with the form's nonce as
its idempotency key (one form, one voucher). The referral code is created on the first
view and is the same ever after.

The clock is the store's (:attr:`ppx.portal.services.Portal.now`), as on every page.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ppx.data import columns as C
from ppx.portal.account import form_key, reader, require_account, text
from ppx.portal.web import PageContext, page
from ppx.rules.ledger import LedgerError
from ppx.rules.loyalty import redemption, referrals
from ppx.rules.loyalty.catalogue import catalogue_entry, eligible
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.summary import loyalty_summary

#: Ledger entries shown under the balance.
HISTORY = 5


def _tier_view(ctx: PageContext, tier_name: str, spend_12m: float, review_on) -> dict:
    """The tier, its benefits, what keeps it at the review and what reaches the next one."""
    policy = ctx.portal.policy
    names = policy.tier_names
    current = policy.tier(tier_name) if tier_name in names else policy.tiers[0]
    rank = names.index(current.name)
    nxt = policy.tiers[rank + 1] if rank + 1 < len(policy.tiers) else None
    return {
        "name": current.name,
        "label": _tier_label(ctx, current.name),
        "benefits": current.benefits,
        "multiplier": current.points_multiplier,
        "keep_spend": current.retention_spend if rank > 0 else None,
        "review_on": review_on,
        "spend_12m": spend_12m,
        "next": None
        if nxt is None
        else {
            "label": _tier_label(ctx, nxt.name),
            "min_spend": nxt.min_spend_12m,
            "missing": max(0.0, nxt.min_spend_12m - spend_12m),
        },
    }


def _tier_label(ctx: PageContext, name: str) -> str:
    return text(ctx, f"loyalty.tiers.{name}", name.replace("_", " ").title())


def _entry_label(ctx: PageContext, entry_type: str) -> str:
    """A ledger entry's kind: the tracking page's words first, then this page's."""
    fallback = entry_type.replace("_", " ")
    return text(ctx, f"ledger.{entry_type}", text(ctx, f"loyalty.entry.{entry_type}", fallback))


def _reward_text(ctx: PageContext, entry: dict) -> str:
    """What a reward gives, in the shopper's language (the policy's name is the fallback)."""
    t = ctx.words
    kind = entry["kind"]
    if kind == "discount":
        return t.tr("loyalty.reward.discount", amount=t.money(entry["amount"]))
    if kind == "percent_discount":
        return t.tr("loyalty.reward.percent", percent=t.number(entry["amount"]))
    if kind == "free_shipping":
        return t.tr("loyalty.reward.free_shipping")
    products = ctx.portal.store.products
    pid = entry.get("product_id")
    if pid is not None and pid in products.index:
        return t.tr("loyalty.reward.product", product=str(products.loc[pid, C.NAME]))
    return str(entry["name"])


def _load(ctx: PageContext) -> dict:
    """Everything the page shows, read in one worker thread (several database reads)."""
    portal = ctx.portal
    ledger, policy, cid = portal.engine.ledger, portal.policy, ctx.customer_id
    ensure_tables(ledger)  # created through the ledger, once; then read without its lock
    reads = reader(ledger)
    s = loyalty_summary(reads, policy, cid, now=portal.now)
    spend = float(portal.store.customer_facts(cid)["spend_12m"])
    rewards = sorted(policy.rewards, key=lambda r: (r.points, r.id))
    entries = [catalogue_entry(policy, r, s.balance, s.tier) for r in rewards]
    return {
        "summary": s,
        "tier": _tier_view(ctx, s.tier, spend, s.tier_review_on),
        "rewards": entries,
        "vouchers": redemption.redemptions_of(reads, cid, limit=20),
        "history": reads.history(cid, HISTORY),
        # Read without the write lock; written (through the ledger) on the first view only.
        "referral": referrals.existing_referral_code(reads, policy, cid)
        or referrals.referral_code(ledger, policy, cid),
        "referred": len(referrals.referrals_of(reads, policy, cid)["referrals"]),
    }


def _render(ctx: PageContext, status: int = 200, error: str | None = None) -> Response:
    data = _load(ctx)
    names = {r.id: r for r in ctx.portal.policy.rewards}
    raw = ctx.request.query_params.get("redeemed", "")
    redeemed = next((v for v in data["vouchers"] if str(v["redemption_id"]) == raw), None)
    s = data["summary"]
    return ctx.render(
        "loyalty.html.j2",
        status=status,
        error=error,
        redeemed=redeemed,
        reward_text=lambda e: _reward_text(ctx, e),
        voucher_text=lambda v: (
            _reward_text(ctx, catalogue_entry(ctx.portal.policy, names[v["reward_id"]], None, None))
            if v["reward_id"] in names
            else v["reward_id"]
        ),
        next_reward_text=_reward_text(
            ctx, catalogue_entry(ctx.portal.policy, names[s.next_reward_id], None, None)
        )
        if s.next_reward_id in names
        else None,
        tier_label=lambda n: _tier_label(ctx, n),
        entry_label=lambda e: _entry_label(ctx, e),
        voucher_status=lambda st: text(ctx, f"loyalty.voucher_status.{st}", st),
        policy_referrer=ctx.portal.policy.referral.referrer_points,
        policy_referee=ctx.portal.policy.referral.referee_points,
        **data,
    )


async def loyalty(ctx: PageContext) -> Response:
    require_account(ctx)
    return await run_in_threadpool(_render, ctx)


def _refusal(ctx: PageContext, reward_id: str) -> tuple[int, str]:
    """Why a redemption was refused, in the shopper's words (read from the same rules)."""
    portal, t = ctx.portal, ctx.words
    try:
        reward = portal.policy.reward(reward_id)
    except ValueError:
        return 400, t.tr("loyalty.errors.unknown")
    s = loyalty_summary(
        reader(portal.engine.ledger), portal.policy, ctx.customer_id, now=portal.now
    )
    if not eligible(portal.policy, reward, s.tier):
        return 409, t.tr("loyalty.errors.tier", tier=_tier_label(ctx, reward.min_tier or ""))
    if s.balance < reward.points:
        return 409, t.trn("loyalty.errors.balance", s.balance, cost=t.number(reward.points))
    return 409, t.tr("loyalty.errors.refused")


async def redeem(ctx: PageContext) -> Response:
    """POST ``/loyalty/redeem``: spend points on a reward; the voucher is shown on the page."""
    require_account(ctx)
    reward_id = (ctx.form.get("reward_id") or "").strip() if ctx.form is not None else ""
    if not isinstance(reward_id, str) or not reward_id:
        return await run_in_threadpool(_render, ctx, 400, ctx.words.tr("loyalty.errors.unknown"))
    portal = ctx.portal
    key = form_key(ctx)

    def go():
        return redemption.redeem_reward(
            portal.engine.ledger,
            portal.policy,
            ctx.customer_id,
            reward_id,
            key,
            at=portal.now,
        )

    try:
        result = await run_in_threadpool(go)
    except LedgerError:
        status, message = await run_in_threadpool(_refusal, ctx, reward_id)
        return await run_in_threadpool(_render, ctx, status, message)
    return ctx.redirect("loyalty", _query=f"redeemed={result.redemption_id}")


ROUTES = [
    page("/loyalty", loyalty, name="loyalty"),
    page("/loyalty/redeem", redeem, name="loyalty_redeem", methods=["POST"]),
]
NAV = [("loyalty.nav", "loyalty")]
