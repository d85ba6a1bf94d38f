"""RabbitMQ hops through aio-pika: publish, callback consumers, ``queue.iterator()`` and ``queue.get()``,
with the message's trace context kept current in the code that handles it (see :mod:`.instrument`)."""

from __future__ import annotations
