"""OpenTelemetry span processors: tenant attribution, span-derived RED metrics, redaction."""

from __future__ import annotations

from processors._tenant import TENANT_KEY, TenantSpanProcessor, invalid_tenants, validate_tenant

__all__ = ["TENANT_KEY", "TenantSpanProcessor", "invalid_tenants", "validate_tenant"]
