"""Customers: fake contact data, fraud types and rings, households, referrals, traits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.world.calendar import Calendar, days_to_ts
from ppx.data.world.geography import REGION_WEIGHTS
from ppx.data.world.params import WorldParams

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Gia",
    "Hugo",
    "Ines",
    "Jon",
    "Kai",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Vik",
    "Wen",
    "Xavi",
    "Yara",
    "Zoe",
]
LAST_NAMES = [
    "Smith",
    "Garcia",
    "Chen",
    "Okafor",
    "Novak",
    "Rossi",
    "Silva",
    "Kim",
    "Patel",
    "Murphy",
    "Berg",
    "Dubois",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Olsen",
    "Quinn",
]
STREETS = [
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Lake",
    "Hill",
    "Park",
    "River",
    "Mill",
    "Church",
]
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


def _fake_contacts(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    first = rng.choice(FIRST_NAMES, n)
    last = rng.choice(LAST_NAMES, n)
    num = rng.integers(1, 9999, n)
    dom = rng.choice(EMAIL_DOMAINS, n)
    names = np.char.add(np.char.add(first, " "), last)
    emails = np.array(
        [
            f"{f.lower()}.{l_.lower()}{k}@{d}"
            for f, l_, k, d in zip(first, last, num, dom, strict=True)
        ]
    )
    area = rng.integers(200, 999, n)
    line = rng.integers(1000, 9999, n)
    # E.164, the form stores hold (the SMS gateway takes no other); fictional: area 555
    phones = np.array([f"+1555{a:03d}{b:04d}" for a, b in zip(area, line, strict=True)])
    house = rng.integers(1, 999, n)
    street = rng.choice(STREETS, n)
    addresses = np.array([f"{h} {s} St" for h, s in zip(house, street, strict=True)])
    devices = np.array([f"dev-{x:012x}" for x in rng.integers(0, 2**47, n)])
    payments = np.array([f"pm_{x:014x}" for x in rng.integers(0, 2**55, n)])
    # Object arrays: fixed-width numpy strings would silently truncate the longer,
    # messily re-typed variants written into them for ring members.
    return {
        C.NAME: names.astype(object),
        C.EMAIL: emails.astype(object),
        C.PHONE: phones.astype(object),
        C.ADDRESS: addresses.astype(object),
        C.DEVICE_ID: devices.astype(object),
        C.PAYMENT_FINGERPRINT: payments.astype(object),
    }


def _messy_variant(rng: np.random.Generator, value: str, kind: str) -> str:
    """How a fraudster re-types a shared identifier on a new account."""
    if kind == C.EMAIL:
        user, dom = value.split("@")
        return f"{user.replace('.', '').upper()}+{rng.integers(1, 99)}@{dom.upper()}"
    if kind == C.PHONE:
        digits = "".join(ch for ch in value if ch.isdigit())
        return f"({digits[1:4]}) {digits[4:7]} {digits[7:]}"
    if kind == C.ADDRESS:
        return value.upper().replace(" ST", " STREET")
    return value


def make_customers(
    rng: np.random.Generator, p: WorldParams, cal: Calendar
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers with fake contact data, plus their latent traits (ground truth)."""
    n = p.n_customers
    ids = np.arange(1, n + 1, dtype=np.int64)
    horizon = cal.month_starts[-1]
    # Signups: some before the start (existing base), the rest spread over the horizon.
    signup = rng.uniform(-cal.lead_days, horizon - 20, n)
    contacts = _fake_contacts(rng, n)
    region = rng.choice(C.REGIONS, n, p=REGION_WEIGHTS)
    # Fraud types.
    u = rng.random(n)
    ftype = np.full(n, "none", dtype=object)
    lo = 0.0
    for name, share in p.fraud_shares.items():
        ftype[(u >= lo) & (u < lo + share)] = name
        lo += share
    ring_id = np.full(n, -1, dtype=np.int64)
    ring_members = np.flatnonzero(ftype == "ring")
    rng.shuffle(ring_members)
    k, pos = 0, 0
    while pos < len(ring_members):
        size = int(rng.integers(*p.ring_size))
        members = ring_members[pos : pos + size]
        ring_id[members] = k
        # The ring shares identifiers: every member reuses at least one of the ring's
        # device, payment fingerprint, address or (messily re-typed) email and phone.
        leader = members[0]
        for mbr in members[1:]:
            shared = rng.random(5) < (0.7, 0.5, 0.45, 0.25, 0.25)
            if not shared.any():
                shared[rng.integers(0, 3)] = True
            if shared[0]:
                contacts[C.DEVICE_ID][mbr] = contacts[C.DEVICE_ID][leader]
            if shared[1]:
                contacts[C.PAYMENT_FINGERPRINT][mbr] = contacts[C.PAYMENT_FINGERPRINT][leader]
            if shared[2]:
                contacts[C.ADDRESS][mbr] = _messy_variant(
                    rng, contacts[C.ADDRESS][leader], C.ADDRESS
                )
                region[mbr] = region[leader]
            if shared[3]:
                contacts[C.EMAIL][mbr] = _messy_variant(rng, contacts[C.EMAIL][leader], C.EMAIL)
            if shared[4]:
                contacts[C.PHONE][mbr] = _messy_variant(rng, contacts[C.PHONE][leader], C.PHONE)
        # Ring accounts are opened in bursts after the leader's.
        signup[members[1:]] = np.clip(
            signup[leader] + rng.uniform(5, 200, len(members) - 1), -cal.lead_days, horizon - 20
        )
        k += 1
        pos += size
    # Honest households: two honest accounts sharing an address or a device.
    honest = np.flatnonzero(ftype == "none")
    n_pairs = int(p.household_share * n / 2)
    pairs = rng.choice(honest, size=(n_pairs, 2), replace=False)
    for a, b in pairs:
        if rng.random() < 0.6:
            contacts[C.ADDRESS][b] = contacts[C.ADDRESS][a]
            region[b] = region[a]
        else:
            contacts[C.DEVICE_ID][b] = contacts[C.DEVICE_ID][a]
    # Referrals: a minority were referred by an earlier customer.
    referred = rng.random(n) < 0.08
    order = np.argsort(signup)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    referrer = np.where(
        referred & (rank > 10), ids[order[(rng.random(n) * np.maximum(rank, 1)).astype(int)]], 0
    )
    referrer = np.where(referrer == ids, 0, referrer)
    birth = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 365 * 55, n), unit="D")
    engagement = rng.beta(2, 3, n)
    t0 = cal.t0
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: ids,
            C.SIGNUP_AT: days_to_ts(t0, signup),
            **{k_: v for k_, v in contacts.items()},
            C.REGION: region,
            C.BIRTH_DATE: birth.normalize(),
            C.EMAIL_OPT_IN: rng.random(n) < 0.8,
            C.SMS_OPT_IN: rng.random(n) < 0.35,
            C.PUSH_OPT_IN: rng.random(n) < 0.45,
            C.REFERRED_BY: pd.array(np.where(referrer > 0, referrer, pd.NA), dtype="Int64"),
        }
    )
    truth = pd.DataFrame(
        {
            C.CUSTOMER_ID: ids,
            C.FRAUD_TYPE: ftype.astype(str),
            C.RING_ID: ring_id,
            C.ENGAGEMENT: engagement,
            C.FRAILTY: rng.normal(0, p.frailty_sd, n),
            "activity": rng.gamma(2.0, 0.5, n),
            "_signup_days": signup,
        }
    )
    return customers, truth
