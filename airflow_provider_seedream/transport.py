"""The sync HTTP shell's bounds: a whole answer within its time, a body within its size.

``requests`` (like every HTTP client here) applies its timeout to each socket read, so a server that sends one byte
a second keeps a call alive for as long as it likes. ``deadline`` bounds the whole exchange instead: the connections
a request uses while it is open are registered with a timer, and when the timer fires their sockets are shut down,
which ends any read blocked on them at once. ``fetch`` reads an answer through ``limits.BoundedBody``, so that an
endless or enormous answer stops at its cap, and turns every failure into the provider's typed errors.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import limits

_local = threading.local()


def _cut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            # The plain socket's shutdown, also for TLS sockets: it wakes a read blocked in another thread at once.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class Deadline:
    """The end of one exchange: connections registered with it are cut when ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.finished = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def watch(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.expired:
                _cut(conn)

    def _expire(self) -> None:
        with self._lock:
            if self.finished:  # the exchange ended first: its connection may already serve the next request
                return
            self.expired = True
            for conn in self._conns:
                _cut(conn)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound every request this thread makes through a ``bounded_session`` inside the block to ``seconds`` in all."""
    bound = Deadline(seconds)
    previous = getattr(_local, "deadline", None)
    _local.deadline = bound
    bound._timer.start()
    try:
        yield bound
    finally:
        bound._timer.cancel()
        with bound._lock:  # after this, a timer that fires anyway cuts nothing; ``expired`` is final
            bound.finished = True
        _local.deadline = previous


def _watch(conn: Any) -> None:
    bound: Deadline | None = getattr(_local, "deadline", None)
    if bound is not None:
        bound.watch(conn)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)  # also a pooled connection re-used for this request
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _BoundedAdapter(HTTPAdapter):
    """An adapter whose connections register with the thread's ``deadline`` (direct and through http proxies)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def bounded_session(headers: dict[str, str] | None = None, *, direct: bool = False) -> requests.Session:
    """Return a ``requests.Session`` whose requests obey ``deadline``.

    :param direct: ignore proxy settings of the environment (``HTTP_PROXY``...): for a plain-http loopback base URL,
        whose Bearer key must not travel in clear text to a proxy.
    """
    session = requests.Session()
    if direct:
        session.trust_env = False
    adapter = _BoundedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if headers:
        session.headers.update(headers)
    return session


def transport_error(error: BaseException, what: str) -> exc.SeedreamTransportError:
    """Classify a ``requests``/``urllib3`` failure by whether the request may have reached the server."""
    sent = True
    if isinstance(error, requests.ConnectTimeout):
        sent = False
    elif isinstance(error, requests.ConnectionError) and not isinstance(error, requests.ReadTimeout):
        # "Could not connect" arrives wrapped: requests' error -> urllib3's MaxRetryError -> the reason.
        reason = error.args[0] if error.args else None
        inner = getattr(reason, "reason", reason)
        if isinstance(inner, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError,
                              urllib3.exceptions.ConnectTimeoutError)):
            sent = False
    return exc.SeedreamTransportError(f"{what}: no answer from kie.ai ({type(error).__name__})", sent=sent)


def fetch(session: requests.Session, method: str, url: str, what: str, *, timeout: float, connect_timeout: float,
          cap: int = limits.MAX_JSON_BYTES, **kwargs: Any) -> limits.Answer:
    """Send one request and read the whole answer within ``timeout`` seconds and ``cap`` bytes.

    Raises ``SeedreamTransportError`` (no whole answer in time: ``sent`` says whether the request may have arrived)
    or ``SeedreamResponseError`` (an answer past the cap, or compressed in a way we do not read).
    """
    with deadline(timeout) as bound:
        try:
            response = session.request(method, url, timeout=(min(connect_timeout, timeout), timeout),
                                        allow_redirects=False, stream=True, **kwargs)
            with response:
                body = limits.open_body(response.headers, cap)
                for chunk in response.raw.stream(limits.READ_CHUNK_BYTES, decode_content=False):
                    body.feed(chunk)
                data = body.finish()
        except (limits.BodyTooLarge, limits.BodyUndecodable) as error:
            raise exc.SeedreamResponseError(f"{what}: {error}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            if bound.expired:
                raise exc.SeedreamTransportError(limits.too_slow(what, timeout), sent=True) from None
            raise transport_error(error, what) from None
    if bound.expired:  # a cut socket reads as the end of a body that had no length: never take that as whole
        raise exc.SeedreamTransportError(limits.too_slow(what, timeout), sent=True)
    return limits.Answer(response.status_code, data, response.headers.get("Retry-After"))
