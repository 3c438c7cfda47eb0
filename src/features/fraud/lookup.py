"""Id -> row position maps built once and queried per request by binary search."""

from __future__ import annotations

import numpy as np


class IdLookup:
    """The position of each id in a fixed array of distinct int64 ids (-1 when absent).

    What ``pd.Index(ids).get_indexer(query)`` returns, from a sorted copy of the ids
    made once: a query is one ``searchsorted``, so the served scorer pays microseconds
    per request where building and probing a pandas hash table cost tens of them, and a
    training call with tens of thousands of rows costs about the same either way.

    Raises:
        ValueError: ``ids`` holds a duplicate (a position would be ambiguous).
    """

    def __init__(self, ids: np.ndarray, what: str = "id"):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]
        dup = self.sorted[1:] == self.sorted[:-1]
        if dup.any():
            raise ValueError(f"duplicate {what} {self.sorted[1:][dup][:3].tolist()}")

    def __len__(self) -> int:
        return len(self.sorted)

    def positions(self, query) -> np.ndarray:
        """Position of each queried id in the original array; -1 where it is absent."""
        q = np.asarray(query, dtype=np.int64).reshape(-1)
        if not len(self.sorted):
            return np.full(len(q), -1, dtype=np.intp)
        at = np.minimum(np.searchsorted(self.sorted, q), len(self.sorted) - 1)
        return np.where(self.sorted[at] == q, self.order[at], -1)

    def contains(self, query) -> np.ndarray:
        """Whether each queried id is in the array."""
        q = np.asarray(query, dtype=np.int64).reshape(-1)
        if not len(self.sorted):
            return np.zeros(len(q), dtype=bool)
        at = np.minimum(np.searchsorted(self.sorted, q), len(self.sorted) - 1)
        return self.sorted[at] == q
