"""Where things are: warehouse and destination regions, distances, carrier shares."""

from __future__ import annotations

import numpy as np

from ppx.data import columns as C

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


def distance_km(wh: np.ndarray, dest: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    xy = {r: np.array(v) for r, v in REGION_XY.items()}
    a = np.stack([xy[WAREHOUSE_REGION[w]] for w in C.WAREHOUSES])
    b = np.stack([xy[r] for r in C.REGIONS])
    wi = np.searchsorted(np.array(C.WAREHOUSES), wh)
    di = region_index(dest)
    d = np.linalg.norm(a[wi] - b[di], axis=1)
    return np.maximum(40.0, d + rng.normal(0, 60, len(d))).round(1)


def region_index(regions: np.ndarray) -> np.ndarray:
    lookup = {r: i for i, r in enumerate(C.REGIONS)}
    return np.fromiter((lookup[r] for r in regions), dtype=np.int64, count=len(regions))
