"""Screenshots of every portal page at a phone's and a desktop's width (docs/portal/).

    python -m ppx.portal.screenshots --out docs/portal [--store PATH] [--model-service-url URL]

Builds what a shopper would see: the portal (in this process, under uvicorn) over a
fresh ledger seeded for one customer of the store, as ``ppx bench portal`` does (their
running subscriptions, a points balance, one redeemed voucher), the policy with save offers
on (``src/rules/policy/save_offers.yaml``, or ``PPX_POLICY``), and the real models: the
model service at ``--model-service-url``, or one started here from the registry (alias
``champion``). Headless Chromium (the system's, through Playwright) opens the magic link
and saves one full-page PNG per page and width: ``<page>-phone.png`` (375 px) and
``<page>-desktop.png`` (1280 px). The cancel flow is driven through the page itself, so
the save-offer screenshot shows a real offer.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ppx.config import PROJECT_ROOT

WIDTHS = {"phone": (375, 812), "desktop": (1280, 900)}
SAVE_POLICY = PROJECT_ROOT / "src" / "rules" / "policy" / "save_offers.yaml"


@contextlib.contextmanager
def _model_service(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    from ppx.serve.launch import running_service

    with running_service() as server:
        yield server.url


@contextlib.contextmanager
def _portal(store_path: Path, models_url: str, secret: str, ledger_url: str) -> Iterator[str]:
    """The portal app under uvicorn in a thread on a free port; yields its URL."""
    from ppx.config import Settings
    from ppx.portal.app import create_app
    from ppx.portal.data import load_store
    from ppx.rules.engine import DecisionEngine
    from ppx.rules.ledger import Ledger
    from ppx.rules.messages.preferences import PreferenceStore
    from ppx.rules.model_client import ModelClient
    from ppx.rules.policy import load_policy
    from ppx.serve.launch import app_in_thread

    policy = load_policy(os.environ.get("PPX_POLICY") or SAVE_POLICY)
    ledger = Ledger(ledger_url)
    # generous: a screenshot waits for the window rather than show "unavailable"
    models = ModelClient(models_url, timeout=20.0)
    engine = DecisionEngine(policy, models, ledger, PreferenceStore(ledger.engine, policy))
    app = create_app(engine, settings=Settings(portal_secret=secret), store=load_store(store_path))
    try:
        with app_in_thread(app, start_timeout=60) as url:
            yield url
    finally:
        ledger.dispose()


def _shoot(page, out: Path, name: str, width: str) -> Path:
    path = out / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def take(
    out: Path, store_path: Path, model_service_url: str | None = None, lang: str = "en"
) -> list[Path]:
    """Every page at both widths; returns the files written."""
    import secrets

    from playwright.sync_api import sync_playwright

    from ppx.portal.access import make_link_token
    from ppx.portal.bench import pick_customer, seed_ledger
    from ppx.portal.data import load_store
    from ppx.rules.subscriptions.importer import current_subscriptions

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("screenshots need the system chromium (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    store = load_store(store_path)
    subscribers = {s.customer_id for s in current_subscriptions(store_path)[0]}
    customer = pick_customer(store, subscribers)
    secret = secrets.token_urlsafe(32)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="ppx-portal-shots-") as tmp:
        ledger_url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        seed_ledger(ledger_url, store_path, store, customer)
        with (
            _model_service(model_service_url) as models_url,
            _portal(store_path, models_url, secret, ledger_url) as url,
            sync_playwright() as pw,
        ):
            browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
            link = f"{url}/auth?token={make_link_token(customer.customer_id, secret, lang=lang)}"
            # one redemption first, so the vouchers list is not empty
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
            p = ctx.new_page()
            p.goto(link)
            p.goto(f"{url}/loyalty")
            p.get_by_role("button", name="Redeem").first.click()
            ctx.close()
            plain = [
                ("signin", "/signin", False),
                ("orders", "/", True),
                ("tracking", f"/orders/{customer.tracked_order}", True),
                ("claim", f"/orders/{customer.tracked_order}/claim", True),
                ("subscriptions", "/subscriptions", True),
                ("loyalty", "/loyalty", True),
                ("preferences", "/preferences", True),
            ]
            if customer.delivered_order is not None:
                plain.insert(3, ("return", f"/orders/{customer.delivered_order}/return", True))
            for width, (w, h) in WIDTHS.items():
                ctx = browser.new_context(viewport={"width": w, "height": h}, locale=lang)
                p = ctx.new_page()
                p.goto(f"{url}/signin")
                written.append(_shoot(p, out, "signin", width))
                p.goto(link)
                for name, path, signed_in in plain:
                    if signed_in:
                        p.goto(url + path)
                        p.wait_for_load_state("networkidle")
                        written.append(_shoot(p, out, name, width))
                ctx.close()
            # the save offer: asked for through the page, once, then shown at both widths
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
            p = ctx.new_page()
            p.goto(link)
            p.goto(f"{url}/subscriptions")
            cancel = p.get_by_role("button", name="Cancel my subscription")
            if cancel.count():
                p.get_by_label("Why are you leaving? (optional)").first.select_option(
                    "too_expensive"
                )
                cancel.first.click()
                offer_url = p.url
                ctx.close()
                for width, (w, h) in WIDTHS.items():
                    ctx = browser.new_context(viewport={"width": w, "height": h}, locale=lang)
                    p = ctx.new_page()
                    p.goto(link)
                    p.goto(offer_url)
                    written.append(_shoot(p, out, "save-offer", width))
                    ctx.close()
            else:
                ctx.close()
            browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    from ppx.config import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "portal")
    parser.add_argument("--store", type=Path, default=None, help="world or store folder")
    parser.add_argument("--model-service-url", default=None)
    args = parser.parse_args(argv)
    settings = get_settings()
    store = args.store or settings.portal_store or settings.worlds_dir / "demo"
    files = take(args.out, Path(store), args.model_service_url)
    for f in files:
        print(f)


if __name__ == "__main__":
    main()
