"""``RedactionSpanProcessor``: masks secrets in a finished span before the exporting processor sees it.

Why a wrapper and not a processor that edits the span in place: a span's attributes are frozen when it
ends (the SDK marks them immutable, and ``set_attribute`` on an ended span is ignored), and the object
handed to ``on_end`` is shared with every other processor. Rewriting its private fields would rely on
SDK internals and race with processors that already queued it. Instead this processor wraps the
exporting one (``RedactionSpanProcessor(BatchSpanProcessor(exporter))``) and hands it a masked copy
built through the public ``ReadableSpan`` constructor. Because it runs at ``on_end``, it sees every
attribute set during the span's whole life, and every event. A span with nothing to mask is forwarded
as is, with no copy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import Attributes

from hoptrace.processors._redaction import REDACTED, Redactor
from hoptrace.processors._span_access import ended_span_attributes, ended_span_has, frozen_attributes

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RedactionSpanProcessor(SpanProcessor):
    """Forwards every span to ``downstream``, with secrets masked by ``redactor`` at ``on_end``.

    Masks span attributes, event attributes, link attributes and the status description (rules in
    :class:`hoptrace.processors.Redactor`). If masking fails, the span is replaced by a copy whose attributes
    are all ``REDACTED`` (fail closed: a secret is never exported because of a bug), or dropped if even that
    copy fails; the failure is logged once and counted in :attr:`failed_spans`. ``on_end`` never raises;
    thread-safe when ``downstream`` is. ``shutdown`` and ``force_flush`` are forwarded to ``downstream``.
    """

    def __init__(self, downstream: SpanProcessor, *, redactor: Redactor | None = None) -> None:
        self._downstream = downstream
        self._redactor = redactor if redactor is not None else Redactor()
        self.redacted_spans = 0
        """Spans forwarded as a masked copy."""
        self.failed_spans = 0
        """Spans whose masking failed and that were forwarded with every attribute ``REDACTED``."""

    @property
    def downstream(self) -> SpanProcessor:
        return self._downstream

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._downstream.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            masked = self.redact(span)
        except Exception:
            self.failed_spans += 1
            if self.failed_spans == 1:
                logger.exception(
                    "hoptrace: redaction failed; exporting the span with every attribute REDACTED"
                )
            try:
                masked = _copy(span, {key: REDACTED for key in span.attributes or {}}, (), ())
            except Exception:
                return  # a span that cannot even be copied is not exported (counted in failed_spans)
        self._downstream.on_end(masked)

    def redact(self, span: ReadableSpan) -> ReadableSpan:
        """Return ``span`` itself if nothing needs masking, else a masked copy. May raise on a broken span."""
        redactor = self._redactor
        attributes = redactor.redact_attributes(ended_span_attributes(span))
        # Most spans have no events nor links: test emptiness before building the tuples (~400 ns each).
        events = [self._event(event) for event in span.events] if ended_span_has(span, "events") else []
        links = [self._link(link) for link in span.links] if ended_span_has(span, "links") else []
        events_changed = bool(events) and any(
            new is not old for new, old in zip(events, span.events, strict=True)
        )
        links_changed = bool(links) and any(
            new is not old for new, old in zip(links, span.links, strict=True)
        )
        status = span.status
        description = status.description
        masked_description = redactor.redact_text(description) if description else description
        if (
            attributes is None
            and not events_changed
            and not links_changed
            and masked_description == description
        ):
            return span
        self.redacted_spans += 1
        if masked_description != description:
            status = Status(status.status_code, masked_description)
        return _copy(span, attributes, events or list(span.events), links or list(span.links), status)

    def _event(self, event: Event) -> Event:
        attributes = self._redactor.redact_attributes(frozen_attributes(event.attributes))
        if attributes is None:
            return event
        return Event(event.name, attributes, event.timestamp)

    def _link(self, link: Link) -> Link:
        attributes = self._redactor.redact_attributes(frozen_attributes(link.attributes))
        if attributes is None:
            return link
        return Link(link.context, attributes)

    def shutdown(self) -> None:
        self._downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._downstream.force_flush(timeout_millis)


def _copy(
    span: ReadableSpan,
    attributes: Attributes,
    events: list[Event] | tuple[()],
    links: list[Link] | tuple[()],
    status: Status | None = None,
) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_bounded_attributes(
            span.attributes if attributes is None else attributes, span.dropped_attributes
        ),
        events=_bounded(events, span.dropped_events),
        links=_bounded(links, span.dropped_links),
        kind=span.kind,
        status=span.status if status is None else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _bounded(items: Sequence[T], dropped: int) -> BoundedList[T]:
    # Exporters read ``dropped_events``/``dropped_links`` from a BoundedList; keep the original counts.
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


def _bounded_attributes(attributes: Attributes, dropped: int) -> BoundedAttributes:
    bounded = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded
