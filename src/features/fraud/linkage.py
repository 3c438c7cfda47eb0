"""Accounts joined by shared identifiers, and the linkage features, as of a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ppx.data import columns as C
from ppx.features.fraud.asof import to_seconds
from ppx.features.fraud.lookup import IdLookup
from ppx.features.fraud.names import BURST_DAYS, ID_SHORT, STRONG_KINDS
from ppx.features.identity import (
    ID_KINDS,
    hash_column_name,
)

if TYPE_CHECKING:
    from ppx.features.fraud.index import FraudHistoryIndex


@dataclass
class LinkageGraph:
    """Accounts joined by shared hashed identifiers.

    ``adjacency`` is the account-account matrix (any identifier), ``by_kind`` one
    matrix per identifier kind; both come from a sparse incidence product so the
    graph builds in milliseconds for tens of thousands of accounts.
    """

    customer_ids: np.ndarray
    signup_s: np.ndarray
    adjacency: sp.csr_matrix
    by_kind: dict[str, sp.csr_matrix]
    static_component: np.ndarray
    #: Per identifier kind: the distinct hashes (column order) and the account x hash
    #: incidence matrix, kept so :meth:`extend` can add new accounts without a rebuild.
    incidence: dict[str, tuple[pd.Index, sp.csr_matrix]] = field(default_factory=dict)

    @classmethod
    def build(cls, identities: pd.DataFrame) -> LinkageGraph:
        ids = identities[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
        n = len(ids)
        signup, ok = to_seconds(identities[C.SIGNUP_AT])
        signup = np.where(ok, signup, np.iinfo(np.int64).min // 4)
        by_kind = {}
        incidence = {}
        total = sp.csr_matrix((n, n), dtype=np.float32)
        for kind in ID_KINDS:
            col = identities[hash_column_name(kind)]
            present = col.notna().to_numpy()
            codes, uniques = pd.factorize(col[present])
            rows = np.flatnonzero(present)
            inc = sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float32), (rows, codes)),
                shape=(n, max(int(codes.max()) + 1 if len(codes) else 0, 1)),
            )
            incidence[kind] = (pd.Index(uniques), inc)
            a = (inc @ inc.T).tocsr()
            a.setdiag(0)
            a.eliminate_zeros()
            a.data[:] = 1.0
            by_kind[kind] = a
            total = total + a
        total = total.tocsr()
        total.data[:] = 1.0
        _, comp = connected_components(total, directed=False)
        return cls(ids, signup, total, by_kind, comp, incidence)

    def extend(self, new: pd.DataFrame) -> LinkageGraph:
        """This graph plus new accounts (hashed identities), as :meth:`build` would make it.

        Only the new accounts' rows are matched against the stored incidence, so a
        request from a brand-new account costs milliseconds instead of a full rebuild.
        The extended graph keeps no incidence of its own (extend the base graph again).
        """
        if not self.incidence:
            raise ValueError("this graph keeps no incidence matrices; use LinkageGraph.build")
        n, k = len(self.customer_ids), len(new)
        signup, ok = to_seconds(new[C.SIGNUP_AT])
        signup = np.where(ok, signup, np.iinfo(np.int64).min // 4)
        by_kind = {}
        linked = False
        for kind in ID_KINDS:
            uniques, inc = self.incidence[kind]
            hashes = new[hash_column_name(kind)].to_numpy(dtype=object)
            present = np.array([h is not None and h == h for h in hashes], dtype=bool)
            if not present.any():
                by_kind[kind] = _pad(self.by_kind[kind], k)
                continue
            hashes = hashes[present]
            codes = uniques.get_indexer(hashes)
            rows = np.flatnonzero(present)
            old = codes >= 0
            cross = sp.csr_matrix((k, n), dtype=np.float32)
            if old.any():
                inc_new = sp.csr_matrix(
                    (np.ones(old.sum(), dtype=np.float32), (rows[old], codes[old])),
                    shape=(k, inc.shape[1]),
                )
                cross = (inc_new @ inc.T).tocsr()
            # New accounts linked among themselves: equal hashes (seen before or not).
            same = hashes[:, None] == hashes[None, :]
            np.fill_diagonal(same, False)
            r, c = np.nonzero(same)
            inner = sp.csr_matrix(
                (np.ones(len(r), dtype=np.float32), (rows[r], rows[c])), shape=(k, k)
            )
            if cross.nnz == 0 and inner.nnz == 0:
                by_kind[kind] = _pad(self.by_kind[kind], k)
                continue
            a = sp.bmat([[self.by_kind[kind], cross.T], [cross, inner]], format="csr")
            a.data[:] = 1.0
            by_kind[kind] = a
            linked = True
        ids = np.concatenate([self.customer_ids, new[C.CUSTOMER_ID].to_numpy(dtype=np.int64)])
        if not linked:  # no new edge: same components, each new account on its own
            comp = np.concatenate(
                [self.static_component, self.static_component.max() + 1 + np.arange(k)]
            )
            total = _pad(self.adjacency, k)
        else:
            total = by_kind[ID_KINDS[0]]
            for kind in ID_KINDS[1:]:
                total = total + by_kind[kind]
            total = total.tocsr()
            total.data[:] = 1.0
            _, comp = connected_components(total, directed=False)
        grown = LinkageGraph(ids, np.concatenate([self.signup_s, signup]), total, by_kind, comp)
        grown._base = self  # the first n nodes are this graph's (flag times can be reused)
        return grown

    def nodes(self, customer_ids: np.ndarray) -> np.ndarray:
        """Graph node of each customer id (-1 when the graph does not hold it)."""
        ids = np.asarray(customer_ids, dtype=np.int64).reshape(-1)
        base = getattr(self, "_base", None)
        if base is not None:
            # An extension: the base graph's nodes come first and keep their lookup; only
            # the few new accounts (never in the base) are searched on their own.
            node = base.nodes(ids)
            n = len(base.customer_ids)
            missing = node < 0
            if missing.any():
                new = IdLookup(self.customer_ids[n:], C.CUSTOMER_ID).positions(ids[missing])
                node[missing] = np.where(new >= 0, new + n, -1)
            return node
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = self._lookup = IdLookup(self.customer_ids, C.CUSTOMER_ID)
        return lookup.positions(ids)

    def component_members(self, components: np.ndarray) -> np.ndarray:
        """The nodes of the given static components, ascending.

        The graph keeps its nodes grouped by component (built on first use), so the few
        components of one request are read as slices instead of testing every node. An
        extension (built per request, used once) tests every node instead.
        """
        comp = self.static_component
        if getattr(self, "_base", None) is not None:
            return np.flatnonzero(np.isin(comp, components))
        groups = getattr(self, "_groups", None)
        if groups is None:
            order = np.argsort(comp, kind="stable")
            starts = np.searchsorted(comp[order], np.arange(comp.max(initial=-1) + 2))
            groups = self._groups = (order, starts.tolist())
        order, starts = groups
        parts = [order[starts[c] : starts[c + 1]] for c in np.asarray(components).tolist()]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=order.dtype)


def _pad(a: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """A square CSR matrix with ``k`` empty rows and columns appended (no copy of data)."""
    n = a.shape[0]
    indptr = np.concatenate([a.indptr, np.full(k, a.indptr[-1], dtype=a.indptr.dtype)])
    return sp.csr_matrix((a.data, a.indices, indptr), shape=(n + k, n + k))


def linkage_edges(graph: LinkageGraph) -> pd.DataFrame:
    """The graph as an edge list (one row per linked pair and identifier kind).

    Written next to the history snapshot so the served model's graph can be audited
    and checked against the one rebuilt at load time; it holds only account ids.
    """
    frames = []
    for kind, a in graph.by_kind.items():
        coo = sp.triu(a, k=1).tocoo()
        frames.append(
            pd.DataFrame(
                {
                    "src": graph.customer_ids[coo.row],
                    "dst": graph.customer_ids[coo.col],
                    "kind": ID_SHORT[kind],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["kind"] = out["kind"].astype(str)
    return out


def _explode(adj: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query position, neighbour index) pairs for the given node rows of a CSR matrix."""
    starts, ends = adj.indptr[rows], adj.indptr[rows + 1]
    lens = ends - starts
    q = np.repeat(np.arange(len(rows)), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    nb = adj.indices[np.repeat(starts, lens) + offs]
    return q, nb


def _component_sweep(
    graph: LinkageGraph,
    node: np.ndarray,
    t_s: np.ndarray,
    flag_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Component size and flagged-account count per query, as of each query time.

    A single time-ordered pass: accounts join at signup (union with neighbours that
    already exist), flags arrive when an account's first confirmed fraud becomes
    known, queries read their component. Only static components that contain a
    queried account are swept, so one online request touches a handful of nodes.
    """
    members = graph.component_members(np.unique(graph.static_component[node]))
    # Singletons in the static graph need no sweep: size 1 (if signed up), no neighbours.
    events = []  # (time, order, kind, payload); order: queries (0) before joins (1)/flags (2)
    for i, (u, t) in enumerate(zip(node, t_s, strict=True)):
        events.append((int(t), 0, i, int(u)))
    never = np.iinfo(np.int64).max
    for u in members:
        events.append((int(graph.signup_s[u]), 1, -1, int(u)))
        if flag_s[u] != never:
            events.append((int(flag_s[u]), 2, -1, int(u)))
    events.sort(key=lambda e: (e[0], e[1]))
    uf = nx.utils.UnionFind()
    joined: set[int] = set()
    flagged: dict[int, int] = {}
    size = np.zeros(len(node))
    fraud = np.zeros(len(node))
    adj = graph.adjacency
    for _, kind, qi, u in events:
        if kind == 0:
            if u in joined:
                r = uf[u]
                size[qi] = uf.weights[r]
                fraud[qi] = flagged.get(r, 0)
            else:
                size[qi] = 1.0
            continue
        if kind == 1:
            joined.add(u)
            uf[u]
            for v in adj.indices[adj.indptr[u] : adj.indptr[u + 1]]:
                v = int(v)
                if v in joined:
                    ru, rv = uf[u], uf[v]
                    if ru != rv:
                        f = flagged.pop(ru, 0) + flagged.pop(rv, 0)
                        uf.union(ru, rv)
                        flagged[uf[ru]] = f
        else:
            if u not in joined:
                joined.add(u)
            r = uf[u]
            flagged[r] = flagged.get(r, 0) + 1
    return size, fraud


def linkage_features(
    graph: LinkageGraph,
    node: np.ndarray,
    cust: np.ndarray,
    t_s: np.ndarray,
    signup_s: np.ndarray,
    index: FraudHistoryIndex,
    extra: bool,
) -> dict:
    """Neighbour and component features of each request's account, as of its time."""
    n = len(node)
    out: dict[str, np.ndarray] = {}
    r_idx, c_idx, l_idx, od_idx = index.r_idx, index.c_idx, index.l_idx, index.od_idx
    flag_s = index.flag_seconds(graph)
    q, nb = _explode(graph.adjacency, node)
    linked = len(nb) > 0  # else no identifier kind links them either (adjacency is the union)
    alive = graph.signup_s[nb] < t_s[q]
    q, nb = q[alive], nb[alive]
    deg = np.bincount(q, minlength=n).astype(float)
    out["degree"] = deg
    for kind in ID_KINDS:
        if not linked:
            out[f"n_shared_{ID_SHORT[kind]}"] = np.zeros(n)
            continue
        qk, nk = _explode(graph.by_kind[kind], node)
        ak = graph.signup_s[nk] < t_s[qk]
        out[f"n_shared_{ID_SHORT[kind]}"] = np.bincount(qk[ak], minlength=n).astype(float)
    nb_flag = (flag_s[nb] < t_s[q]).astype(float)
    nb_fraud = np.bincount(q, weights=nb_flag, minlength=n)
    size, comp_fraud = _component_sweep(graph, node, t_s, flag_s)
    own_flag = (flag_s[node] < t_s).astype(float)
    out["component_size"] = size
    out["nb_fraud_accounts"] = nb_fraud
    out["nb_fraud_rate"] = nb_fraud / np.maximum(deg, 1.0)
    out["component_fraud_accounts"] = np.maximum(comp_fraud - own_flag, 0.0)
    burst = np.abs(graph.signup_s[nb] - signup_s[q]) <= BURST_DAYS * 86_400
    out["nb_burst"] = np.bincount(q, weights=burst.astype(float), minlength=n)
    nb_cust = graph.customer_ids[nb]
    nb_t = t_s[q]
    nb_rets = r_idx.at(nb_cust, nb_t)
    nb_claims = c_idx.at(nb_cust, nb_t)
    out["nb_returns"] = np.bincount(q, weights=nb_rets.count(), minlength=n)
    out["nb_hv_returns"] = np.bincount(q, weights=nb_rets.sum("hv"), minlength=n)
    out["nb_claims"] = np.bincount(q, weights=nb_claims.count(), minlength=n)
    out["nb_unexplained_claims"] = np.bincount(q, weights=nb_claims.sum("unexplained"), minlength=n)
    out["nb_fraud_labels"] = np.bincount(
        q, weights=l_idx.sum("fraud", nb_cust, t_s[q]), minlength=n
    )
    if not extra:
        return out
    # Strong edges (not address) and per-kind neighbour fraud.
    strong_deg = np.zeros(n)
    strong_fraud = np.zeros(n)
    strong_pairs = set()
    for kind in STRONG_KINDS:
        qk, nk = _explode(graph.by_kind[kind], node)
        ak = graph.signup_s[nk] < t_s[qk]
        qk, nk = qk[ak], nk[ak]
        fk = (flag_s[nk] < t_s[qk]).astype(float)
        if kind == C.DEVICE_ID:
            out["nb_device_fraud"] = np.bincount(qk, weights=fk, minlength=n)
        if kind == C.PAYMENT_FINGERPRINT:
            out["nb_payment_fraud"] = np.bincount(qk, weights=fk, minlength=n)
        strong_pairs.update(zip(qk.tolist(), nk.tolist(), strict=True))
    if strong_pairs:
        sq, sn = np.array(sorted(strong_pairs), dtype=np.int64).T
        strong_deg = np.bincount(sq, minlength=n).astype(float)
        strong_fraud = np.bincount(sq, weights=(flag_s[sn] < t_s[sq]).astype(float), minlength=n)
    out["strong_degree"] = strong_deg
    out["nb_strong_fraud_accounts"] = strong_fraud
    # Two hops: accounts reached through an existing neighbour, neither the account
    # itself nor a direct neighbour; both hops must exist at the request time.
    p2, w = _explode(graph.adjacency, nb)
    q2 = q[p2]
    a2 = (graph.signup_s[w] < t_s[q2]) & (w != node[q2])
    q2, w = q2[a2], w[a2]
    big = np.int64(len(graph.customer_ids) + 1)
    key2 = np.unique(q2.astype(np.int64) * big + w)
    key2 = key2[~np.isin(key2, q.astype(np.int64) * big + nb)]
    q2, w = key2 // big, key2 % big
    out["hop2_accounts"] = np.bincount(q2, minlength=n).astype(float)
    out["hop2_fraud_accounts"] = np.bincount(
        q2, weights=(flag_s[w] < t_s[q2]).astype(float), minlength=n
    )
    # Neighbours' claim behaviour and label outcomes.
    nb_deliv = np.bincount(q, weights=od_idx.count(nb_cust, t_s[q]), minlength=n)
    out["nb_claim_rate"] = out["nb_claims"] / (nb_deliv + 2.0)
    out["nb_fast_claims"] = np.bincount(q, weights=c_idx.sum("fast", nb_cust, t_s[q]), minlength=n)
    nb_labels = np.bincount(q, weights=l_idx.count(nb_cust, t_s[q]), minlength=n)
    out["nb_fraud_label_rate"] = out["nb_fraud_labels"] / (nb_labels + 1.0)
    out["component_fraud_share"] = out["component_fraud_accounts"] / np.maximum(size, 1.0)
    return out
