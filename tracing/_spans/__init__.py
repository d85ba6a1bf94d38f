"""Span machinery between hoptrace's hops and its processors: hop spans started and ended without the SDK's
per-span waste (:mod:`.hop`, trusted after :mod:`.probe` checks the installed SDK), and the provider's span
processor that calls only the hooks that do something (:mod:`.dispatch`)."""

from __future__ import annotations
