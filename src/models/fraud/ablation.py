"""Linkage ablation for LightGBM: how much can account linkage add, and what bounds it.

``python -m ppx.models.fraud.ablation --world /tmp/worlds/demo`` fits one LightGBM per
head (the benchmark's settings, three seeds) on the benchmark's time split with:

* ``no_linkage`` / ``linkage`` — the benchmark's two LightGBM baselines;
* ``linkage+extra`` — plus :data:`ppx.features.fraud.EXTRA_LINKAGE_FEATURES`;
* ``no_linkage+true_ring`` — no linkage features but the world's *true* ring
  membership of the account: what perfect linkage could tell a model, so its gain
  over ``no_linkage`` bounds the gain of any linkage feature (rings are the only
  linked fraud the world plants);
* ``no_linkage+true_ring+true_false_claimer`` — also the (unlinked) false-claimer
  type: the rest of the gap to the oracle is knowledge no linkage can give.

Feature choices are read off the validation columns; test is reported beside them.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.metrics import pr_auc
from ppx.models.fraud.config import FraudConfig
from ppx.models.fraud.evaluate import fit_lightgbm, lightgbm_scores, ring_members


def run(world: str, seeds: tuple[int, ...] = (7, 8, 9)) -> pd.DataFrame:
    """Mean (and sd over seeds) PR AUC per variant, head and split."""
    from ppx.models.fraud.train import prepare

    cfg = FraudConfig()
    P = prepare(world, cfg=cfg)
    if P.truth is None:
        raise ValueError(f"{world}: the ablation needs a world with ground truth")
    X = F.fraud_features(P.requests, P.history, extra_linkage=True)
    X["true_ring"] = ring_members(P.requests, P.truth).astype(float)
    ftype = P.requests[C.CUSTOMER_ID].map(
        P.truth[C.TRUTH_CUSTOMERS].set_index(C.CUSTOMER_ID)[C.FRAUD_TYPE]
    )
    X["true_false_claimer"] = (ftype == "false_claimer").to_numpy(dtype=float)
    claim = X["is_claim"].to_numpy() > 0.5
    variants = {
        "no_linkage": F.BASE_FEATURES,
        "linkage": F.FEATURE_NAMES,
        "linkage+extra": F.FEATURE_NAMES + F.EXTRA_LINKAGE_FEATURES,
        "no_linkage+true_ring": [*F.BASE_FEATURES, "true_ring"],
        "no_linkage+true_ring+true_false_claimer": [
            *F.BASE_FEATURES,
            "true_ring",
            "true_false_claimer",
        ],
    }
    rows = []
    for name, cols in variants.items():
        vals = []
        for seed in seeds:
            s = lightgbm_scores(fit_lightgbm(X, P.y, P.masks, cols, cfg.replace(seed=seed)), X)
            r = {}
            for head, is_claim in ((F.RETURN, False), (F.CLAIM, True)):
                for split in ("val", "test"):
                    m = P.masks[split] & (claim == is_claim)
                    r[f"{head}_{split}"] = pr_auc(P.y[m], s[m])
            vals.append(r)
        v = pd.DataFrame(vals)
        row = {"variant": name}
        for k in v.columns:
            row[k] = v[k].mean()
            row[f"{k}_sd"] = v[k].std(ddof=0)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    out = run(args.world)
    cols = ["variant"] + [f"{h}_{s}" for h in (F.RETURN, F.CLAIM) for s in ("val", "test")]
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(out[cols].to_string(index=False))
        print("sd over seeds (claim test):", np.round(out["claim_test_sd"].to_numpy(), 4))


if __name__ == "__main__":
    main()
