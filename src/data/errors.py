"""The error a caller's request earns: wrong input, as opposed to a fault of ours.

Serving maps :class:`RequestError` (and only it) to 422 with its message; any other
exception from inside a model is a bug of ours, logged with its traceback and answered
500. A plain ``ValueError`` deep in pandas or numpy therefore never passes for the
caller's fault.

A request that does not match its schema is refused before any model sees it (400);
:func:`error_message` words pydantic's errors for that answer, in one place for the
model service and the decision service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class RequestError(ValueError):
    """A request cannot be scored as given; the message names the field (and the row)."""


#: How every date and date-time in a request is written, said in every error about one.
ISO_DATE = "ISO 8601, e.g. 2026-12-03"
ISO_DATETIME = "ISO 8601, e.g. 2026-12-03 or 2026-12-03T09:00:00"

#: pydantic's error types of a date field / a date-time field whose value did not parse
_DATE_ERRORS = frozenset(
    {"date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"}
)
_DATETIME_ERRORS = frozenset(
    {"datetime_type", "datetime_parsing", "datetime_from_date_parsing", "datetime_object_invalid"}
)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def error_message(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) -> its message.

    pydantic says "Input should be a valid datetime or date, invalid character in year"
    of ``"03/12/2026"``: neither which field nor what it wants. A date or date-time that
    did not parse is said with the field's path, the value and the format (ISO 8601,
    with an example); any other error keeps pydantic's message. Formatting only: it runs
    once a request has failed, never on one that validates.
    """
    kind = error.get("type")
    if kind not in _DATE_ERRORS and kind not in _DATETIME_ERRORS:
        return str(error.get("msg", ""))
    where = ".".join(str(p) for p in error.get("loc", ())) or "value"
    what, fmt = ("a date", ISO_DATE) if kind in _DATE_ERRORS else ("a date-time", ISO_DATETIME)
    got = f"{_shown(error['input'])} is not" if "input" in error else "not"
    return f"{where}: {got} {what}; expected {fmt}"


def located_message(error: Mapping[str, Any]) -> str:
    """``field.path: message`` for one pydantic error, the path said once."""
    where = ".".join(str(p) for p in error.get("loc", ())) or "(body)"
    msg = error_message(error)
    return msg if msg.startswith(f"{where}: ") else f"{where}: {msg}"


def with_clear_messages(err: ValidationError) -> ValidationError:
    """The same errors (types and locations kept), each with :func:`error_message`."""
    from pydantic_core import PydanticCustomError
    from pydantic_core import ValidationError as CoreValidationError

    return CoreValidationError.from_exception_data(
        err.title,
        [
            {
                "type": PydanticCustomError(e["type"], "{msg}", {"msg": error_message(e)}),
                "loc": e["loc"],
                "input": e.get("input"),
            }
            for e in err.errors(include_url=False)
        ],
    )
