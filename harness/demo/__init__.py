"""``hoptrace demo``: demo services and the end-to-end run that checks them."""

from __future__ import annotations

__all__: list[str] = []
