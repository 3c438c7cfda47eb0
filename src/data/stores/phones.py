"""``customers.phone`` in E.164 (``+4915123456789``), the form the SMS gateway accepts.

Every export format's customers pass through :func:`normalise_phones` before the store is
validated. A number written with its country code (``+44 20 7946 0958``) is read as
such; a national number (``(202) 555-0143``, ``0151 23456789``) needs the brand's region
(``--phone-region US``, an ISO 3166 country code), and without one it is left blank. A
number that does not parse, a national number that is not a valid number of the region
(wrong length, an unassigned range), or an international one of impossible length for
its country, is left blank too: a blank phone means no SMS, a wrong one would text a
stranger. The raw values are not kept (personal data); the import note counts each kind
and shows a few rows with their values masked to the last two digits.
"""

from __future__ import annotations

import pandas as pd
import phonenumbers

from ppx.data import columns as C
from ppx.data.stores.build import ImportReport
from ppx.data.stores.read import StoreImportError, rows_text

#: how many refused values a note shows
SHOWN = 3


def check_region(region: str | None) -> str | None:
    """The region upper-cased, or a refusal naming the option when libphonenumber does
    not know it."""
    if region is None or not region.strip():
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise StoreImportError(
            f"phone region {region!r} (--phone-region, the mapping's phone_region or "
            "PPX_PHONE_REGION): not a region code (ISO 3166 two letters: US, DE, GB)"
        )
    return code


def mask(raw: str) -> str:
    """A phone number with every digit but the last two replaced by ``x``."""
    digits = [i for i, ch in enumerate(raw) if ch.isdigit()]
    hide = set(digits[:-2])
    return "".join("x" if i in hide else ch for i, ch in enumerate(raw))


def to_e164(raw: str, region: str | None) -> tuple[str | None, str | None]:
    """``(number, None)`` in E.164, or ``(None, why)``: ``"no region"`` or ``"invalid"``."""
    text = raw.strip()
    if not text.startswith("+") and region is None:
        return None, "no region"
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, "invalid"
    # A national number is read through a region, so it must be a valid number of that
    # region (a wrong region rarely gives one). A number the brand wrote with its country
    # code cannot be misread that way; it only needs a possible length for its country,
    # so reserved and fictional ranges (+1 555 01xx, the synthetic world's) are kept.
    check = (
        phonenumbers.is_possible_number if text.startswith("+") else phonenumbers.is_valid_number
    )
    if not check(number):
        return None, "invalid"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def normalise_phones(
    customers: pd.DataFrame,
    region: str | None,
    report: ImportReport,
    source: str,
    file_rows: bool = True,
) -> pd.DataFrame:
    """``customers`` with ``phone`` in E.164 or blank, and one note per kind of blank.

    ``file_rows``: the table's positions are the export file's data rows (a canonical
    customers file); platform exports build customers from orders, so there the
    positions are the customers table's.
    """
    if C.PHONE not in customers or customers.empty:
        return customers
    raw = customers[C.PHONE]
    given = raw.notna() & (raw.astype("string").str.strip() != "")
    out: list[str | None] = [None] * len(customers)
    refused: dict[str, list[tuple[int, str]]] = {"invalid": [], "no region": []}
    cache: dict[str, tuple[str | None, str | None]] = {}
    for pos, (value, has) in enumerate(zip(raw.tolist(), given.tolist(), strict=True)):
        if not has:
            continue
        text = str(value)
        if text not in cache:
            cache[text] = to_e164(text, region)
        number, why = cache[text]
        if number is None:
            refused[why].append((pos, text))
        out[pos] = number
    customers = customers.copy()
    customers[C.PHONE] = pd.Series(out, index=customers.index, dtype=object)
    for why, found in refused.items():
        if not found:
            continue
        shown = ", ".join(f"{pos}: {mask(text)!r}" for pos, text in found[:SHOWN])
        what = (
            "without a country code and no --phone-region to read them by"
            if why == "no region"
            else "not valid numbers" + (f" (region {region})" if region else "")
        )
        rows = rows_text([p for p, _ in found], file_rows)
        report.note(
            f"{source}: {len(found)} phones {what}, left blank (no SMS to them); "
            f"customers {rows}; e.g. {shown}"
        )
    return customers
