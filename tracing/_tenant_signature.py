"""The signed tenant: how hoptrace services vouch to each other for the tenant (``HOPTRACE_TENANT_SECRET``).

When the secret is set, every tenant entry hoptrace sends in W3C baggage carries the property
``hoptrace.sig``: an HMAC-SHA256 (truncated to 128 bits, base64url) over the tenant and the trace id, keyed
with the first secret. A receiving hoptrace service keeps a tenant entry only when the signature verifies
with one of its secrets and the trace id of the same request or message; an unsigned or badly signed entry
is dropped and counted (``untrusted_tenants``). Binding the trace id means a signature seen in one trace
cannot vouch for a tenant in another.

Written here because no library signs W3C baggage; :mod:`hmac` does the cryptography.
"""

from __future__ import annotations

import base64
import functools
import hmac
from collections.abc import Sequence

from opentelemetry import baggage, trace
from opentelemetry.context import Context

from hoptrace.processors import TENANT_KEY

SIGNATURE_PROPERTY = "hoptrace.sig"
MIN_SECRET_LENGTH = 16


class TenantKeys:
    """The secrets of ``HOPTRACE_TENANT_SECRET``: the first signs, every one verifies. Immutable, thread-safe.

    Raises ``ValueError`` when there is no secret or one is shorter than 16 characters."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one tenant secret is needed")
        short = [index for index, secret in enumerate(secrets) if len(secret) < MIN_SECRET_LENGTH]
        if short:
            raise ValueError(
                f"tenant secret number {short[0] + 1} is shorter than {MIN_SECRET_LENGTH} characters"
            )
        self._keys = tuple(secret.encode() for secret in secrets)

    def sign(self, tenant: str, trace_id: int) -> str:
        """The signature of ``tenant`` in the trace ``trace_id``, made with the first secret."""
        return _signature(self._keys[0], tenant, trace_id)

    def verify(self, tenant: str, trace_id: int, signature: str) -> bool:
        """Whether ``signature`` was made by one of the secrets for ``tenant`` and ``trace_id``."""
        return any(hmac.compare_digest(_signature(key, tenant, trace_id), signature) for key in self._keys)


@functools.lru_cache(maxsize=1024)
def _signature(key: bytes, tenant: str, trace_id: int) -> str:
    # Cached: every hop a request makes signs the same tenant and trace id (hmac.digest is one C call).
    digest = hmac.digest(key, f"{tenant}\n{trace_id:032x}".encode(), "sha256")[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_keys: TenantKeys | None = None


def configure_tenant_keys(keys: TenantKeys | None) -> None:
    """Install the process's tenant secrets (``None``: no signing, no verification)."""
    global _keys
    _keys = keys


def tenant_keys() -> TenantKeys | None:
    """The process's tenant secrets, or ``None`` when ``HOPTRACE_TENANT_SECRET`` is not set."""
    return _keys


def outgoing_properties(
    key: str, value: str, properties: tuple[str, ...], context: Context | None
) -> tuple[str, ...]:
    """The properties to send with baggage entry ``key``: for the tenant, a fresh signature (when secrets
    are set) replaces any received one. Never raises."""
    if key != TENANT_KEY:
        return properties
    keys = _keys
    if keys is None and not properties:  # the usual case: nothing received, nothing to sign
        return properties
    kept = tuple(prop for prop in properties if prop.partition("=")[0] != SIGNATURE_PROPERTY)
    if keys is None:
        return kept
    trace_id = trace.get_current_span(context).get_span_context().trace_id
    return (*kept, f"{SIGNATURE_PROPERTY}={keys.sign(value, trace_id)}")


def has_signed_tenant(context: Context, properties: tuple[str, ...]) -> bool:
    """Whether the tenant entry of ``context``, received with ``properties``, carries a signature that
    verifies with this process's secrets and the trace id of ``context``. ``False`` without secrets."""
    keys, tenant = _keys, baggage.get_baggage(TENANT_KEY, context)
    if keys is None or not isinstance(tenant, str):
        return False
    trace_id = trace.get_current_span(context).get_span_context().trace_id
    return any(
        keys.verify(tenant, trace_id, prop.partition("=")[2])
        for prop in properties
        if prop.partition("=")[0] == SIGNATURE_PROPERTY
    )
