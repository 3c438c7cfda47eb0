"""A brand's own return-reason labels, mapped onto ppx's reasons.

Returns tools label reasons in their own words ("Too small", "Item arrived broken",
"DOESN'T FIT"). A label is matched case-insensitively, after folding punctuation,
apostrophes and separators to single spaces, against a list of known phrasings of each
reason (:data:`SYNONYMS`); only whole labels match, never a word inside a longer one
("not damaged, just too small" is not read as damaged). A label that matches none is
kept as reason ``other``; the label itself is kept beside the reason in every row (column
``reason_label``), so nothing the brand wrote is lost. A value that already is one of
ppx's reasons ("damaged", "NOT_AS_DESCRIBED") stays that reason.

Both kinds of store go through :func:`import_reasons`. A texts-only store (return
comments without orders) keeps every reason of :data:`ppx.data.columns.TEXT_RETURN_REASONS`
and leaves a blank label's reason unknown. A store of orders holds the fraud model's
reasons, :data:`ppx.data.columns.RETURN_REASONS`: a size or fit label is recorded as
``changed_mind`` (:data:`FOLDED` says why) and a blank one as ``other``, the reason the
rules layer gives a return event that states none (the fraud model has no unknown reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from ppx.data import columns as C
from ppx.data.stores.build import ImportReport

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
        "didnt like it",
        "dont like it",
        "did not like it",
        "didnt like the colour",
        "didnt like the color",
        "did not like the colour",
        "did not like the color",
        "dont like the colour",
        "dont like the color",
        "didnt like the style",
        "did not like the style",
        "didnt like the look",
        "not my style",
        "not my colour",
        "not my color",
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


#: Reasons a store of orders records in place of a text-only reason. Its returns feed the
#: fraud model, whose reason one-hots, request schema and the rules layer's return events
#: know :data:`ppx.data.columns.RETURN_REASONS` alone, so ``size_fit`` has to become one
#: of those. A size or fit return is the customer's choice about a correct, undamaged
#: item: the case return policies call a change of mind, and in the synthetic world
#: ``changed_mind`` is the commonest honest reason and the one fraud uses least of the
#: three it uses. ``not_as_described`` would give honest size exchanges the reason fraud
#: uses most; ``other`` would mix them with labels ppx could not read. The label, kept in
#: ``reason_label``, still says "Too small", and the feedback corpus reads it.
FOLDED = {C.SIZE_FIT: "changed_mind"}


@dataclass
class ReasonMapping:
    """What :func:`map_reasons` did: per row the reason and the label, and the counts."""

    reasons: pd.Series  # a ppx reason, or ``blank`` (None unless given) for a blank label
    labels: pd.Series  # the export's own text, stripped (None when blank)
    labelled: int  # rows with a label
    mapped: int  # of which matched a ppx reason (an "other" label counts as mapped)
    unmapped: pd.Series  # counts of the labels that matched nothing, most frequent first
    allowed: tuple[str, ...] = C.TEXT_RETURN_REASONS  # the reasons the rows may hold
    folded: dict[str, int] = field(default_factory=dict)  # per reason of FOLDED: rows moved
    blank: int = 0  # rows without a label
    blank_reason: str | None = None  # what those rows hold (None: unknown)


def _strip(values: pd.Series) -> pd.Series:
    s = values.astype("string").str.strip().reset_index(drop=True)
    return s.where(s.notna() & (s != ""))


def map_reasons(
    values: pd.Series,
    allowed: tuple[str, ...] = C.TEXT_RETURN_REASONS,
    blank: str | None = None,
) -> ReasonMapping:
    """Map an export's reason column onto ``allowed``: :data:`ppx.data.columns.
    TEXT_RETURN_REASONS` for a texts-only store, :data:`ppx.data.columns.RETURN_REASONS`
    (with :data:`FOLDED`) for a store of orders. Any column type is read as text (a
    numeric code becomes its digits, an unknown label). A blank label gets ``blank``."""
    labels = _strip(values)
    found = labels.map(lambda v: _LOOKUP.get(fold(v)) if isinstance(v, str) else None)
    known = found.notna()
    present = labels.notna()
    reasons = found.where(known, "other").where(present).astype(object)
    folded = {}
    for reason, into in FOLDED.items():
        hit = (reasons == reason).to_numpy()
        if reason not in allowed and hit.any():
            reasons[hit] = into
            folded[reason] = int(hit.sum())
    return ReasonMapping(
        reasons=reasons.where(present, blank),
        labels=labels.astype(object).where(present, None),
        labelled=int(present.sum()),
        mapped=int((present & known).sum()),
        unmapped=labels[present & ~known].value_counts(),
        allowed=tuple(allowed),
        folded=folded,
        blank=int((~present).sum()),
        blank_reason=blank,
    )


def mapping_note(result: ReasonMapping, where: str, top: int = 5) -> str:
    """The import note: how many labels mapped, how many fell to ``other`` and which."""
    note = (
        f"{where}: return reasons: {result.mapped} of {result.labelled} labelled returns map "
        f"to ppx's reasons ({', '.join(result.allowed)})"
    )
    n_other = result.labelled - result.mapped
    if n_other:
        shown = ", ".join(f"{k!r} ({v})" for k, v in result.unmapped.head(top).items())
        more = f" and {len(result.unmapped) - top} more" if len(result.unmapped) > top else ""
        note += (
            f"; {n_other} fell to 'other' ({shown}{more}), their labels kept in column "
            f"{C.REASON_LABEL!r}"
        )
    for reason, n in result.folded.items():
        note += (
            f"; {n} {reason} label{'s' if n > 1 else ''} recorded as {FOLDED[reason]!r} (the "
            f"fraud model's reasons have no {reason}), the label kept"
        )
    if result.blank and result.blank_reason is not None:
        note += f"; {result.blank} blank, recorded as {result.blank_reason!r}"
    return note


def import_reasons(
    values: pd.Series,
    where: str,
    report: ImportReport,
    allowed: tuple[str, ...] = C.TEXT_RETURN_REASONS,
    blank: str | None = None,
    given_labels: pd.Series | None = None,
) -> ReasonMapping:
    """Every import's reason column: mapped by :func:`map_reasons`, its note added to the
    report. ``given_labels``: the export's own ``reason_label`` column (a store written by
    ppx and exported again), kept as the labels in place of the reason's text (a blank
    one stays blank)."""
    result = map_reasons(values, allowed, blank)
    if given_labels is not None:
        given = _strip(given_labels).astype(object)
        result.labels = given.where(given.notna(), None)
    report.note(mapping_note(result, where))
    return result
