"""The error a caller's request earns: wrong input, as opposed to a fault of ours.

Serving maps :class:`RequestError` (and only it) to 422 with its message; any other
exception from inside a model is a bug of ours, logged with its traceback and answered
500. A plain ``ValueError`` deep in pandas or numpy therefore never passes for the
caller's fault.
"""

from __future__ import annotations


class RequestError(ValueError):
    """A request cannot be scored as given; the message names the field (and the row)."""
