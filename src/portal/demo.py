"""The magic link ``make demo`` prints: a demo customer with a late parcel.

Without ``PPX_PORTAL_SECRET`` a random key is written to ``data/portal.secret`` (ignored by
git, readable by the owner only) and the settings read it from there, so the printed link
works with ``ppx serve --portal`` on the same machine without further set-up.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ppx.config import Settings, get_settings

#: Where ``ppx serve --portal`` listens by default.
LOCAL_PORTAL = "http://127.0.0.1:3002"


@dataclass(frozen=True)
class DemoLink:
    url: str
    customer_id: int
    order_id: int
    story: str  # "in transit, past its promised date" or "delivered late" / "lost"


def ensure_secret(settings: Settings) -> Settings:
    """The settings with a portal secret, writing a local one when none is configured."""
    if settings.portal_secret:
        return settings
    path = settings.portal_secret_file
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    get_settings.cache_clear()  # the next get_settings() reads the file
    return settings.model_copy(update={"portal_secret": key})


def demo_link(world: Path, settings: Settings | None = None) -> DemoLink:
    """A link to the tracking page of a late order in ``world`` (an open one if any)."""
    from ppx.portal.data import StoreData
    from ppx.portal.services import portal_link

    settings = ensure_secret(settings or get_settings())
    if not settings.portal_url:
        settings = settings.model_copy(update={"portal_url": LOCAL_PORTAL})
    store = StoreData(world)
    late = store.open_late_orders()
    story = "in transit, past its promised date"
    if not len(late):
        late = store.late_orders()
        story = "delivered late or lost"
    if not len(late):
        raise ValueError(f"{world}: no late order to show")
    row = late.iloc[0]
    cid, oid = int(row["customer_id"]), int(row["order_id"])
    return DemoLink(portal_link(settings, cid, order_id=oid), cid, oid, story)
