"""A seeded, vectorised simulation of a coffee roaster's post-purchase world.

The world sells one-off and subscription products through several carriers and records
everything a brand would observe (the canonical tables of ``ppx.data.schema``). The
generator's own probabilities are written beside them as ground truth so every
benchmark can report the oracle (Bayes) score next to the model's. docs/world.md
describes each mechanism and the ``WorldParams`` field that controls it.

Time is simulated in float days since ``WorldParams.start`` and converted to timestamps
only when the tables are assembled; the loop steps one calendar month at a time and is
vectorised over customers inside a month, which keeps a million orders near a minute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ppx.data import columns as C

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class WorldParams:
    """Every knob of the simulation; defaults are the documented world (docs/world.md)."""

    n_customers: int = 20_000
    seed: int = 7
    start: str = "2024-01-01"
    months: int = 24
    # --- demand --------------------------------------------------------------------
    signup_lead_months: int = 6  # customers may have signed up this long before start
    order_rate_per_month: float = 0.36  # mean one-off orders per active customer-month
    holiday_boost: float = 0.9  # extra demand in the Nov 20 - Dec 22 peak
    weekday_demand: tuple[float, ...] = (1.15, 1.05, 1.0, 1.0, 0.95, 0.85, 1.1)  # Mon..Sun
    sequential_prob: float = 0.35  # next purchase is the previous item's planted successor
    replenish_prob: float = 0.55  # a due consumable is re-bought (if not subscribed)
    subscribe_prob: float = 0.12  # buying a subscribable item starts a subscription
    views_per_order: float = 1.2
    # --- delivery ------------------------------------------------------------------
    carrier_base_days: tuple[tuple[float, float], ...] = ((2.6, 1.2), (3.2, 1.4), (3.9, 1.9))
    carrier_sigma: tuple[float, ...] = (0.24, 0.30, 0.36)
    carrier_sla_days: tuple[tuple[int, int], ...] = ((4, 2), (5, 2), (6, 3))
    distance_effect: float = 0.22  # per log(distance / 500 km)
    weekend_effect: float = 0.18  # ordered Fri/Sat waits over the weekend
    peak_effect: float = 0.22  # Nov 20 - Dec 23 congestion
    weather_sd: float = 0.08  # weekly region shocks
    storm_prob: float = 0.03  # chance a region-week has a storm
    storm_effect: float = 0.45
    warehouse_load_sd: float = 0.10  # weekly warehouse handling load
    lane_sd: float = 0.08  # fixed carrier x destination-region effect
    lost_prob: float = 0.004
    misdelivery_prob: float = 0.02
    express_share: float = 0.15
    delay_notice_prob: float = 0.6  # late parcels that got a proactive notice
    # --- subscriptions & churn ------------------------------------------------------
    churn_base: float = -3.45  # logit of monthly hazard
    churn_late_effect: float = 0.55  # per late delivery in the last two calendar months
    churn_claim_effect: float = 0.8  # any claim in the last three calendar months
    churn_low_review_effect: float = 0.5  # a rating <= 2 in the last three months
    churn_price_effect: float = 0.45  # a price increase in the last two months
    churn_skip_effect: float = 0.35  # skipped or paused last month
    churn_redeem_effect: float = -0.6  # redeemed points in the last three months
    churn_new_effect: float = 0.45  # tenure under three months
    churn_engagement_effect: float = -0.8  # per unit of latent engagement above 0.4
    frailty_sd: float = 0.15
    skip_prob: float = 0.05
    pause_prob: float = 0.015
    price_increase_month: int = 12
    price_increase: float = 0.1
    # --- returns, claims and fraud --------------------------------------------------
    fraud_shares: dict[str, float] = field(
        default_factory=lambda: {
            "serial_returner": 0.03,
            "wardrober": 0.015,
            "ring": 0.025,
            "false_claimer": 0.01,
        }
    )
    ring_size: tuple[int, int] = (3, 9)
    household_share: float = 0.04  # honest customers sharing an address or device
    return_base: dict[str, float] = field(
        default_factory=lambda: {
            "beans": 0.035,
            "ground": 0.035,
            "tea": 0.045,
            "equipment": 0.15,
            "accessories": 0.08,
            "merch": 0.13,
        }
    )
    serial_return_mult: float = 5.0
    wardrobe_prob: float = 0.55
    ring_return_prob: float = 0.30
    false_claim_prob: float = 0.22
    ring_claim_prob: float = 0.12
    honest_claim_prob: float = 0.003
    # --- engagement -----------------------------------------------------------------
    review_prob: float = 0.12
    redeem_threshold: int = 500
    promo_prob: float = 0.35

    def to_dict(self) -> dict:
        """Plain-JSON form for the manifest and MLflow params."""
        return json_ready(dataclasses.asdict(self))


def json_ready(obj):
    """Tuples become lists so the manifest round-trips through JSON."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


# Region geometry: distances between warehouse regions and destination regions (km).
REGION_XY = {
    "north": (0.0, 900.0),
    "south": (0.0, -900.0),
    "east": (800.0, 0.0),
    "west": (-800.0, 0.0),
    "central": (0.0, 0.0),
    "islands": (1400.0, -1200.0),
}
WAREHOUSE_REGION = {"wh_north": "north", "wh_south": "south"}
REGION_WEIGHTS = (0.2, 0.2, 0.18, 0.18, 0.19, 0.05)
CARRIER_WEIGHTS = (0.4, 0.35, 0.25)
HOLIDAYS_MD = ((1, 1), (2, 14), (5, 12), (12, 24), (12, 25), (12, 26), (12, 31))

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


