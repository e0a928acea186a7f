"""Tenant administration: the one implementation behind the CLI and the admin API.

Secrets and tokens are generated here, returned exactly once, and stored encrypted (webhook
secret, SDP key) or hashed (API token). Every change leaves an audit row.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, field_validator

from core.sdp_url_policy import SdpUrlPolicy, SdpUrlRefused, check_url_always
from core.tenant_types import Edition, WebhookAuthMode
from db.repositories import tenants as repo
from db.repositories.audit import write_audit
from db.repositories.tenants import TenantExists, UnknownTenant
from pipeline.retention.erasure import ErasureReport, ErasureRequest, erase_requester
from pipeline.retention.purge import RetentionPolicy
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.credential_cipher import CredentialCipher, hash_token, new_secret
from pipeline.text.storable import CleanText

__all__ = [
    "ErasureReport",
    "ErasureRequest",
    "TenantAdmin",
    "TenantCreate",
    "TenantUpdate",
    "TenantExists",
    "UnknownTenant",
    "SdpUrlRefused",
]

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _sdp_url_rules(value: HttpUrl) -> HttpUrl:
    try:
        check_url_always(str(value))
    except SdpUrlRefused as exc:
        raise ValueError(str(exc)) from None
    return value


# One definition per field, used by create and update alike, so PATCH cannot store what create
# refuses (a 100,000-character portal would make every job of the tenant retry forever).
TenantName = Annotated[CleanText, Field(min_length=1, max_length=200, examples=["Acme Corp"])]
SdpUrl = Annotated[
    HttpUrl, AfterValidator(_sdp_url_rules), Field(examples=["https://sdp.acme.example:8080"])
]
SdpKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[!-~]+$",
        description="SDP API key / OAuth token (printable ASCII)",
    ),
]
SdpPortal = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Cloud portal name: letters, digits, _ . -",
    ),
]


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        description="Slug: lowercase letters, digits and dashes, 2-63 chars", examples=["acme"]
    )
    name: TenantName | None = None
    sdp_url: SdpUrl
    sdp_key: SdpKey
    sdp_edition: Edition = "onprem"
    sdp_portal: SdpPortal | None = None
    webhook_auth: WebhookAuthMode = "hmac"
    settings: TenantSettings = Field(default_factory=TenantSettings)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not TENANT_ID_PATTERN.fullmatch(value):
            raise ValueError(
                "tenant id must be a slug: lowercase letters, digits and dashes, "
                "2-63 characters, starting with a letter or digit"
            )
        return value


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName | None = None
    sdp_url: SdpUrl | None = None
    sdp_key: SdpKey | None = None
    sdp_edition: Edition | None = None
    sdp_portal: SdpPortal | None = None
    webhook_auth: WebhookAuthMode | None = None
    settings: TenantSettings | None = None
    status: str | None = Field(None, pattern="^(active|disabled)$")


class TenantInfo(BaseModel):
    id: str
    name: str
    status: str
    sdp_base_url: str
    sdp_edition: str
    webhook_auth_mode: str
    settings: dict[str, Any]
    retention: dict[str, float] = Field(
        description="days kept, in effect: the tenant's retention_days_* or the service's "
        "AI_AGENTS_RETENTION_DAYS_* (jobs, feedback, audit, llm_usage)",
        examples=[{"jobs": 90.0, "feedback": 365.0, "audit": 365.0, "llm_usage": 400.0}],
    )
    created_at: datetime
    updated_at: datetime


class TenantCredentials(BaseModel):
    """Shown once: at creation and at rotation."""

    tenant_id: str
    webhook_secret: str | None = None
    api_token: str | None = None
    previous_secret_valid_until: datetime | None = None


def without_credentials(url: str) -> str:
    """Tenants stored before URL credentials were refused may still carry them: never show
    them (``GET /admin/tenants``, ``tenant list``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _info(row: asyncpg.Record, retention: RetentionPolicy) -> TenantInfo:
    info = {k: row[k] for k in TenantInfo.model_fields if k != "retention"}
    info["sdp_base_url"] = without_credentials(info["sdp_base_url"])
    if not isinstance(info.get("settings"), dict):
        # a value written behind the API's back (or before validation existed) must not make
        # the whole tenant list fail: show it as empty and say so in the log
        logging.getLogger(__name__).warning(
            "tenant settings are not a JSON object; shown as {}",
            extra={"tenant_id": info.get("id")},
        )
        info["settings"] = {}
    return TenantInfo(**info, retention=retention.for_tenant(info["settings"]).as_dict())


class TenantAdmin:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: CredentialCipher,
        *,
        secret_grace: timedelta = timedelta(hours=24),
        url_policy: SdpUrlPolicy | None = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        """``url_policy``: the operator's SSRF rules (``Settings.sdp_url_policy``); the
        default is the strict one, which refuses loopback SDP URLs. ``retention``: the
        service's retention days (``Settings``), which tenants without their own inherit."""
        self._pool = pool
        self._cipher = cipher
        self._grace = secret_grace
        self._url_policy = url_policy or SdpUrlPolicy()
        self._retention = retention or RetentionPolicy()

    async def create(self, spec: TenantCreate, *, actor: str) -> TenantCredentials:
        self._url_policy.check_url(str(spec.sdp_url))
        secret = new_secret("whsec_")
        token = new_secret("aat_")
        row = {
            "id": spec.id,
            "name": spec.name or spec.id,
            "sdp_base_url": str(spec.sdp_url).rstrip("/"),
            "sdp_edition": spec.sdp_edition,
            "sdp_portal": spec.sdp_portal,
            "sdp_api_key_enc": self._cipher.encrypt(spec.sdp_key),
            "webhook_auth_mode": spec.webhook_auth,
            "webhook_secret_enc": self._cipher.encrypt(secret),
            "api_token_hash": hash_token(token),
            "settings": spec.settings.model_dump(),
        }
        try:
            await repo.insert_tenant(self._pool, row)
        except TenantExists:
            await self._audit(spec.id, actor, "tenant.create", "denied", {"reason": "exists"})
            raise
        await self._audit(
            spec.id,
            actor,
            "tenant.create",
            "success",
            {"edition": spec.sdp_edition, "webhook_auth": spec.webhook_auth},
        )
        return TenantCredentials(tenant_id=spec.id, webhook_secret=secret, api_token=token)

    async def list(self) -> list[TenantInfo]:
        return [_info(r, self._retention) for r in await repo.list_tenants(self._pool)]

    async def get(self, tenant_id: str) -> TenantInfo:
        return _info(await repo.fetch_tenant(self._pool, tenant_id), self._retention)

    async def update(self, tenant_id: str, change: TenantUpdate, *, actor: str) -> TenantInfo:
        fields: dict[str, Any] = {}
        if change.name is not None:
            fields["name"] = change.name
        if change.sdp_url is not None:
            self._url_policy.check_url(str(change.sdp_url))
            fields["sdp_base_url"] = str(change.sdp_url).rstrip("/")
        if change.sdp_key is not None:
            fields["sdp_api_key_enc"] = self._cipher.encrypt(change.sdp_key)
        if change.sdp_edition is not None:
            fields["sdp_edition"] = change.sdp_edition
        if change.sdp_portal is not None:
            fields["sdp_portal"] = change.sdp_portal
        if change.webhook_auth is not None:
            fields["webhook_auth_mode"] = change.webhook_auth
        if change.settings is not None:
            fields["settings"] = change.settings.model_dump()
        if change.status is not None:
            fields["status"] = change.status
        if not fields:
            return await self.get(tenant_id)
        row = await self._update(tenant_id, fields, actor, "tenant.update")
        return _info(row, self._retention)

    async def disable(self, tenant_id: str, *, actor: str) -> TenantInfo:
        row = await self._update(tenant_id, {"status": "disabled"}, actor, "tenant.disable")
        return _info(row, self._retention)

    async def erase_requester(
        self, tenant_id: str, request: ErasureRequest, *, actor: str
    ) -> ErasureReport:
        """Everything stored about one requester, removed or anonymised
        (``pipeline.retention.erasure``); an unknown tenant is audited as denied."""
        try:
            return await erase_requester(self._pool, tenant_id, request, actor=actor)
        except UnknownTenant:
            await self._audit(
                tenant_id, actor, "requester.erase", "denied", {"reason": "unknown tenant"}
            )
            raise

    async def rotate_secret(self, tenant_id: str, *, actor: str) -> TenantCredentials:
        current = await repo.fetch_tenant(self._pool, tenant_id)
        secret = new_secret("whsec_")
        valid_until = datetime.now(UTC) + self._grace
        await self._update(
            tenant_id,
            {
                "webhook_secret_enc": self._cipher.encrypt(secret),
                "webhook_secret_prev_enc": current["webhook_secret_enc"],
                "webhook_secret_prev_expires_at": valid_until,
            },
            actor,
            "tenant.rotate_secret",
        )
        return TenantCredentials(
            tenant_id=tenant_id, webhook_secret=secret, previous_secret_valid_until=valid_until
        )

    async def rotate_token(self, tenant_id: str, *, actor: str) -> TenantCredentials:
        token = new_secret("aat_")
        await self._update(
            tenant_id, {"api_token_hash": hash_token(token)}, actor, "tenant.rotate_token"
        )
        return TenantCredentials(tenant_id=tenant_id, api_token=token)

    async def _update(
        self, tenant_id: str, fields: dict[str, Any], actor: str, action: str
    ) -> asyncpg.Record:
        try:
            row = await repo.update_tenant(self._pool, tenant_id, fields)
        except UnknownTenant:
            await self._audit(tenant_id, actor, action, "denied", {"reason": "unknown tenant"})
            raise
        await self._audit(
            tenant_id,
            actor,
            action,
            "success",
            {"fields": sorted(k for k in fields if not k.endswith("_enc"))},
        )
        return row

    async def _audit(
        self, tenant_id: str, actor: str, action: str, outcome: str, details: dict[str, Any]
    ) -> None:
        await write_audit(
            self._pool,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            target=f"tenant:{tenant_id}",
            outcome=outcome,
            details=details,
        )
