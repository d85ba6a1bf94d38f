"""``hoptrace demo``: demo services and the end-to-end run that checks them.

``start_demo_shop(launcher, amqp_url, queue)`` starts the three demo services on a ``ServiceLauncher``, for
tests and benchmarks that need a real shop. Names load on first use: the CLI imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from hoptrace.harness.demo._shop import (
        HTTP_CHAIN,
        QUEUE_CHAIN,
        SPANS_PER_ORDER,
        DemoShop,
        start_demo_shop,
    )

__all__ = ["HTTP_CHAIN", "QUEUE_CHAIN", "SPANS_PER_ORDER", "DemoShop", "start_demo_shop"]

__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={"_shop": __all__})