@dataclass
class World:
    """The observable tables, the ground truth and the manifest of one simulation."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    params: WorldParams

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name] if name in self.tables else self.truth[name]


# ----------------------------------------------------------------------------------------
# calendar
# ----------------------------------------------------------------------------------------


class Calendar:
    """Day grid of the simulation with demand weights and holiday flags."""

    def __init__(self, p: WorldParams):
        self.t0 = pd.Timestamp(p.start)
        first = self.t0 - pd.DateOffset(months=p.signup_lead_months)
        self.month_starts = np.array(
            [(self.t0 + pd.DateOffset(months=m) - self.t0).days for m in range(p.months + 1)],
            dtype=float,
        )
        self.lead_days = float((self.t0 - first).days)
        n_days = int(self.month_starts[-1]) + 60
        dates = self.t0 + pd.to_timedelta(np.arange(n_days), unit="D")
        self.dates = dates
        dow = dates.day_of_week.to_numpy()
        md = list(zip(dates.month, dates.day, strict=True))
        self.is_holiday = np.array([x in HOLIDAYS_MD for x in md])
        self.is_peak = np.array([(m == 11 and d >= 20) or (m == 12 and d <= 23) for m, d in md])
        self.dow = dow
        self.demand = np.asarray(p.weekday_demand)[dow] * (1.0 + p.holiday_boost * self.is_peak)
        # Black Friday: the Friday in Nov 23-29.
        bf = (dates.month == 11) & (dates.day >= 23) & (dates.day <= 29) & (dow == 4)
        self.demand = self.demand * np.where(bf, 2.5, 1.0)

    def month_days(self, m: int) -> np.ndarray:
        return np.arange(int(self.month_starts[m]), int(self.month_starts[m + 1]))

    def month_of(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_starts, t, side="right") - 1


def _days_to_ts(t0: pd.Timestamp, t: np.ndarray) -> pd.Series:
    """Float days since ``t0`` -> timestamps at second precision; NaN becomes NaT."""
    t = np.asarray(t, dtype=float)
    secs = np.round(t * 86_400)
    mask = np.isnan(secs)
    ns = np.where(mask, 0, secs).astype(np.int64) * 10**9
    out = pd.Series(pd.to_datetime(t0.value + ns, unit="ns"))
    out[mask] = pd.NaT
    return out.astype("datetime64[ns]")


# ----------------------------------------------------------------------------------------
# catalogue and customers
# ----------------------------------------------------------------------------------------

CATEGORY_SPEC = {
    # category: (count, price range, weight range kg, consumable, replenish days, subscribable)
    "beans": (48, (12, 26), (0.25, 1.0), True, (21, 35), True),
    "ground": (24, (11, 22), (0.25, 1.0), True, (21, 35), True),
    "tea": (20, (8, 20), (0.1, 0.4), True, (30, 50), True),
    "equipment": (20, (60, 650), (1.5, 9.0), False, None, False),
    "accessories": (24, (6, 45), (0.1, 1.2), False, None, False),
    "merch": (12, (15, 40), (0.2, 0.8), False, None, False),
}
TASTE_DIM = 6


def make_products(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Catalogue with latent item vectors and a planted 'successor' for each product."""
    rows = []
    for cat, (n, price, weight, consumable, repl, sub) in CATEGORY_SPEC.items():
        for i in range(n):
            rows.append(
                {
                    C.CATEGORY: cat,
                    C.NAME: f"{cat.title()} #{i + 1:02d}",
                    C.PRICE: round(float(rng.uniform(*price)), 2),
                    C.WEIGHT_KG: round(float(rng.uniform(*weight)), 3),
                    C.IS_CONSUMABLE: consumable
                    or (cat == "accessories" and i < 6),  # filters and cleaning tabs
                    C.REPLENISH_DAYS: float(rng.uniform(*repl))
                    if repl
                    else (60.0 if cat == "accessories" and i < 6 else np.nan),
                    C.SUBSCRIBABLE: sub,
                }
            )
    products = pd.DataFrame(rows)
    n = len(products)
    products.insert(0, C.PRODUCT_ID, np.arange(1, n + 1, dtype=np.int64))
    products[C.IN_STOCK] = rng.random(n) > 0.05
    emb = rng.normal(0, 1, size=(n, TASTE_DIM))
    # Successor: equipment leads to beans/accessories, consumables lead within family.
    cats = products[C.CATEGORY].to_numpy()
    successor = np.empty(n, dtype=np.int64)
    for j in range(n):
        pool_cat = {"equipment": "accessories", "accessories": "beans", "merch": "beans"}.get(
            cats[j], cats[j] if rng.random() < 0.5 else "accessories"
        )
        pool = np.flatnonzero((cats == pool_cat) & (np.arange(n) != j))
        successor[j] = rng.choice(pool)
    return products, emb, successor


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
    phones = np.array([f"+1-555-{a:03d}-{b:04d}" for a, b in zip(area, line, strict=True)])
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
            C.SIGNUP_AT: _days_to_ts(t0, signup),
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


# ----------------------------------------------------------------------------------------
# the monthly simulation
# ----------------------------------------------------------------------------------------


class _Acc:
    """Accumulates column arrays for one table across months."""

    def __init__(self):
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **cols):
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.asarray(v))

    def frame(self) -> pd.DataFrame:
        """Concatenate and release the parts (keeping both would double peak memory)."""
        if not self.parts:
            return pd.DataFrame()
        cols = {}
        for k in list(self.parts):
            cols[k] = np.concatenate(self.parts.pop(k))
        return pd.DataFrame(cols, copy=False)


