"""The rewards catalogue: which rewards a customer may redeem, and the next one to aim for.

Pure functions over the policy (no database): the summary, the redemption check and the
catalogue endpoint all ask the same questions the same way.
"""

from __future__ import annotations

from ppx.rules.policy import Policy, Reward


def eligible(policy: Policy, reward: Reward, tier: str | None) -> bool:
    """True when a customer of ``tier`` may redeem ``reward`` (its ``min_tier`` reached)."""
    if reward.min_tier is None:
        return True
    if tier is None or tier not in policy.tier_names:
        return False
    return policy.tier_rank(tier) >= policy.tier_rank(reward.min_tier)


def rewards_for(policy: Policy, tier: str | None) -> list[Reward]:
    """The rewards a customer of ``tier`` may redeem, cheapest first."""
    return sorted(
        (r for r in policy.rewards if eligible(policy, r, tier)), key=lambda r: (r.points, r.id)
    )


def next_reward(policy: Policy, balance: int, tier: str | None) -> Reward | None:
    """The cheapest eligible reward the balance does not cover yet (None: all affordable).

    Why the cheapest unaffordable one: it is the nearest goal, the one a message can
    honestly say "only N points away" about.
    """
    for r in rewards_for(policy, tier):
        if r.points > balance:
            return r
    return None


def catalogue_entry(policy: Policy, reward: Reward, balance: int | None, tier: str | None) -> dict:
    """A reward as the API shows it, with whether this customer can redeem it now."""
    out = reward.model_dump(mode="json")
    out["value"] = _value_text(policy, reward)
    if balance is not None:
        ok = eligible(policy, reward, tier)
        out["eligible"] = ok
        out["affordable"] = ok and balance >= reward.points
        out["points_needed"] = max(0, reward.points - balance)
    return out


def _value_text(policy: Policy, r: Reward) -> str:
    if r.kind == "discount":
        return f"{r.amount:g} {policy.currency} off"
    if r.kind == "percent_discount":
        return f"{r.amount:g}% off"
    if r.kind == "free_shipping":
        return "free shipping"
    return f"product {r.product_id}"
