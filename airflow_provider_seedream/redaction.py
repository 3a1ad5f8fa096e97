"""What of a server's words may be repeated: every text from outside, with the API key taken out and cut short.

Servers, proxies and result hosts are not trusted to keep the key to themselves: a ``msg`` may echo the
``Authorization`` header, a ``failMsg`` may quote the request. Everything they say passes through a ``Redactor``
before it reaches an exception, a log line, a trigger event (stored in the metadata DB), XCom or the connection
test; ``redact_url`` drops what may be a credential from a URL before it is logged. Pure functions; the hook builds
one ``Redactor`` per connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

#: What a secret is replaced with.
MASK = "***"
#: The most characters of server text kept in one message (msg, failMsg, a body snippet); the rest is cut.
MAX_MESSAGE_CHARS = 2048
#: Secrets shorter than this are not searched for (a one-letter "key" would mask every occurrence of that letter).
MIN_SECRET_CHARS = 4


def secret_forms(secret: str) -> tuple[str, ...]:
    """Return the ways ``secret`` can appear in text a server sends back: as is, URL-quoted, JSON-escaped."""
    if len(secret) < MIN_SECRET_CHARS:
        return ()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1]}
    return tuple(sorted(forms, key=len, reverse=True))


def cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, saying how much was dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters cut]"


@dataclass(frozen=True)
class Redactor:
    """Takes given secrets out of text, case-insensitively and in every form ``secret_forms`` names."""

    secrets: tuple[str, ...] = field(default=(), repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forms = sorted({form for secret in self.secrets for form in secret_forms(secret)}, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(form) for form in forms), re.IGNORECASE) if forms else None
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def of(cls, secrets: Iterable[str | None]) -> Redactor:
        return cls(tuple(secret for secret in secrets if secret))

    def text(self, value: str, limit: int | None = MAX_MESSAGE_CHARS) -> str:
        """Return ``value`` without secrets, cut to ``limit`` characters (``None``: not cut)."""
        if self._pattern is not None:
            value = self._pattern.sub(MASK, value)
        return cut(value, limit) if limit is not None else value

    def bytes_snippet(self, body: bytes | str, limit: int = 200) -> str:
        """Return the start of a body as text for a message: decoded leniently, redacted, cut."""
        text = body if isinstance(body, str) else body[: limit * 4 + 1024].decode("utf-8", "replace")
        # Redact before cutting: a secret must not survive because the cut split it.
        return self.text(text, limit)

    def tree(self, value: Any) -> Any:
        """Return a parsed JSON value with every string (keys included) redacted; strings are not cut here."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(MASK, value)
        if isinstance(value, Mapping):
            return {self.tree(k) if isinstance(k, str) else k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(item) for item in value]
        return value


#: A redactor that knows no secret: still cuts long text.
NO_SECRETS = Redactor()


def redact_url(url: str) -> str:
    """Drop what may be a credential from a URL before it is logged: the password and the query string."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