def _distance_km(wh: np.ndarray, dest: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    xy = {r: np.array(v) for r, v in REGION_XY.items()}
    a = np.stack([xy[WAREHOUSE_REGION[w]] for w in C.WAREHOUSES])
    b = np.stack([xy[r] for r in C.REGIONS])
    wi = np.searchsorted(np.array(C.WAREHOUSES), wh)
    di = _region_index(dest)
    d = np.linalg.norm(a[wi] - b[di], axis=1)
    return np.maximum(40.0, d + rng.normal(0, 60, len(d))).round(1)


def _region_index(regions: np.ndarray) -> np.ndarray:
    lookup = {r: i for i, r in enumerate(C.REGIONS)}
    return np.fromiter((lookup[r] for r in regions), dtype=np.int64, count=len(regions))


class Simulator:
    """Runs the month loop; each ``_step_*`` method is one documented mechanism."""

    def __init__(self, p: WorldParams):
        self.p = p
        self.rng = np.random.default_rng(p.seed)
        self.cal = Calendar(p)
        self.products, self.item_emb, self.successor = make_products(self.rng)
        self.customers, self.ctruth = make_customers(self.rng, p, self.cal)
        n, n_items = len(self.customers), len(self.products)
        self.n, self.n_items = n, n_items
        self.taste = self.rng.normal(0, 1, size=(n, TASTE_DIM))
        pop = self.rng.normal(0, 0.8, n_items)
        self.item_bias = pop
        self.price = self.products[C.PRICE].to_numpy()
        self.weight = self.products[C.WEIGHT_KG].to_numpy()
        self.cat = self.products[C.CATEGORY].to_numpy()
        self.consumable = self.products[C.IS_CONSUMABLE].to_numpy()
        self.replenish = self.products[C.REPLENISH_DAYS].to_numpy()
        self.subscribable = self.products[C.SUBSCRIBABLE].to_numpy()
        self.region_idx = _region_index(self.customers[C.REGION].to_numpy())
        self.ftype = self.ctruth[C.FRAUD_TYPE].to_numpy()
        self.engagement = self.ctruth[C.ENGAGEMENT].to_numpy()
        self.signup = self.ctruth["_signup_days"].to_numpy()
        self.activity = self.ctruth["activity"].to_numpy()
        # Fraudsters favour expensive, resellable items.
        self.fraud_pref = np.where(np.isin(self.ftype, ["ring", "wardrober"]), 1.2, 0.0)
        # Per-customer state.
        self.last_item = np.full(n, -1)
        self.due_item = np.full(n, -1)
        self.due_at = np.full(n, np.inf)
        self.points = np.zeros(n)
        self.spend_12m = np.zeros(n)
        self.tier = np.zeros(n, dtype=np.int64)
        self.sub_of = np.full(n, -1)  # active subscription index per customer
        M = p.months
        self.late_by_month = np.zeros((n, M + 1), dtype=np.int32)
        self.claim_by_month = np.zeros((n, M + 1), dtype=np.int32)
        self.lowrev_by_month = np.zeros((n, M + 1), dtype=np.int32)
        self.redeem_by_month = np.zeros((n, M + 1), dtype=np.int32)
        # Weekly shocks.
        n_weeks = len(self.cal.dates) // 7 + 2
        self.weather = (
            self.rng.normal(0, p.weather_sd, (len(C.REGIONS), n_weeks))
            + (self.rng.random((len(C.REGIONS), n_weeks)) < p.storm_prob) * p.storm_effect
        )
        self.wh_load = self.rng.normal(0, p.warehouse_load_sd, (len(C.WAREHOUSES), n_weeks))
        # Slow drift: carriers get a little slower in year two (the model must keep up).
        self.lane = self.rng.normal(0, p.lane_sd, (len(C.CARRIERS), len(C.REGIONS)))
        # Subscriptions (grown as customers subscribe).
        self.subs = {
            "customer": [],
            "product": [],
            "plan": [],
            "start": [],
            "price": [],
            "day": [],
        }
        self.sub_active = np.zeros(0, dtype=bool)
        self.sub_cancel = np.zeros(0)
        self.sub_paused_until = np.zeros(0)
        self.sub_skipped_month = np.zeros(0, dtype=np.int64)
        self.sub_price_month = np.full(0, -99)
        self.sub_price = np.zeros(0)
        # Accumulators.
        self.A = {
            name: _Acc()
            for name in (
                "orders",
                "items",
                "ship",
                "returns",
                "claims",
                "reviews",
                "views",
                "messages",
                "loyalty",
                "sub_events",
                "sub_months",
            )
        }
        self.next_order_id = 1

    # --- demand -------------------------------------------------------------------------

    def _choose_items(self, cust: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """Taste-driven choice, with the planted sequential successor some of the time."""
        rng = self.rng
        out = np.empty(len(cust), dtype=np.int64)
        for lo in range(0, len(cust), 20_000):
            c = cust[lo : lo + 20_000]
            logits = self.taste[c] @ self.item_emb.T * 0.9 + self.item_bias
            logits = logits + np.outer(self.fraud_pref[c], (self.price > 60).astype(float))
            g = rng.gumbel(size=logits.shape)
            out[lo : lo + 20_000] = np.argmax(logits + g, axis=1)
        seq = (prev >= 0) & (rng.random(len(cust)) < self.p.sequential_prob)
        out[seq] = self.successor[prev[seq]]
        return out

    def _order_times(self, m: int, n: int) -> np.ndarray:
        days = self.cal.month_days(m)
        w = self.cal.demand[days]
        d = self.rng.choice(days, size=n, p=w / w.sum())
        hour = np.clip(self.rng.normal(15, 4.5, n), 0, 23.99)
        return d + hour / 24.0

    def step_month(self, m: int) -> None:
        p, rng, cal = self.p, self.rng, self.cal
        m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
        active = self.signup < m1
        season = (
            cal.demand[cal.month_days(m)].mean() / cal.demand[: int(cal.month_starts[-1])].mean()
        )
        rate = p.order_rate_per_month * self.activity * season * active
        n_orders = rng.poisson(rate)
        cust = np.repeat(np.arange(self.n), n_orders)
        t = self._order_times(m, len(cust))
        t = np.maximum(t, self.signup[cust] + 0.01)
        keep = t < m1
        cust, t = cust[keep], t[keep]
        first = self._choose_items(cust, self.last_item[cust])
        kind = np.zeros(len(cust), dtype=np.int64)  # 0 one-off, 1 replenishment, 2 renewal
        # Replenishment: a due consumable is bought again around its due date.
        due = (self.due_at >= m0) & (self.due_at < m1) & (self.sub_of < 0) & active
        due_c = np.flatnonzero(due & (rng.random(self.n) < p.replenish_prob))
        due_t = np.clip(self.due_at[due_c] + rng.normal(0, 2.5, len(due_c)), m0, m1 - 0.01)
        due_t = np.floor(due_t) + np.clip(rng.normal(15, 4.5, len(due_c)), 0, 23.99) / 24
        cust = np.concatenate([cust, due_c])
        t = np.concatenate([t, due_t])
        first = np.concatenate([first, self.due_item[due_c]])
        kind = np.concatenate([kind, np.ones(len(due_c), dtype=np.int64)])
        # Subscription renewals.
        r_cust, r_t, r_item, r_sub = self._renewals(m)
        cust = np.concatenate([cust, r_cust])
        t = np.concatenate([t, r_t])
        first = np.concatenate([first, r_item])
        kind = np.concatenate([kind, np.full(len(r_cust), 2)])
        sub_idx = np.concatenate([np.full(len(cust) - len(r_cust), -1), r_sub])
        order = np.lexsort((cust, t))
        cust, t, first, kind, sub_idx = (
            cust[order],
            t[order],
            first[order],
            kind[order],
            sub_idx[order],
        )
        if len(cust):
            self._emit_orders(m, cust, t, first, kind, sub_idx)
        self._loyalty_month(m)
        self._churn_month(m)

    def _renewals(self, m: int):
        p, rng, cal = self.p, self.rng, self.cal
        n_sub = len(self.sub_active)
        if n_sub == 0:
            e = np.zeros(0, dtype=np.int64)
            return e, np.zeros(0), e, e
        m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
        s = np.flatnonzero(self.sub_active)
        start = np.asarray(self.subs["start"])[s]
        day = np.asarray(self.subs["day"])[s]
        plan = np.asarray(self.subs["plan"])[s]
        # Monthly plans renew on their day of month; biweekly plans twice.
        t1 = m0 + day
        rows_s, rows_t = [s], [t1]
        bi = plan == "biweekly"
        rows_s.append(s[bi])
        rows_t.append(t1[bi] + 14)
        ss = np.concatenate(rows_s)
        tt = np.concatenate(rows_t)
        ok = (tt > np.concatenate([start, start[bi]]) + 1) & (tt < m1)
        ss, tt = ss[ok], tt[ok]
        paused = self.sub_paused_until[ss] > tt
        skip = (
            rng.random(len(ss)) < p.skip_prob * (1.4 - self.engagement[self._sub_cust(ss)])
        ) & ~paused
        cancelled = self.sub_cancel[ss] <= tt
        self._sub_events(ss[skip & ~cancelled], tt[skip & ~cancelled], "skip")
        self.sub_skipped_month[np.unique(ss[skip | paused])] = m
        go = ~skip & ~paused & ~cancelled
        ss, tt = ss[go], tt[go]
        self._sub_events(ss, tt, "renew")
        hour = np.clip(rng.normal(6, 1.0, len(tt)), 0, 23.9) / 24
        return self._sub_cust(ss), np.floor(tt) + hour, np.asarray(self.subs["product"])[ss], ss

    def _sub_cust(self, s):
        return np.asarray(self.subs["customer"], dtype=np.int64)[s]

    def _sub_events(self, s, t, kind, old=None, new=None):
        n = len(s)
        if n == 0:
            return
        self.A["sub_events"].add(
            sub=np.asarray(s, dtype=np.int64),
            t=np.asarray(t, dtype=float),
            kind=np.full(n, kind, dtype=object),
            old=np.full(n, np.nan) if old is None else np.asarray(old, dtype=float),
            new=np.full(n, np.nan) if new is None else np.asarray(new, dtype=float),
        )

    # --- orders, shipments and everything after ------------------------------------------

    def _emit_orders(self, m, cust, t, first, kind, sub_idx):
        p, rng, cal = self.p, self.rng, self.cal
        n = len(cust)
        oid = np.arange(self.next_order_id, self.next_order_id + n, dtype=np.int64)
        self.next_order_id += n
        # Extra lines on one-off orders.
        n_extra = np.where(kind == 0, rng.poisson(0.35, n), 0)
        ex_order = np.repeat(np.arange(n), n_extra)
        ex_item = self._choose_items(cust[ex_order], np.full(len(ex_order), -1))
        line_order = np.concatenate([np.arange(n), ex_order])
        line_item = np.concatenate([first, ex_item])
        srt = np.lexsort((np.arange(len(line_order)), line_order))
        line_order, line_item = line_order[srt], line_item[srt]
        # Drop duplicate items within one order.
        key = line_order * 10_000 + line_item
        _, uniq = np.unique(key, return_index=True)
        uniq.sort()
        line_order, line_item = line_order[uniq], line_item[uniq]
        qty = np.where(self.consumable[line_item], 1 + rng.poisson(0.3, len(line_item)), 1)
        sub_price = np.full(n, np.nan)
        is_sub = sub_idx >= 0
        sub_price[is_sub] = self.sub_price[sub_idx[is_sub]]
        unit = np.where(kind[line_order] == 2, sub_price[line_order], self.price[line_item]).round(
            2
        )
        line_no = np.arange(len(line_order)) - np.searchsorted(line_order, line_order)
        gross = np.bincount(line_order, weights=unit * qty, minlength=n)
        discount = np.where(rng.random(n) < 0.15, (gross * rng.choice([0.1, 0.15, 0.2], n)), 0)
        discount = np.where(kind == 2, 0, discount).round(2)
        value = (gross - discount).round(2)
        weight = np.bincount(line_order, weights=self.weight[line_item] * qty, minlength=n)
        self.A["items"].add(
            order=oid[line_order], line=line_no + 1, item=line_item, qty=qty, unit=unit
        )
        # Shipping choices.
        dest_i = self.region_idx[cust]
        dest = np.array(C.REGIONS)[dest_i]
        wh = np.where(np.isin(dest, ["north", "east", "central"]), "wh_north", "wh_south")
        wh = np.where(rng.random(n) < 0.1, np.where(wh == "wh_north", "wh_south", "wh_north"), wh)
        dist = _distance_km(wh, dest, rng)
        carrier_i = rng.choice(len(C.CARRIERS), n, p=CARRIER_WEIGHTS)
        express = (rng.random(n) < p.express_share * np.where(value > 150, 2.0, 1.0)) & (kind != 2)
        svc_i = express.astype(int)
        sla = np.asarray(p.carrier_sla_days)[carrier_i, svc_i] + (dist > 1200)
        day0 = np.floor(t)
        promised = day0 + sla  # promised calendar day index (delivery by end of that day)
        # True transit time: a log-normal whose location moves with every planted factor.
        base = np.asarray(p.carrier_base_days)[carrier_i, svc_i]
        week = (t // 7).astype(int)
        dow = cal.dow[day0.astype(int)]
        wh_i = (wh == "wh_south").astype(int)
        peak = cal.is_peak[day0.astype(int)]
        hol_soon = np.zeros(n, dtype=bool)
        for k in range(0, 6):
            hol_soon |= cal.is_holiday[np.minimum(day0.astype(int) + k, len(cal.dates) - 1)]
        mu = (
            np.log(base)
            + p.distance_effect * np.log(dist / 500.0)
            + p.weekend_effect * np.isin(dow, [4, 5])
            + p.peak_effect * (peak | hol_soon)
            + self.weather[dest_i, week]
            + self.wh_load[wh_i, week]
            + self.lane[carrier_i, dest_i]
            + 0.05 * (weight > 5)
            + 0.04 * (m >= 12)  # year-two drift
        )
        sigma = np.asarray(p.carrier_sigma)[carrier_i] + 0.05 * express
        T = np.exp(mu + sigma * rng.standard_normal(n))
        delivered = t + T
        lost = rng.random(n) < p.lost_prob
        handling = T * rng.beta(2, 9, n)
        shipped = t + handling
        horizon = cal.month_starts[-1]
        in_flight = delivered > horizon
        status = np.where(lost, "lost", np.where(in_flight, "in_transit", "delivered"))
        delivered_obs = np.where(status == "delivered", delivered, np.nan)
        deliv_day = np.floor(delivered)
        late = (status == "delivered") & (deliv_day > promised)
        misdeliv = (status == "delivered") & (rng.random(n) < p.misdelivery_prob)
        gps = np.where(
            status == "delivered",
            np.where(misdeliv, rng.uniform(250, 3000, n), np.abs(rng.normal(0, 35, n))),
            np.nan,
        ).round(1)
        signature = (status == "delivered") & (
            rng.random(n) < np.where(express | (value > 150), 0.8, 0.1)
        )
        self.A["orders"].add(
            order=oid,
            cust=cust,
            t=t,
            wh=wh,
            dest=dest,
            dist=dist,
            carrier=np.array(C.CARRIERS)[carrier_i],
            svc=np.array(C.SERVICE_LEVELS)[svc_i],
            sla=sla.astype(np.int64),
            promised=promised,
            value=value,
            discount=discount,
            kind=kind,
            sub=sub_idx,
        )
        self.A["ship"].add(
            order=oid,
            shipped=np.where(shipped < horizon, shipped, np.nan),
            delivered=delivered_obs,
            status=status,
            weight=weight.round(3),
            signature=signature,
            gps=gps,
            mu=mu,
            sigma=sigma,
            true_delivered=delivered,
            late=late,
        )
        # Monthly experience counters used by the churn hazard (by delivery month).
        dm = np.clip(cal.month_of(np.where(np.isnan(delivered_obs), 0, delivered_obs)), 0, p.months)
        np.add.at(self.late_by_month, (cust[late], dm[late]), 1)
        # Items, views, state.
        self._after_delivery(
            m,
            oid,
            cust,
            t,
            delivered_obs,
            late,
            status,
            gps,
            signature,
            value,
            express,
            kind,
            sub_idx,
            line_order,
            line_item,
            qty,
            unit,
            deliv_day,
            promised,
        )
        self.last_item[cust] = first
        cons = self.consumable[first]
        self.due_item[cust[cons]] = first[cons]
        self.due_at[cust[cons]] = t[cons] + self.replenish[first[cons]] * rng.uniform(
            0.85, 1.15, cons.sum()
        )
        # New subscriptions from one-off purchases of subscribable items.
        cand = (kind != 2) & self.subscribable[first] & (self.sub_of[cust] < 0)
        new = np.flatnonzero(cand & (rng.random(n) < p.subscribe_prob))
        if len(new):
            _, first_idx = np.unique(cust[new], return_index=True)
            new = new[first_idx]
            self._start_subs(cust[new], first[new], t[new] + 0.5)

    def _start_subs(self, cust, item, t):
        rng = self.rng
        k0 = len(self.sub_active)
        k = len(cust)
        plan = np.where(rng.random(k) < 0.25, "biweekly", "monthly")
        price = (self.price[item] * 0.9).round(2)
        self.subs["customer"].extend(cust.tolist())
        self.subs["product"].extend(item.tolist())
        self.subs["plan"].extend(plan.tolist())
        self.subs["start"].extend(t.tolist())
        self.subs["price"].extend(price.tolist())
        self.subs["day"].extend(rng.integers(0, 27, k).tolist())
        self.sub_active = np.concatenate([self.sub_active, np.ones(k, dtype=bool)])
        self.sub_cancel = np.concatenate([self.sub_cancel, np.full(k, np.inf)])
        self.sub_paused_until = np.concatenate([self.sub_paused_until, np.zeros(k)])
        self.sub_skipped_month = np.concatenate([self.sub_skipped_month, np.full(k, -99)])
        self.sub_price_month = np.concatenate([self.sub_price_month, np.full(k, -99)])
        self.sub_price = np.concatenate([self.sub_price, price])
        self.sub_of[cust] = np.arange(k0, k0 + k)
        self._sub_events(np.arange(k0, k0 + k), t, "start")

    def _after_delivery(
        self,
        m,
        oid,
        cust,
        t,
        delivered,
        late,
        status,
        gps,
        signature,
        value,
        express,
        kind,
        sub_idx,
        line_order,
        line_item,
        qty,
        unit,
        deliv_day,
        promised,
    ):
        p, rng, cal = self.p, self.rng, self.cal
        n = len(oid)
        horizon = cal.month_starts[-1]
        ftype = self.ftype[cust]
        eng = self.engagement[cust]
        ok = status == "delivered"
        # --- returns: honest returns and fraudulent ones are separate hazards -------------
        li_c = cust[line_order]
        li_ft = ftype[line_order]
        li_cat = self.cat[line_item]
        base = np.vectorize(p.return_base.get)(li_cat)
        honest = (
            base
            * (1 + 1.5 * late[line_order])
            * np.where(li_ft == "serial_returner", p.serial_return_mult, 1.0)
        )
        honest = np.where(kind[line_order] == 2, honest * 0.3, honest)
        pricey = self.price[line_item] > 40
        fraud = np.where(
            (li_ft == "wardrober") & np.isin(li_cat, ["equipment", "merch"]), p.wardrobe_prob, 0.0
        )
        fraud = fraud + np.where((li_ft == "ring") & pricey, p.ring_return_prob, 0.0)
        honest = np.minimum(honest, 0.9)
        fraud = np.minimum(fraud, 0.9 - honest)
        u = rng.random(len(line_item))
        eligible = ok[line_order]
        ret = eligible & (u < honest + fraud)
        p_fraud = np.where(honest + fraud > 0, fraud / np.maximum(honest + fraud, 1e-9), 0.0)
        is_fraud = ret & (rng.random(len(line_item)) < p_fraud)
        d_at = delivered[line_order]
        lag = np.where(
            is_fraud & (li_ft == "wardrober"),
            rng.uniform(18, 29.5, len(line_item)),
            np.where(
                is_fraud,
                rng.uniform(0.5, 10, len(line_item)),
                np.minimum(rng.exponential(7, len(line_item)), 29.5),
            ),
        )
        req = d_at + lag
        ret &= req < horizon
        r = np.flatnonzero(ret)
        reason = np.where(
            is_fraud[r],
            rng.choice(
                ["not_as_described", "damaged", "changed_mind"], len(r), p=[0.45, 0.35, 0.2]
            ),
            rng.choice(list(C.RETURN_REASONS), len(r), p=[0.4, 0.15, 0.2, 0.1, 0.15]),
        )
        self.A["returns"].add(
            order=oid[line_order[r]],
            cust=li_c[r],
            item=line_item[r],
            t=req[r],
            reason=reason,
            refund=(unit[r] * qty[r]).round(2),
            fraud=is_fraud[r],
            p_fraud=p_fraud[r],
            ftype=li_ft[r],
        )
        # --- claims: lost, misdelivered, or falsely "not received" ------------------------
        lost = status == "lost"
        misdeliv = ok & (gps > 200)
        honest_c = np.where(
            lost, 0.9, np.where(misdeliv, 0.5, np.where(ok, p.honest_claim_prob, 0.0))
        )
        fraud_c = np.where(ok & ~misdeliv & (ftype == "false_claimer"), p.false_claim_prob, 0.0)
        fraud_c = fraud_c + np.where(ok & ~misdeliv & (ftype == "ring"), p.ring_claim_prob, 0.0)
        fraud_c = fraud_c * np.where(signature, 0.5, 1.0)
        tot = np.minimum(honest_c + fraud_c, 0.95)
        pc = np.where(tot > 0, fraud_c / np.maximum(honest_c + fraud_c, 1e-9), 0.0)
        claim = (rng.random(n) < tot) & ~(status == "in_transit")
        c_fraud = claim & (rng.random(n) < pc)
        ref = np.where(lost, t + np.asarray(p.carrier_sla_days).max() + 4, delivered)
        c_t = ref + np.where(c_fraud, rng.exponential(1.2, n) + 0.05, rng.exponential(2.5, n) + 0.1)
        claim &= c_t < horizon
        ci = np.flatnonzero(claim)
        ctype = np.where(rng.random(len(ci)) < 0.85, "item_not_received", "damaged_in_transit")
        ctype = np.where(lost[ci] | c_fraud[ci], "item_not_received", ctype)
        self.A["claims"].add(
            order=oid[ci],
            cust=cust[ci],
            t=c_t[ci],
            ctype=ctype,
            amount=value[ci],
            fraud=c_fraud[ci],
            p_fraud=pc[ci],
            ftype=ftype[ci],
        )
        cm = np.clip(cal.month_of(c_t[ci]), 0, p.months)
        np.add.at(self.claim_by_month, (cust[ci], cm), 1)
        # --- reviews -----------------------------------------------------------------------
        li_first = np.r_[True, line_order[1:] != line_order[:-1]]
        rv = ok & (rng.random(n) < p.review_prob * (0.5 + eng))
        rv_t = delivered + rng.uniform(1, 12, n)
        rv &= rv_t < horizon
        ri = np.flatnonzero(rv)
        first_item = line_item[li_first]
        late_days = np.clip(deliv_day - promised, 0, 6)
        match = np.einsum("ij,ij->i", self.taste[cust[ri]], self.item_emb[first_item[ri]]) / 3
        rating = np.clip(
            np.round(4.2 - 0.7 * late_days[ri] + match + rng.normal(0, 0.8, len(ri))), 1, 5
        ).astype(np.int64)
        self.A["reviews"].add(
            cust=cust[ri], item=first_item[ri], order=oid[ri], t=rv_t[ri], rating=rating
        )
        rmo = np.clip(cal.month_of(rv_t[ri]), 0, p.months)
        low = rating <= 2
        np.add.at(self.lowrev_by_month, (cust[ri][low], rmo[low]), 1)
        # Review bonus points.
        self.A["loyalty"].add(
            cust=cust[ri],
            t=rv_t[ri],
            kind=np.full(len(ri), "review_bonus", dtype=object),
            points=np.full(len(ri), 50),
            tier=np.full(len(ri), None, dtype=object),
        )
        self.points[cust[ri]] += 50
        # --- views before one-off purchases --------------------------------------------------
        oneoff = np.flatnonzero(kind[line_order] == 0)
        nv = rng.poisson(p.views_per_order, len(oneoff))
        vi = np.repeat(oneoff, nv)
        browse = rng.random(len(vi)) < 0.5
        v_item = np.where(browse, self._choose_items(li_c[vi], np.full(len(vi), -1)), line_item[vi])
        v_t = t[line_order[vi]] - rng.uniform(0.01, 2.0, len(vi))
        self.A["views"].add(cust=li_c[vi], item=v_item, t=v_t)
        # --- messages --------------------------------------------------------------------------
        msgs = [("order_confirmation", t + 0.001, np.ones(n, dtype=bool))]
        msgs.append(("shipped", t + 0.3, status != "lost"))
        notice = late & (rng.random(n) < p.delay_notice_prob)
        msgs.append(("delay_notice", promised - 0.2, notice))
        msgs.append(
            ("review_request", np.where(ok, delivered + 2, np.nan), ok & (rng.random(n) < 0.5))
        )
        for mtype, mt, mask in msgs:
            idx = np.flatnonzero(mask & (mt < horizon))
            self._messages(cust[idx], mt[idx], mtype, "outbound")
        # Support contacts after bad experiences.
        sc = (late & (rng.random(n) < 0.25)) | (lost & (rng.random(n) < 0.7))
        idx = np.flatnonzero(sc)
        sc_t = np.where(lost[idx], t[idx] + 8, delivered[idx] + rng.uniform(0.1, 3, len(idx)))
        keep = sc_t < horizon
        self._messages(cust[idx][keep], sc_t[keep], "support_contact", "inbound")
        # --- loyalty points on delivered orders; reversed on refunds --------------------------
        earn = np.flatnonzero(ok)
        pts = np.floor(value[earn]).astype(np.int64) * np.where(self.tier[cust[earn]] >= 2, 2, 1)
        self.A["loyalty"].add(
            cust=cust[earn],
            t=delivered[earn] + 0.01,
            kind=np.full(len(earn), "earn", dtype=object),
            points=pts,
            tier=np.full(len(earn), None, dtype=object),
        )
        np.add.at(self.points, cust[earn], pts)
        np.add.at(self.spend_12m, cust[earn], value[earn])
        rv_pts = -np.floor(unit[r] * qty[r]).astype(np.int64)
        self.A["loyalty"].add(
            cust=li_c[r],
            t=req[r] + 1,
            kind=np.full(len(r), "reversal", dtype=object),
            points=rv_pts,
            tier=np.full(len(r), None, dtype=object),
        )
        np.add.at(self.points, li_c[r], rv_pts)
        # Referral bonus for the referrer on a referee's first order.
        ref_by = self.customers[C.REFERRED_BY].to_numpy(dtype=float, na_value=np.nan)
        firsts = np.flatnonzero(ok & ~np.isnan(ref_by[cust]) & (self.spend_12m[cust] == value))
        if len(firsts):
            rc = ref_by[cust[firsts]].astype(np.int64) - 1
            self.A["loyalty"].add(
                cust=rc,
                t=delivered[firsts] + 0.02,
                kind=np.full(len(firsts), "referral_bonus", dtype=object),
                points=np.full(len(firsts), 200),
                tier=np.full(len(firsts), None, dtype=object),
            )
            np.add.at(self.points, rc, 200)

    def _messages(self, cust, t, mtype, direction):
        n = len(cust)
        if n == 0:
            return
        rng = self.rng
        if direction == "inbound":
            channel = np.full(n, "support", dtype=object)
            opened = np.ones(n, dtype=bool)
            clicked = np.zeros(n, dtype=bool)
        else:
            c = self.customers
            sms = c[C.SMS_OPT_IN].to_numpy()[cust]
            push = c[C.PUSH_OPT_IN].to_numpy()[cust]
            channel = np.where(
                (mtype in ("shipped", "delay_notice")) & sms,
                "sms",
                np.where((mtype == "shipped") & push, "push", "email"),
            ).astype(object)
            eng = self.engagement[cust]
            opened = rng.random(n) < 0.15 + 0.75 * eng
            clicked = opened & (rng.random(n) < 0.1 + 0.5 * eng)
        self.A["messages"].add(
            cust=cust,
            t=t,
            channel=channel,
            direction=np.full(n, direction, dtype=object),
            mtype=np.full(n, mtype, dtype=object),
            opened=opened,
            clicked=clicked,
        )

    # --- loyalty, promotions and churn ---------------------------------------------------

    def _loyalty_month(self, m):
        p, rng, cal = self.p, self.rng, self.cal
        m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
        active = self.signup < m1
        can = active & (self.points >= p.redeem_threshold)
        red = np.flatnonzero(can & (rng.random(self.n) < 0.05 + 0.45 * self.engagement))
        rt = rng.uniform(m0, m1, len(red))
        self.A["loyalty"].add(
            cust=red,
            t=rt,
            kind=np.full(len(red), "redeem", dtype=object),
            points=np.full(len(red), -p.redeem_threshold),
            tier=np.full(len(red), None, dtype=object),
        )
        self.points[red] -= p.redeem_threshold
        self.redeem_by_month[red, m] += 1
        # Tiers from rolling spend (decayed monthly, a stand-in for a 12-month window).
        new_tier = np.searchsorted([200, 600, 1500], self.spend_12m, side="right")
        changed = np.flatnonzero(active & (new_tier != self.tier))
        self.A["loyalty"].add(
            cust=changed,
            t=np.full(len(changed), m1 - 0.01),
            kind=np.full(len(changed), "tier_change", dtype=object),
            points=np.zeros(len(changed), dtype=np.int64),
            tier=np.array(C.TIERS, dtype=object)[new_tier[changed]],
        )
        self.tier = np.where(active, new_tier, self.tier)
        self.spend_12m *= 11 / 12
        # Promotions to opted-in customers.
        opt = self.customers[C.EMAIL_OPT_IN].to_numpy()
        pr = np.flatnonzero(active & opt & (rng.random(self.n) < p.promo_prob))
        self._messages(pr, rng.uniform(m0, m1, len(pr)), "promotion", "outbound")

    def _churn_month(self, m):
        """Monthly hazard for every active subscription, from last months' experience."""
        p, rng, cal = self.p, self.rng, self.cal
        m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
        if m == p.price_increase_month and len(self.sub_active):
            hit = np.flatnonzero(self.sub_active & (rng.random(len(self.sub_active)) < 0.5))
            old = self.sub_price[hit]
            self.sub_price[hit] = (old * (1 + p.price_increase)).round(2)
            self.sub_price_month[hit] = m
            self._sub_events(
                hit, rng.uniform(m0, m0 + 3, len(hit)), "price_change", old, self.sub_price[hit]
            )
        s = np.flatnonzero(self.sub_active)
        if m + 1 > p.months or len(s) == 0:
            return
        # Pauses start this month and last one or two months.
        pz = s[rng.random(len(s)) < p.pause_prob]
        pt = rng.uniform(m0, m1, len(pz))
        self.sub_paused_until[pz] = pt + rng.choice([30, 60], len(pz))
        self._sub_events(pz, pt, "pause")
        self._sub_events(pz, self.sub_paused_until[pz], "resume")
        self.sub_skipped_month[pz] = m
        c = self._sub_cust(s)
        start = np.asarray(self.subs["start"])[s]
        lo2 = max(m - 1, 0)
        lo3 = max(m - 2, 0)
        late2 = self.late_by_month[c, lo2 : m + 1].sum(1)
        claim3 = self.claim_by_month[c, lo3 : m + 1].sum(1) > 0
        low3 = self.lowrev_by_month[c, lo3 : m + 1].sum(1) > 0
        red3 = self.redeem_by_month[c, lo3 : m + 1].sum(1) > 0
        price = self.sub_price_month[s] >= m - 1
        skipped = self.sub_skipped_month[s] == m
        tenure_new = (m1 - start) < 90
        x = (
            p.churn_base
            + p.churn_late_effect * np.minimum(late2, 3)
            + p.churn_claim_effect * claim3
            + p.churn_low_review_effect * low3
            + p.churn_price_effect * price
            + p.churn_skip_effect * skipped
            + p.churn_redeem_effect * red3
            + p.churn_new_effect * tenure_new
            + p.churn_engagement_effect * (self.engagement[c] - 0.4)
            + self.ctruth[C.FRAILTY].to_numpy()[c]
        )
        h = 1 / (1 + np.exp(-x))
        churn = rng.random(len(s)) < h
        self.A["sub_months"].add(sub=s, month=np.full(len(s), m + 1), hazard=h, churned=churn)
        k = s[churn]
        ct = rng.uniform(m1, cal.month_starts[m + 2] if m + 2 <= p.months else m1 + 30, len(k))
        self.sub_cancel[k] = ct
        self.sub_active[k] = False
        self.sub_of[self._sub_cust(k)] = -1
        keep = ct < cal.month_starts[-1]
        self._sub_events(k[keep], ct[keep], "cancel")

    # --- assembly ----------------------------------------------------------------------

    def run(self, progress=None) -> World:
        for m in range(self.p.months):
            self.step_month(m)
            if progress is not None:
                progress(m + 1, self.p.months)
        return self._assemble()

    def _assemble(self) -> World:
        t0 = self.cal.t0
        ts = lambda x: _days_to_ts(t0, x)  # noqa: E731
        A = {k: v.frame() for k, v in self.A.items()}
        o, s = A["orders"], A["ship"]
        sub_ids = np.arange(1, len(self.sub_active) + 1, dtype=np.int64)
        sub_id_of = lambda idx: pd.array(np.where(idx >= 0, idx + 1, pd.NA), dtype="Int64")  # noqa: E731
        orders = pd.DataFrame(
            {
                C.ORDER_ID: o["order"],
                C.CUSTOMER_ID: o["cust"] + 1,
                C.ORDERED_AT: ts(o["t"]),
                C.CHANNEL: np.where(self.rng.random(len(o)) < 0.45, "app", "web"),
                C.WAREHOUSE: o["wh"],
                C.ORIGIN_REGION: o["wh"].map(WAREHOUSE_REGION),
                C.DEST_REGION: o["dest"],
                C.DISTANCE_KM: o["dist"],
                C.CARRIER: o["carrier"],
                C.SERVICE_LEVEL: o["svc"],
                C.PROMISED_DAYS: o["sla"],
                C.PROMISED_DATE: ts(o["promised"]).dt.normalize(),
                C.ORDER_VALUE: o["value"],
                C.DISCOUNT: o["discount"],
                C.IS_RENEWAL: o["kind"] == 2,
                C.SUBSCRIPTION_ID: sub_id_of(o["sub"].to_numpy()),
            }
        )
        items = pd.DataFrame(
            {
                C.ORDER_ID: A["items"]["order"],
                C.LINE_NO: A["items"]["line"].astype(np.int64),
                C.PRODUCT_ID: A["items"]["item"] + 1,
                C.QUANTITY: A["items"]["qty"].astype(np.int64),
                C.UNIT_PRICE: A["items"]["unit"],
            }
        )
        shipments = pd.DataFrame(
            {
                C.SHIPMENT_ID: s["order"],
                C.ORDER_ID: s["order"],
                C.CARRIER: o["carrier"],
                C.SERVICE_LEVEL: o["svc"],
                C.SHIPPED_AT: ts(s["shipped"]),
                C.DELIVERED_AT: ts(s["delivered"]),
                C.STATUS: s["status"],
                C.WEIGHT_KG: s["weight"],
                C.SIGNATURE: s["signature"].astype(bool),
                C.GPS_DISTANCE_M: s["gps"],
            }
        )
        truth_ship = pd.DataFrame(
            {
                C.SHIPMENT_ID: s["order"],
                C.TRUE_MU: s["mu"],
                C.TRUE_SIGMA: s["sigma"],
                "true_delivered_at": ts(s["true_delivered"]),
            }
        )
        tracking = self._tracking(o, s, ts)
        subs = self._subscriptions(sub_ids, ts)
        se = A["sub_events"]
        sub_events = pd.DataFrame(
            {
                C.SUBSCRIPTION_ID: se["sub"] + 1,
                C.EVENT_AT: ts(se["t"]),
                C.EVENT_TYPE: se["kind"].astype(str),
                C.OLD_VALUE: se["old"],
                C.NEW_VALUE: se["new"],
            }
        ).sort_values([C.EVENT_AT, C.SUBSCRIPTION_ID], kind="stable")
        sub_events.insert(0, C.EVENT_ID, np.arange(1, len(sub_events) + 1, dtype=np.int64))
        r = A["returns"].sort_values("t", kind="stable")
        returns = pd.DataFrame(
            {
                C.RETURN_ID: np.arange(1, len(r) + 1, dtype=np.int64),
                C.ORDER_ID: r["order"].to_numpy(),
                C.CUSTOMER_ID: r["cust"].to_numpy() + 1,
                C.PRODUCT_ID: r["item"].to_numpy() + 1,
                C.REQUESTED_AT: ts(r["t"].to_numpy()),
                C.REASON: r["reason"].to_numpy().astype(str),
                C.REFUND_AMOUNT: r["refund"].to_numpy(),
                C.CONFIRMED_FRAUD: r["fraud"].to_numpy().astype(bool),
            }
        )
        truth_returns = pd.DataFrame(
            {
                C.RETURN_ID: returns[C.RETURN_ID],
                C.TRUE_FRAUD_PROB: r["p_fraud"].to_numpy(),
                C.IS_FRAUD: r["fraud"].to_numpy().astype(bool),
                C.FRAUD_TYPE: r["ftype"].to_numpy().astype(str),
            }
        )
        cl = A["claims"].sort_values("t", kind="stable")
        claims = pd.DataFrame(
            {
                C.CLAIM_ID: np.arange(1, len(cl) + 1, dtype=np.int64),
                C.ORDER_ID: cl["order"].to_numpy(),
                C.SHIPMENT_ID: cl["order"].to_numpy(),
                C.CUSTOMER_ID: cl["cust"].to_numpy() + 1,
                C.CLAIMED_AT: ts(cl["t"].to_numpy()),
                C.CLAIM_TYPE: cl["ctype"].to_numpy().astype(str),
                C.AMOUNT: cl["amount"].to_numpy(),
                C.CONFIRMED_FRAUD: cl["fraud"].to_numpy().astype(bool),
            }
        )
        truth_claims = pd.DataFrame(
            {
                C.CLAIM_ID: claims[C.CLAIM_ID],
                C.TRUE_FRAUD_PROB: cl["p_fraud"].to_numpy(),
                C.IS_FRAUD: cl["fraud"].to_numpy().astype(bool),
                C.FRAUD_TYPE: cl["ftype"].to_numpy().astype(str),
            }
        )
        rv = A["reviews"].sort_values("t", kind="stable")
        reviews = pd.DataFrame(
            {
                C.REVIEW_ID: np.arange(1, len(rv) + 1, dtype=np.int64),
                C.CUSTOMER_ID: rv["cust"].to_numpy() + 1,
                C.PRODUCT_ID: rv["item"].to_numpy() + 1,
                C.ORDER_ID: rv["order"].to_numpy(),
                C.CREATED_AT: ts(rv["t"].to_numpy()),
                C.RATING: rv["rating"].to_numpy().astype(np.int64),
            }
        )
        interactions = self._interactions(A, items, orders, ts)
        mg = A["messages"].sort_values("t", kind="stable")
        messages = pd.DataFrame(
            {
                C.MESSAGE_ID: np.arange(1, len(mg) + 1, dtype=np.int64),
                C.CUSTOMER_ID: mg["cust"].to_numpy() + 1,
                C.SENT_AT: ts(mg["t"].to_numpy()),
                C.CHANNEL: mg["channel"].to_numpy().astype(str),
                C.DIRECTION: mg["direction"].to_numpy().astype(str),
                C.MESSAGE_TYPE: mg["mtype"].to_numpy().astype(str),
                C.OPENED: mg["opened"].to_numpy().astype(bool),
                C.CLICKED: mg["clicked"].to_numpy().astype(bool),
            }
        )
        lo = A["loyalty"]
        lo = lo[lo["t"] < self.cal.month_starts[-1]].sort_values("t", kind="stable")
        loyalty = pd.DataFrame(
            {
                C.EVENT_ID: np.arange(1, len(lo) + 1, dtype=np.int64),
                C.CUSTOMER_ID: lo["cust"].to_numpy() + 1,
                C.EVENT_AT: ts(lo["t"].to_numpy()),
                C.EVENT_TYPE: lo["kind"].to_numpy().astype(str),
                C.POINTS: lo["points"].to_numpy().astype(np.int64),
                C.TIER: pd.array(lo["tier"].to_numpy(), dtype="str"),
            }
        )
        sm = A["sub_months"]
        truth_sub = pd.DataFrame(
            {
                C.SUBSCRIPTION_ID: sm["sub"].to_numpy() + 1,
                C.MONTH: (
                    t0 + pd.to_timedelta(self.cal.month_starts[sm["month"].to_numpy()], unit="D")
                ),
                C.TRUE_HAZARD: sm["hazard"].to_numpy(),
                C.CHURNED: sm["churned"].to_numpy().astype(bool),
            }
        )
        products = self.products.copy()
        truth_customers = self.ctruth.drop(columns=["_signup_days"]).copy()
        for k in range(TASTE_DIM):
            truth_customers[f"{C.TASTE}_{k}"] = self.taste[:, k]
        tables = {
            C.CUSTOMERS: self.customers,
            C.PRODUCTS: products,
            C.ORDERS: orders,
            C.ORDER_ITEMS: items,
            C.SHIPMENTS: shipments,
            C.TRACKING_EVENTS: tracking,
            C.SUBSCRIPTIONS: subs,
            C.SUBSCRIPTION_EVENTS: sub_events.reset_index(drop=True),
            C.RETURNS: returns,
            C.CLAIMS: claims,
            C.REVIEWS: reviews,
            C.INTERACTIONS: interactions,
            C.MESSAGES: messages,
            C.LOYALTY_EVENTS: loyalty,
        }
        truth = {
            C.TRUTH_SHIPMENTS: truth_ship,
            C.TRUTH_SUBSCRIPTION_MONTHS: truth_sub,
            C.TRUTH_CUSTOMERS: truth_customers,
            C.TRUTH_RETURNS: truth_returns,
            C.TRUTH_CLAIMS: truth_claims,
            "truth_products": pd.DataFrame(
                {
                    C.PRODUCT_ID: products[C.PRODUCT_ID],
                    "successor_id": self.successor + 1,
                    "popularity": self.item_bias,
                    **{f"{C.TASTE}_{k}": self.item_emb[:, k] for k in range(TASTE_DIM)},
                }
            ),
        }
        return World(tables=tables, truth=truth, params=self.p)

    def _tracking(self, o, s, ts):
        rng = self.rng
        horizon = self.cal.month_starts[-1]
        t = o["t"].to_numpy()
        shipped = s["shipped"].to_numpy()
        deliv = s["true_delivered"].to_numpy()
        status = s["status"].to_numpy()
        wh_reg = o["wh"].map(WAREHOUSE_REGION).to_numpy()
        dest = o["dest"].to_numpy()
        sid = s["order"].to_numpy()
        hub = shipped + (deliv - shipped) * rng.beta(4, 4, len(t))
        ofd = np.maximum(hub, deliv - rng.uniform(0.08, 0.3, len(t)))
        lost = status == "lost"
        parts = [
            ("label_created", t + 0.01, wh_reg, np.ones(len(t), dtype=bool)),
            ("picked_up", shipped, wh_reg, np.ones(len(t), dtype=bool)),
            (
                "hub_scan",
                hub,
                np.where(rng.random(len(t)) < 0.5, wh_reg, dest),
                np.ones(len(t), dtype=bool),
            ),
            ("out_for_delivery", ofd, dest, ~lost),
            ("delivered", deliv, dest, status == "delivered"),
            ("exception", hub + 0.5, dest, lost),
        ]
        frames = []
        for kind, when, where, mask in parts:
            keep = mask & (when < horizon) & ~np.isnan(when)
            frames.append(
                pd.DataFrame({"s": sid[keep], "t": when[keep], "k": kind, "r": where[keep]})
            )
        ev = pd.concat(frames, ignore_index=True).sort_values(["t", "s"], kind="stable")
        return pd.DataFrame(
            {
                C.EVENT_ID: np.arange(1, len(ev) + 1, dtype=np.int64),
                C.SHIPMENT_ID: ev["s"].to_numpy(),
                C.EVENT_AT: ts(ev["t"].to_numpy()),
                C.EVENT_TYPE: ev["k"].to_numpy().astype(str),
                C.LOCATION_REGION: ev["r"].to_numpy().astype(str),
            }
        )

    def _subscriptions(self, sub_ids, ts):
        S = self.subs
        if len(sub_ids) == 0:
            return pd.DataFrame(
                {
                    C.SUBSCRIPTION_ID: np.zeros(0, dtype=np.int64),
                    C.CUSTOMER_ID: np.zeros(0, dtype=np.int64),
                    C.PRODUCT_ID: np.zeros(0, dtype=np.int64),
                    C.PLAN: pd.Series([], dtype="str"),
                    C.PRICE: np.zeros(0),
                    C.STARTED_AT: pd.Series([], dtype="datetime64[ns]"),
                    C.CANCELLED_AT: pd.Series([], dtype="datetime64[ns]"),
                }
            )
        cancel = np.where(
            np.isfinite(self.sub_cancel) & (self.sub_cancel < self.cal.month_starts[-1]),
            self.sub_cancel,
            np.nan,
        )
        return pd.DataFrame(
            {
                C.SUBSCRIPTION_ID: sub_ids,
                C.CUSTOMER_ID: np.asarray(S["customer"], dtype=np.int64) + 1,
                C.PRODUCT_ID: np.asarray(S["product"], dtype=np.int64) + 1,
                C.PLAN: np.asarray(S["plan"]).astype(str),
                C.PRICE: np.asarray(S["price"]),  # price at start; changes are events
                C.STARTED_AT: ts(np.asarray(S["start"])),
                C.CANCELLED_AT: ts(cancel),
            }
        )

    def _interactions(self, A, items, orders, ts):
        v = A["views"]
        oi = items.merge(
            orders[[C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT, C.IS_RENEWAL]], on=C.ORDER_ID
        )
        buys = pd.DataFrame(
            {
                C.CUSTOMER_ID: oi[C.CUSTOMER_ID].to_numpy(),
                C.PRODUCT_ID: oi[C.PRODUCT_ID].to_numpy(),
                C.EVENT_AT: oi[C.ORDERED_AT].to_numpy(),
                C.EVENT_TYPE: np.where(oi[C.IS_RENEWAL], "renewal", "purchase"),
            }
        )
        views = pd.DataFrame(
            {
                C.CUSTOMER_ID: v["cust"].to_numpy() + 1,
                C.PRODUCT_ID: v["item"].to_numpy() + 1,
                C.EVENT_AT: ts(v["t"].to_numpy()).to_numpy(),
                C.EVENT_TYPE: "view",
            }
        )
        signup = self.customers.set_index(C.CUSTOMER_ID)[C.SIGNUP_AT]
        views = views[views[C.EVENT_AT].to_numpy() >= signup.loc[views[C.CUSTOMER_ID]].to_numpy()]
        out = pd.concat([views, buys], ignore_index=True)
        out = out.sort_values([C.EVENT_AT, C.CUSTOMER_ID], kind="stable").reset_index(drop=True)
        out[C.EVENT_TYPE] = out[C.EVENT_TYPE].astype(str)
        return out


def generate_world(params: WorldParams | None = None, progress=None) -> World:
    """Simulate a world; the same params (seed included) give identical tables."""
    return Simulator(params or WorldParams()).run(progress=progress)
