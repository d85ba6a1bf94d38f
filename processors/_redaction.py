"""What counts as a secret in span data, and how it is masked.

Three rules, applied to every attribute of a span, of its events and of its links:

1. **Keys**: an attribute whose key has a component matching a secret word (``authorization``,
   ``cookie``, ``password``, ``token``, ``api_key``, ...; see :data:`DEFAULT_SECRET_KEY_WORDS`) keeps its
   key and gets the value ``REDACTED``. Components are separated by ``.``, ``_`` or ``-``, so
   ``http.request.header.x-auth-token`` matches and ``gen_ai.usage.input_tokens`` does not.
2. **URLs**, in any string value: credentials become ``REDACTED:REDACTED@`` and the values of sensitive
   query parameters become ``REDACTED`` (semconv's list: ``AWSAccessKeyId``, ``Signature``, ``sig``,
   ``X-Goog-Signature``; plus ``X-Amz-*``, any parameter whose name is a secret word, and your own).
3. **Values** that look like credentials: ``Bearer <token>`` / ``Basic <token>`` (8+ characters) become
   ``Bearer REDACTED`` / ``Basic REDACTED``, and JWTs (``eyJ...``) become ``REDACTED``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping

from opentelemetry.util.types import AttributeValue

REDACTED = "REDACTED"

DEFAULT_SECRET_KEY_WORDS: tuple[str, ...] = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "api[_-]?key",
    "private[_-]?key",
    "credentials?",
)
"""Regular expressions, each matched against a whole component of an attribute key, ignoring case."""

DEFAULT_SENSITIVE_QUERY_PARAMETERS: tuple[str, ...] = (
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
)
"""Semconv's list of query parameters whose values are always redacted (ignoring case), with ``X-Amz-*``."""

_KEY_CACHE_SIZE = 4096

# Patterns are compiled on first use, not at import: every traced service imports this module at start-up,
# and redaction runs on the export thread.


@functools.cache
def _text_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """URL credentials, query parameters, auth schemes and JWTs."""
    return (
        re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s]+@"),
        re.compile(r"(?P<lead>^|[?&;])(?P<name>[^=&;?#\s]+)=(?P<value>[^&;#\s]*)"),
        # "Basic" only capitalised as in the Authorization header, and tokens of 8+ characters: "basic creds"
        # stays.
        re.compile(r"\b(?P<scheme>[Bb]earer|BEARER|Basic)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
        re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    )


@functools.cache
def _maybe_secret() -> Callable[[str], object]:
    """A C-level pre-check: a string without any of these cannot match a rule of redact_text."""
    return re.compile(r"[@=]|eyJ|earer|EARER|Basic").search


@functools.cache
def _secret_word(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{word})" for word in words) or "(?!)", re.IGNORECASE)


class Redactor:
    """Masks secrets in attribute mappings according to the rules in this module's docstring.

    ``secret_key_words`` replaces the default key words; ``extra_secret_key_words`` and
    ``extra_query_parameters`` add to them. Key words other than the defaults are compiled here: a bad
    regular expression raises ``ValueError`` at construction (the defaults, on first use). Methods never
    raise on odd values. Thread-safe.
    """

    def __init__(
        self,
        *,
        secret_key_words: Iterable[str] = DEFAULT_SECRET_KEY_WORDS,
        extra_secret_key_words: Iterable[str] = (),
        extra_query_parameters: Iterable[str] = (),
    ) -> None:
        words = (*secret_key_words, *extra_secret_key_words)
        self._words = words
        if words != DEFAULT_SECRET_KEY_WORDS:
            try:
                _secret_word(words)
            except re.error as exc:
                raise ValueError(f"invalid secret key word pattern in {list(words)!r}: {exc}") from exc
        self._parameters = frozenset(
            p.lower() for p in (*DEFAULT_SENSITIVE_QUERY_PARAMETERS, *extra_query_parameters)
        )
        self._secret_keys: dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        """Whether a component of ``key`` (split on ``.``, ``_``, ``-``), or a run of them, is secret."""
        known = self._secret_keys.get(key)
        if known is None:
            known = self._match_key(key)
            if len(self._secret_keys) >= _KEY_CACHE_SIZE:
                self._secret_keys.clear()
            self._secret_keys[key] = known
        return known

    def _match_key(self, key: str) -> bool:
        parts = re.split(r"[._\-]", key)
        secret_word = _secret_word(self._words).fullmatch
        # Try every run of adjacent components so that multi-part words (api_key, set-cookie) match too.
        return any(
            secret_word("_".join(parts[i:j])) or secret_word("-".join(parts[i:j]))
            for i in range(len(parts))
            for j in range(i + 1, min(len(parts), i + 3) + 1)
        )

    def redact_text(self, text: str) -> str:
        """Return ``text`` with URL credentials, sensitive query values, auth tokens and JWTs masked."""
        url_credentials, query_parameter, auth_scheme, jwt = _text_patterns()
        if "@" in text and "://" in text:
            text = url_credentials.sub(r"\g<scheme>REDACTED:REDACTED@", text)
        if "=" in text:
            text = query_parameter.sub(self._query_parameter, text)
        if "earer" in text or "EARER" in text or "Basic" in text:
            text = auth_scheme.sub(r"\g<scheme> REDACTED", text)
        if "eyJ" in text:
            text = jwt.sub(REDACTED, text)
        return text

    def _query_parameter(self, match: re.Match[str]) -> str:
        name = match["name"]
        lowered = name.lower()
        if lowered in self._parameters or lowered.startswith("x-amz-") or self.is_secret_key(name):
            return f"{match['lead']}{name}={REDACTED}"
        return match[0]

    def redact_value(self, key: str, value: AttributeValue) -> AttributeValue:
        """Return the masked ``value`` of attribute ``key`` (the same object when nothing was masked)."""
        if self.is_secret_key(key):
            return REDACTED
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, (tuple, list)) and any(isinstance(item, str) for item in value):
            items = [self.redact_text(item) if isinstance(item, str) else item for item in value]
            if any(new is not old for new, old in zip(items, value, strict=True)):
                return tuple(items)
        return value

    def redact_attributes(self, attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue] | None:
        """Return a masked copy of ``attributes``, or ``None`` when nothing needed masking (no copy made)."""
        changed: dict[str, AttributeValue] | None = None
        secret_keys = self._secret_keys
        maybe_secret = _maybe_secret()
        for key, value in attributes.items():
            # Inlined cheap cases (this runs for every attribute of every exported span): a known clean key
            # with a scalar value, or a string that has none of the characters any rule needs.
            if secret_keys.get(key) is False:
                kind = value.__class__
                if kind is str:
                    if not maybe_secret(value):  # type: ignore[arg-type]
                        continue
                elif kind is not tuple and kind is not list:
                    continue
            masked = self.redact_value(key, value)
            if masked is not value and masked != value:
                if changed is None:
                    changed = dict(attributes)
                changed[key] = masked
        return changed
