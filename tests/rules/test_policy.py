"""Policy loading: the default is valid package data; bad policies are refused by key."""

from __future__ import annotations

import copy

import pytest
import yaml

from ppx.rules.policy import PolicyError, default_policy_path, load_policy, parse_policy


@pytest.fixture()
def raw():
    return yaml.safe_load(default_policy_path().read_text())


def test_default_policy_loads_from_package_data():
    p = load_policy()
    assert default_policy_path().name == "default.yaml"
    assert p.version and p.tier_names == ["bronze", "silver", "gold", "platinum"]
    assert p.tier_for_spend(650) == "gold" and p.segment("gold") == "vip"


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        (lambda r: r["apology"].update(aplogy_points=3), "apology.aplogy_points", "unknown key"),
        (lambda r: r.pop("fallbacks"), "fallbacks", "required key is missing"),
        (
            lambda r: r["apology"]["bands"][1].update(points=-5),
            "apology.bands.1.points",
            "greater than or equal to 0",
        ),
        (
            lambda r: r["surprise_tier_up"].update(min_churn_risk=1.3),
            "surprise_tier_up.min_churn_risk",
            "less than or equal to 1",
        ),
        (
            lambda r: r["messages"]["quiet_hours"].update(start="25:00"),
            "messages.quiet_hours.start",
            "HH:MM",
        ),
        (
            lambda r: r["messages"]["catalogue"]["win_back"].update(channels=["fax"]),
            "messages.catalogue.win_back.channels.0",
            "email",
        ),
        (
            lambda r: r["messages"]["catalogue"].pop("apology"),
            "messages.catalogue",
            "missing message types ['apology']",
        ),
        (lambda r: r.update(vip_tiers=["diamond"]), "vip_tiers", "unknown tier ['diamond']"),
        (
            lambda r: r["tiers"][2].update(min_spend_12m=100),
            "tiers",
            "strictly increase",
        ),
        (
            lambda r: r["messages"]["caps"].update(per_day=5),
            "messages.caps",
            "per_week (3) is smaller than per_day (5)",
        ),
        (lambda r: r["returns"]["segments"].pop("vip"), "returns.segments", "missing segments"),
    ],
)
def test_bad_policy_is_refused_naming_the_key(raw, tmp_path, mutate, key, words):
    bad = copy.deepcopy(raw)
    mutate(bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    msg = str(err.value)
    assert str(path) in msg
    assert key in msg and words in msg, msg


def test_unreadable_policies(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("version: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path / "broken.yaml")
    with pytest.raises(PolicyError, match="top level must be a mapping"):
        parse_policy(["a", "b"])


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        (lambda r: r["save_offers"].update(enabeld=True), "save_offers.enabeld", "unknown key"),
        (
            lambda r: r["save_offers"]["rules"][0].update(offer="free_coffee"),
            "save_offers.rules.0.offer",
            "'skip', 'pause', 'discount', 'swap' or 'cadence'",
        ),
        (
            lambda r: r["save_offers"]["rules"][0].update(reasons=["weather"]),
            "save_offers.rules.0.reasons.0",
            "'price'",
        ),
        (
            lambda r: r["save_offers"]["discount"].update(percent=120),
            "save_offers.discount.percent",
            "less than or equal to 90",
        ),
        (
            lambda r: r["subscriptions"].update(cadence_days=[30, 14]),
            "subscriptions.cadence_days",
            "strictly increasing",
        ),
        (
            lambda r: r["subscriptions"].update(max_pause_days=3),
            "subscriptions",
            "max_pause_days (3) is smaller than min_pause_days",
        ),
        (
            lambda r: r["returns"]["resolutions"].update(allowed=["barter"]),
            "returns.resolutions.allowed.0",
            "'exchange', 'store_credit' or 'refund'",
        ),
        (
            lambda r: r["returns"]["resolutions"].update(bonus=5),
            "returns.resolutions.bonus",
            "unknown key",
        ),
    ],
)
def test_subscription_save_offer_and_return_keys_are_checked(raw, mutate, key, words):
    bad = copy.deepcopy(raw)
    mutate(bad)
    with pytest.raises(PolicyError) as err:
        parse_policy(bad, "p.yaml")
    line = next((x for x in str(err.value).splitlines() if x.strip().startswith(key + ":")), "")
    assert line and words in line, str(err.value)


def test_policy_without_the_new_sections_still_loads(raw):
    old = copy.deepcopy(raw)
    for k in ("subscriptions", "save_offers"):
        old.pop(k)
    old["returns"].pop("resolutions")
    p = parse_policy(old)
    assert p.save_offers.enabled is False and p.returns.resolutions.allowed[-1] == "refund"
    assert load_policy("src/rules/policy/save_offers.yaml").save_offers.enabled is True


def test_a_variant_extends_its_base_and_is_checked_like_it(tmp_path):
    base = default_policy_path().read_text()
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "v.yaml").write_text(
        "extends: base.yaml\nname: v\napology:\n  max_points: 999\n"
        "subscriptions:\n  cadence_days: [30, 60]\n"
    )
    v = load_policy(tmp_path / "v.yaml")
    d = load_policy(tmp_path / "base.yaml")
    assert v.name == "v" and v.apology.max_points == 999
    assert v.apology.bands == d.apology.bands  # mappings merge key by key
    assert v.subscriptions.cadence_days == [30, 60]  # lists replace
    (tmp_path / "bad.yaml").write_text("extends: base.yaml\napology:\n  aplogy: 3\n")
    with pytest.raises(PolicyError, match="apology.aplogy: unknown key") as err:
        load_policy(tmp_path / "bad.yaml")
    assert "bad.yaml" in str(err.value)
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(PolicyError, match="extends itself"):
        load_policy(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(PolicyError, match="extends: nowhere.yaml not found at") as err:
        load_policy(tmp_path / "c.yaml")
    assert "c.yaml" in str(err.value)  # the file that names the missing base
    assert "relative to the policy's own folder" in str(err.value)
    assert str(default_policy_path()) in str(err.value)
