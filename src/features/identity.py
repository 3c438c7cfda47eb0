"""Normalising and hashing identifiers so fraud features never see raw contact data.

Fraud rings re-type shared identifiers on each new account (``JOHN.DOE`` becomes
``johndoe+7``, ``+15554682185`` becomes ``(555) 468 2185``, ``St`` becomes
``STREET``). Normalising first makes those variants collide on purpose; hashing
second means the linkage graph, the training frames and the MLflow artifacts only
ever hold salted digests, never an e-mail address or a card fingerprint.

The salt is not a secret in the cryptographic sense (the inputs are low-entropy), but
it keeps digests from one deployment useless for joining against another's. Pass the
same salt at training and serving time: the served model stores the salt's own digest
and refuses requests hashed with a different one.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

import numpy as np
import pandas as pd

from ppx.data import columns as C

DEFAULT_SALT = "ppx-identity-v1"

#: The identifier kinds that link accounts, in a fixed order (feature names use them).
ID_KINDS: tuple[str, ...] = (
    C.DEVICE_ID,
    C.PAYMENT_FINGERPRINT,
    C.ADDRESS,
    C.EMAIL,
    C.PHONE,
)

_STREET_WORDS = {
    "street": "st",
    "str": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "drive": "dr",
    "lane": "ln",
    "boulevard": "blvd",
    "court": "ct",
    "place": "pl",
    "apartment": "apt",
    "suite": "ste",
}


def _blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return bool(pd.isna(value)) if not isinstance(value, str) else not value.strip()


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def normalise_email(value) -> str | None:
    """Lower-case, drop ``+tags`` and dots in the local part (mailbox aliases)."""
    if _blank(value):
        return None
    text = _ascii_fold(str(value)).strip().lower()
    if "@" not in text:
        return text or None
    local, _, domain = text.rpartition("@")
    local = local.split("+", 1)[0].replace(".", "")
    domain = domain.strip().strip(".")
    return f"{local}@{domain}" if local and domain else None


def normalise_phone(value) -> str | None:
    """Digits only, last ten kept: ``+1555…``, ``+1-555-…`` and ``(555) …`` collide."""
    if _blank(value):
        return None
    digits = re.sub(r"\D", "", str(value))
    if len(digits) < 7:
        return None
    return digits[-10:]


def normalise_address(value, region=None) -> str | None:
    """Lower-case, ASCII, punctuation stripped, street words abbreviated, plus region.

    The region is part of the key because a street address alone is ambiguous across
    regions (``12 Oak St`` exists in many towns).
    """
    if _blank(value):
        return None
    text = _ascii_fold(str(value)).lower()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    words = [_STREET_WORDS.get(w, w) for w in text.split()]
    if not words:
        return None
    key = " ".join(words)
    if not _blank(region):
        key = f"{key}|{str(region).strip().lower()}"
    return key


def normalise_token(value) -> str | None:
    """Device ids and payment fingerprints: trimmed and lower-cased, nothing else."""
    if _blank(value):
        return None
    text = str(value).strip().lower()
    return text or None


def hash_value(kind: str, normalised: str | None, salt: str = DEFAULT_SALT) -> str | None:
    """Salted SHA-256 of one normalised identifier (16 hex chars), None stays None."""
    if normalised is None:
        return None
    digest = hashlib.sha256(f"{salt}|{kind}|{normalised}".encode()).hexdigest()
    return digest[:16]


@functools.lru_cache(maxsize=8)  # checked on every scoring call
def salt_digest(salt: str = DEFAULT_SALT) -> str:
    """A fingerprint of the salt, stored with artifacts to detect a mismatch."""
    return hashlib.sha256(f"ppx-salt|{salt}".encode()).hexdigest()[:12]


def hash_column_name(kind: str) -> str:
    """``device_id`` -> ``h_device_id``: the hashed column that replaces a raw one."""
    return f"h_{kind}"


HASH_COLUMNS: tuple[str, ...] = tuple(hash_column_name(k) for k in ID_KINDS)


def hash_identities(customers: pd.DataFrame, salt: str = DEFAULT_SALT) -> pd.DataFrame:
    """Customers -> ``customer_id``, ``signup_at`` and one hashed column per identifier.

    Raw contact columns are dropped; missing identifiers hash to missing (they link
    nothing). Works on the canonical customers table and on request rows that carry
    the identity of a new account.

    Raises:
        ValueError: ``customer_id`` is missing.
    """
    if C.CUSTOMER_ID not in customers.columns:
        raise ValueError(f"hash_identities: column {C.CUSTOMER_ID!r} is required")
    out = pd.DataFrame({C.CUSTOMER_ID: customers[C.CUSTOMER_ID].to_numpy()})
    if C.SIGNUP_AT in customers.columns:
        out[C.SIGNUP_AT] = pd.to_datetime(customers[C.SIGNUP_AT]).to_numpy()
    region = customers[C.REGION] if C.REGION in customers.columns else None
    n = len(customers)
    for kind in ID_KINDS:
        if kind not in customers.columns:
            out[hash_column_name(kind)] = pd.array([None] * n, dtype="str")
            continue
        raw = customers[kind].tolist()
        if kind == C.EMAIL:
            norm = [normalise_email(v) for v in raw]
        elif kind == C.PHONE:
            norm = [normalise_phone(v) for v in raw]
        elif kind == C.ADDRESS:
            regs = region.tolist() if region is not None else [None] * n
            norm = [normalise_address(v, r) for v, r in zip(raw, regs, strict=True)]
        else:
            norm = [normalise_token(v) for v in raw]
        out[hash_column_name(kind)] = pd.array(
            [hash_value(kind, v, salt) for v in norm], dtype="str"
        )
    return out
