"""Typed settings for ppx, read from the environment (prefix ``PPX_``) or defaults.

Nothing here touches the disk or global state at import: call :func:`get_settings` when
a value is needed, and :meth:`Settings.ensure_dirs` where folders must exist.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Paths, stores and seeds. Every field can be set as ``PPX_<FIELD>`` in the env."""

    model_config = SettingsConfigDict(env_prefix="PPX_", extra="ignore")

    root: Path = PROJECT_ROOT
    worlds_dir: Path = PROJECT_ROOT / "data" / "worlds"
    datasets_dir: Path = Field(default=PROJECT_ROOT.parent / "shared" / "datasets")
    mlflow_dir: Path = PROJECT_ROOT / "mlflow"
    reports_dir: Path = PROJECT_ROOT / "reports"
    # MLflow: MLFLOW_TRACKING_URI (no prefix) wins when set; see tracking.tracking_uri().
    tracking_uri: str | None = None
    optuna_storage: str | None = None
    ledger_url: str | None = None
    model_alias: str = "champion"
    #: more models beyond the registry's list: comma-separated ``package.module:SPEC``
    #: import paths of ModelSpecs (a plug-in, a test's toy model in a service process)
    extra_models: str = ""
    api_token: str | None = None
    #: the country of phone numbers a brand's exports write without a country code (ISO
    #: 3166: US, DE), for ``ppx data import``; its ``--phone-region`` and a mapping YAML's
    #: ``phone_region`` come first
    phone_region: str | None = None
    # Messages: the SMTP relay the sender speaks to, the From address, the public base URL
    # of the decision service (unsubscribe and preference links), and the HMAC key that
    # signs those links (required to send email; rotate it to invalidate old links).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "shop@localhost"
    brand_name: str = "ppx"
    public_url: str = "http://127.0.0.1:3001"
    unsubscribe_secret: str | None = None
    # SMS through an HTTP API in the Twilio Messages shape (POST
    # {sms_base_url}/2010-04-01/Accounts/{sid}/Messages.json, basic auth sid:token): sent
    # from ``sms_from`` (E.164), or through ``sms_messaging_service_sid`` when set. Unset
    # base URL, sid or token: SMS rows stay pending.
    sms_base_url: str | None = None
    sms_account_sid: str | None = None
    sms_auth_token: str | None = None
    sms_from: str | None = None
    sms_messaging_service_sid: str | None = None
    # Push through an HTTP gateway (the brand's push provider or a small relay): a JSON
    # POST to ``push_url`` with ``Authorization: Bearer <push_token>``. Unset: push rows
    # stay pending.
    push_url: str | None = None
    push_token: str | None = None
    #: seconds an SMS or push request may take before it is retried
    gateway_timeout: float = 30.0
    # The shopper's portal (ppx.portal): the HMAC key of its magic links and session
    # cookies (required; rotate it to sign everyone out), the world or store folder whose
    # orders it shows, how long a link and a session stay valid, and whether the session
    # cookie needs HTTPS (set it behind TLS).
    portal_secret: str | None = None
    #: read when PPX_PORTAL_SECRET is unset (``make demo`` writes one for a local try-out)
    portal_secret_file: Path = PROJECT_ROOT / "data" / "portal.secret"
    portal_store: Path | None = None
    portal_link_hours: float = 72.0
    portal_session_hours: float = 12.0
    portal_secure_cookie: bool = False
    #: the portal's public base URL in links; default ``public_url`` + ``/portal``
    portal_url: str | None = None
    seed: int = 7
    demo_customers: int = 20_000

    @model_validator(mode="after")
    def _portal_secret_from_file(self) -> Settings:
        if not self.portal_secret and self.portal_secret_file.is_file():
            self.portal_secret = self.portal_secret_file.read_text(encoding="utf-8").strip() or None
        return self

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def artifacts_dir(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def default_optuna_storage(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'optuna.db'}"

    @property
    def default_ledger_url(self) -> str:
        return f"sqlite:///{self.root / 'data' / 'ledger.db'}"

    def ensure_dirs(self) -> None:
        for d in (self.worlds_dir, self.mlflow_dir, self.artifacts_dir, self.reports_dir):
            d.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


#: How ``--help`` names the world a command uses without ``--world`` (see default_world).
DEFAULT_WORLD_SHOWN = "demo/ in PPX_WORLDS_DIR, data/worlds unless set"


def default_world() -> Path:
    """The world (or store) a command uses when none is named: ``demo`` in the worlds
    folder (``PPX_WORLDS_DIR``, default ``data/worlds`` of the project).

    Read when the command runs, never at import, so the folder set in the environment
    counts and the answer does not depend on the directory ppx is run from.
    """
    return get_settings().worlds_dir / "demo"


def world_or_default(world: Path | None) -> Path:
    """``world`` as given, else :func:`default_world`."""
    return default_world() if world is None else Path(world)
