"""``make demo``'s magic link: a late order of the demo world, opening its tracking page."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ppx.config import Settings


def test_demo_link_opens_the_late_order(tiny_world, tmp_path, make_portal, monkeypatch):
    from ppx.portal.demo import demo_link

    monkeypatch.delenv("PPX_PORTAL_SECRET")
    settings = Settings(portal_secret_file=tmp_path / "portal.secret")
    assert settings.portal_secret is None
    link = demo_link(tiny_world[1], settings)
    secret_file = tmp_path / "portal.secret"
    assert secret_file.is_file() and (secret_file.stat().st_mode & 0o077) == 0
    again = Settings(portal_secret_file=secret_file)  # the server reads the same key
    monkeypatch.setenv("PPX_PORTAL_SECRET", again.portal_secret)

    p = make_portal()
    p.settings = again
    from ppx.portal.app import create_app

    p.app = create_app(p.engine, settings=again, store=p.store)
    parts = urlsplit(link.url)
    r = p.client().get(f"{parts.path}?{parts.query}")
    assert r.status_code == 303
    assert r.headers["location"].endswith(f"/orders/{link.order_id}")
    order = p.store.order(link.customer_id, link.order_id)
    assert order.open and order.promised_date < p.store.now.date()
    assert os.environ["PPX_PORTAL_SECRET"] == again.portal_secret
