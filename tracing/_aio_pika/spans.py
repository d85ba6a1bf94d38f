"""The one span builder of the aio-pika hops: PRODUCER spans for publish, CONSUMER spans for every consumer
(callback, ``queue.iterator()`` and ``queue.get()``), named by the messaging semantic conventions.

Span names stay bounded, as the conventions ask (a destination name goes into the span name only if it is
of low cardinality):

- an anonymous destination is named ``(anonymous)``, with ``messaging.destination.anonymous=true``: a
  queue the broker named (``amq.gen-…``), direct reply-to (``amq.rabbitmq.reply-to…``), or a queue
  declared without a name on a robust channel, which aio-pika names ``amq_<uuid hex>`` itself (so that
  it can declare it again after a reconnection);
- a name with per-run ids (``rpc_29567f5c…``) is folded by the rules that fold id-like URL segments
  (:func:`hoptrace.processors.fold_id_parts`) into ``messaging.destination.template`` (``rpc_{id}``),
  which names the span;
- an exclusive or auto-delete queue also gets ``messaging.destination.temporary=true``.

The real name is always in ``messaging.destination.name``. Every RPC client's reply queue thus adds no
span name and no RED series.
"""

from __future__ import annotations

import re
from functools import lru_cache

from aio_pika.abc import AbstractIncomingMessage, AbstractMessage, AbstractQueue
from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from hoptrace.processors import fold_id_parts
from hoptrace.tracing._propagation import extract, inject
from hoptrace.tracing._tracer import hop_tracer

ANONYMOUS = "(anonymous)"
"""The span-name placeholder of server-named destinations (messaging semantic conventions)."""

_SERVER_NAMED_PREFIXES = ("amq.gen-", "amq.rabbitmq.reply-to")
_ROBUST_ANONYMOUS = r"amq_[0-9a-f]{32}"
"""aio-pika's robust anonymous queues; a string: re compiles (and caches) it on first use, not when a traced
service imports aio_pika (destination() is cached, so the lookup in re's cache is paid once per name)."""
Attributes = dict[str, str | int | bool]


@lru_cache(maxsize=512)
def destination(name: str, temporary: bool = False) -> tuple[str, tuple[tuple[str, str | bool], ...]]:
    """The span-name part and the ``messaging.destination.*`` attributes of destination ``name``.

    Cached: names repeat, and the folding regex is not free. Pure function.
    """
    attributes: list[tuple[str, str | bool]] = [("messaging.destination.name", name)]
    if name.startswith(_SERVER_NAMED_PREFIXES) or re.fullmatch(_ROBUST_ANONYMOUS, name):
        attributes.append(("messaging.destination.anonymous", True))
        temporary = temporary or name.startswith("amq.rabbitmq.reply-to")  # lives as long as its channel
        label = ANONYMOUS
    else:
        label = fold_id_parts(name)
        if label != name:
            attributes.append(("messaging.destination.template", label))
    if temporary:
        attributes.append(("messaging.destination.temporary", True))
    return label, tuple(attributes)


def start_producer_span(exchange_name: str, message: AbstractMessage, routing_key: str) -> Span:
    """Start the PRODUCER span of publishing ``message`` and inject its context into the message headers."""
    # The default exchange ("") routes to the queue named by the routing key: that queue is the destination.
    label, attributes = _message_attributes(message, "publish", "send", exchange_name or routing_key, False)
    attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
    span = hop_tracer().start_span(f"publish {label}", kind=SpanKind.PRODUCER, attributes=attributes)
    if message.headers is None:
        message.headers = {}
    inject(message.headers, trace.set_span_in_context(span))  # type: ignore[arg-type]  # AMQP tables take str
    return span


def start_consumer_span(
    message: AbstractIncomingMessage, queue: AbstractQueue
) -> tuple[Span, context.Context]:
    """Start the CONSUMER span of ``message`` as a child of the producer's context carried in its headers.

    Returns the span and the extracted parent context (which carries the baggage). A message without
    headers, or with malformed ones, starts a new trace. Never raises for a well-formed aio-pika message.
    """
    # Extracted into an empty context: whatever span the consuming task happens to run in is not the
    # message's parent, so a message without headers starts a new trace.
    parent = extract(message.headers or {}, context.Context())
    temporary = bool(getattr(queue, "exclusive", False) or getattr(queue, "auto_delete", False))
    label, attributes = _message_attributes(message, "process", "process", queue.name, temporary)
    if message.routing_key is not None:
        attributes["messaging.rabbitmq.destination.routing_key"] = message.routing_key
    if message.delivery_tag is not None:
        attributes["messaging.rabbitmq.message.delivery_tag"] = message.delivery_tag
    if message.redelivered:
        attributes["hoptrace.messaging.redelivered"] = True
    span = hop_tracer().start_span(
        f"process {label}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )
    return span, parent


def record_failure(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``."""
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))


def _message_attributes(
    message: AbstractMessage, operation: str, operation_type: str, name: str, temporary: bool
) -> tuple[str, Attributes]:
    label, destination_attributes = destination(name, temporary)
    attributes: Attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.name": operation,
        "messaging.operation.type": operation_type,
    }
    attributes.update(destination_attributes)
    if message.message_id:
        attributes["messaging.message.id"] = message.message_id
    if message.correlation_id:
        attributes["messaging.message.conversation_id"] = message.correlation_id
    if isinstance(message.body, bytes):
        attributes["messaging.message.body.size"] = len(message.body)
    return label, attributes
