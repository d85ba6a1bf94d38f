"""Chain expressions: the hops a request must take, e.g. ``api:SERVER > api:PRODUCER > worker:CONSUMER``.

Grammar (parsed with lark, so errors point at the column)::

    chain := hop ((">" | ">>") hop)*
    hop   := SERVICE ":" KIND [ QUOTED_SPAN_NAME ]      SERVICE may be "*" (any service)

``a > b``: ``b`` is the next hop below ``a``: a descendant reached only through INTERNAL spans
(in-process spans such as ASGI's ``http send`` are transparent). ``a >> b``: ``b`` is any descendant of ``a``.
KIND is one of SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL, case-insensitive.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lark import Lark, Token, Transformer, UnexpectedInput, UnexpectedToken

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness._model import Span, SpanKind

_GRAMMAR = r"""
chain: hop (ARROW hop)*
hop: service ":" KIND span_name?
service: SERVICE | ESCAPED_STRING
span_name: ESCAPED_STRING
ARROW: ">>" | ">"
KIND.2: /(server|client|producer|consumer|internal)\b/i
SERVICE: /\*|[A-Za-z0-9_.\-\/]+/
%import common.ESCAPED_STRING
%import common.WS
%ignore WS
"""

_TERMINAL_WORDS = {
    "ARROW": "'>' or '>>'",
    "COLON": "':'",
    "KIND": "a span kind (SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL)",
    "SERVICE": "a service name",
    "ESCAPED_STRING": 'a quoted span name ("...")',
    "$END": "the end of the expression",
}


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a chain: which service and kind, optionally which span name."""

    service: str | None
    """``None`` matches any service (written ``*``)."""
    kind: SpanKind
    name: str | None = None
    direct: bool = True
    """``True`` for ``>`` (next hop below the previous one), ``False`` for ``>>`` (any descendant)."""

    def matches(self, span: Span) -> bool:
        return (
            span.kind == self.kind
            and (self.service is None or span.service_name == self.service)
            and (self.name is None or span.name == self.name)
        )

    def __str__(self) -> str:
        text = f"{self.service or '*'}:{self.kind.name}"
        return f'{text} "{self.name}"' if self.name is not None else text


@dataclass(frozen=True, slots=True)
class Chain:
    """A parsed chain expression; ``hops[0].direct`` is meaningless."""

    text: str
    hops: tuple[Hop, ...]

    def __str__(self) -> str:
        parts = [str(self.hops[0])]
        for hop in self.hops[1:]:
            parts.append(f"{'>' if hop.direct else '>>'} {hop}")
        return " ".join(parts)


class _ToHops(Transformer[Token, list[Hop]]):
    def chain(self, items: list[Hop | Token]) -> list[Hop]:
        hops: list[Hop] = []
        direct = True
        for item in items:
            if isinstance(item, Token):
                direct = str(item) == ">"
            else:
                hops.append(Hop(item.service, item.kind, item.name, direct))
        return hops

    def hop(self, items: list[str | Token | None]) -> Hop:
        service, kind = str(items[0]), str(items[1])
        name = items[2] if len(items) > 2 else None
        return Hop(None if service == "*" else service, SpanKind(kind.lower()), name)

    def service(self, items: list[Token]) -> str:
        return _unquote(items[0])

    def span_name(self, items: list[Token]) -> str:
        return _unquote(items[0])


def parse_chain(text: str) -> Chain:
    """Parse a chain expression. Raises ``InvalidExpression`` saying where and what was expected."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise InvalidExpression(_describe(exc, text)) from None
    hops: list[Hop] = _ToHops().transform(tree)
    return Chain(text, tuple(hops))


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, start="chain", parser="lalr")


def _unquote(token: Token) -> str:
    text = str(token)
    if text.startswith('"'):
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _describe(exc: UnexpectedInput, text: str) -> str:
    column = getattr(exc, "column", 0) or len(text) + 1
    found = repr(text[column - 1 : column])
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            column, found = len(text) + 1, "the end"
        else:
            found = repr(str(exc.token))
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
    words = sorted({_TERMINAL_WORDS.get(name, name) for name in expected})
    hint = f"; expected {' or '.join(words)}" if words else ""
    return (
        f"invalid chain expression at column {column}: unexpected {found}{hint}\n"
        f"  {text}\n  {' ' * (column - 1)}^\n"
        "  a chain looks like: api:SERVER > api:PRODUCER > worker:CONSUMER"
    )
