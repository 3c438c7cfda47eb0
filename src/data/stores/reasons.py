"""A brand's own return-reason labels, mapped onto ppx's reasons.

Returns tools label reasons in their own words ("Too small", "Item arrived broken",
"DOESN'T FIT"). A label is matched case-insensitively, after folding punctuation,
apostrophes and separators to single spaces, against a list of known phrasings of each
reason (:data:`SYNONYMS`); only whole labels match, never a word inside a longer one
("not damaged, just too small" is not read as damaged). A label that matches none is
kept as reason ``other``; the label itself is kept beside the reason in every row, so
nothing the brand wrote is lost. A blank label leaves the reason unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from ppx.data import columns as C

#: ppx reason: the labels (folded, see :func:`fold`) that mean it
SYNONYMS: dict[str, tuple[str, ...]] = {
    C.SIZE_FIT: (
        "size fit",
        "size and fit",
        "size",
        "sizing",
        "fit",
        "size issue",
        "sizing issue",
        "fit issue",
        "too small",
        "too big",
        "too large",
        "too tight",
        "too loose",
        "too short",
        "too long",
        "doesnt fit",
        "does not fit",
        "didnt fit",
        "did not fit",
        "does not fit well",
        "doesnt fit well",
        "poor fit",
        "bad fit",
        "wrong size",
        "wrong size ordered",
        "ordered wrong size",
        "runs small",
        "runs large",
        "runs big",
        "size too small",
        "size too big",
        "size too large",
        "item too small",
        "item too big",
    ),
    "damaged": (
        "damaged",
        "broken",
        "defective",
        "faulty",
        "damaged item",
        "item damaged",
        "defective item",
        "item defective",
        "faulty item",
        "arrived damaged",
        "arrived broken",
        "damaged in transit",
        "damaged on arrival",
        "broken on arrival",
        "doesnt work",
        "does not work",
        "not working",
        "stopped working",
        "torn",
        "ripped",
        "stained",
        "manufacturing defect",
        "defect",
    ),
    "changed_mind": (
        "changed mind",
        "changed my mind",
        "change of mind",
        "no longer needed",
        "no longer wanted",
        "no longer want",
        "dont want",
        "do not want",
        "not needed",
        "unwanted",
        "dont like",
        "do not like",
        "didnt like",
        "did not like",
        "ordered by mistake",
        "bought by mistake",
        "accidental order",
        "found better price",
        "better price elsewhere",
        "cheaper elsewhere",
        "not wanted",
    ),
    "not_as_described": (
        "not as described",
        "not as pictured",
        "not as shown",
        "not as expected",
        "not as advertised",
        "different from description",
        "different from picture",
        "different from photo",
        "looks different",
        "looks different than pictured",
        "inaccurate description",
        "description inaccurate",
        "misleading description",
        "not like the picture",
        "not like the photo",
        "poor quality",
        "quality",
        "quality not as expected",
        "colour not as shown",
        "color not as shown",
    ),
    "wrong_item": (
        "wrong item",
        "wrong item sent",
        "wrong item received",
        "received wrong item",
        "sent wrong item",
        "wrong product",
        "wrong product sent",
        "incorrect item",
        "incorrect item sent",
        "not what i ordered",
        "wrong order",
        "wrong colour sent",
        "wrong color sent",
        "wrong size sent",
        "item not ordered",
    ),
    "other": ("other", "others", "other reason"),
}


def fold(label: str) -> str:
    """A label for matching: lower case, apostrophes dropped, every run of other
    punctuation, underscores or spaces made one space ("DOESN'T-FIT" -> "doesnt fit")."""
    s = re.sub(r"['\u2019`]", "", str(label).lower())
    return re.sub(r"[\W_]+", " ", s).strip()


_LOOKUP = {fold(canon): canon for canon in SYNONYMS} | {
    fold(label): canon for canon, labels in SYNONYMS.items() for label in labels
}


@dataclass
class ReasonMapping:
    """What :func:`map_reasons` did: per row the reason and the label, and the counts."""

    reasons: pd.Series  # a ppx reason, or None for a blank label
    labels: pd.Series  # the export's own text, stripped (None when blank)
    labelled: int  # rows with a label
    mapped: int  # of which matched a ppx reason (an "other" label counts as mapped)
    unmapped: pd.Series  # counts of the labels that matched nothing, most frequent first


def map_reasons(values: pd.Series) -> ReasonMapping:
    """Map an export's reason column onto :data:`ppx.data.columns.TEXT_RETURN_REASONS`."""
    s = values.astype("string").str.strip().reset_index(drop=True)
    labels = s.where(s.notna() & (s != ""))
    found = labels.map(lambda v: _LOOKUP.get(fold(v)) if isinstance(v, str) else None)
    known = found.notna()
    present = labels.notna()
    reasons = found.where(known, "other").where(present)
    return ReasonMapping(
        reasons=reasons.astype(object).where(present, None),
        labels=labels.astype(object).where(present, None),
        labelled=int(present.sum()),
        mapped=int((present & known).sum()),
        unmapped=labels[present & ~known].value_counts(),
    )


def mapping_note(result: ReasonMapping, where: str, top: int = 5) -> str:
    """The import note: how many labels mapped, how many fell to ``other`` and which."""
    note = (
        f"{where}: return reasons: {result.mapped} of {result.labelled} labelled returns map "
        f"to ppx's reasons ({', '.join(C.TEXT_RETURN_REASONS)})"
    )
    n_other = result.labelled - result.mapped
    if n_other:
        shown = ", ".join(f"{k!r} ({v})" for k, v in result.unmapped.head(top).items())
        more = f" and {len(result.unmapped) - top} more" if len(result.unmapped) > top else ""
        note += (
            f"; {n_other} fell to 'other' ({shown}{more}), their labels kept in column "
            f"{C.REASON_LABEL!r}"
        )
    return note
