"""HTTP for registries and vendor REST APIs: one httpx.AsyncClient, typed errors, bounded retries,
capped responses.

One place (`check`) turns a response into a typed error carrying the status and the server's error
code. Retries cover 429, 502, 503, 504, dropped connections and timeouts, honouring Retry-After,
within a budget: a few attempts, timeouts retried once, and no more than `max_wait` seconds spent
waiting, so a silent server costs about two timeouts, not minutes. Every body is read with a cap
(`cap=` per call): a registry can send anything, and a 4 GB tag page must end as a clear error,
not as 8 GB of memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import random
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from regcollect.errors import AuthError, ConnectError, DeleteDisabled, NotFound, RegistryError, UsageError
from regcollect.registry.limiter import START, Limiter
from regcollect.registry.transport import LeanTransport

RETRY_STATUSES = {429, 502, 503, 504}
USER_AGENT = "regcollect/0.1"
DEFAULT_CAP = 16 << 20  # bytes of any answer we did not give a cap of its own
ATTEMPTS = 5  # for refused or dropped requests (429/5xx/connection reset)
TIMEOUT_ATTEMPTS = 2  # a server that did not answer in time gets one more chance
MAX_WAIT = 60.0  # seconds of back-off and Retry-After one request may spend in total
SLOW_NOTICE = 5.0  # seconds without an answer before a person watching is told
POOL_SIZE = 16  # connections per httpx pool


MAX_PAGES = 1000


class IncompleteListing(RegistryError):
    """A paged listing that could not be read to its end: never taken for a short one."""


class ResponseTooLarge(RegistryError):
    """An answer over the cap for its kind: an error for what was being read, never a crash."""


_SECRET_QUERY = ("signature", "sig=", "token", "credential", "key=", "secret", "password")


def redact_url(url: str | httpx.URL) -> str:
    """The URL without user:password@, and without a query that carries a signature or token (a
    presigned storage URL after a redirect): never print a secret."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if any(s in query.lower() for s in _SECRET_QUERY):
        query = "(query hidden)"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def origin(url: str | httpx.URL) -> tuple[str, str, int]:
    """(scheme, host, port) after normalisation: case, a trailing dot, default ports, IPv6 spelling.
    Two URLs are the same origin exactly when these are equal; DNS is never asked."""
    u = httpx.URL(str(url))
    scheme = u.scheme.lower()
    host = u.host.lower().rstrip(".")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    port = u.port or (443 if scheme == "https" else 80)
    return scheme, host, port


def server_errors(resp: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of a registry `errors` body or a REST API's `message`, if any."""
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, httpx.ResponseNotRead):
        return None, None
    if not isinstance(body, dict):
        return None, None
    errs = body.get("errors")
    if isinstance(errs, list) and errs and isinstance(errs[0], dict):
        code, msg = errs[0].get("code"), errs[0].get("message")
        return (str(code) if code else None), (str(msg)[:300] if msg else None)
    msg = body.get("message")
    return None, (str(msg)[:300] if isinstance(msg, str) else None)


def check(resp: httpx.Response, what: str) -> httpx.Response:
    """Raise the typed error for a non-2xx response; `what` says what we were doing."""
    if resp.status_code < 400:
        return resp
    code, msg = server_errors(resp)
    detail = f"{resp.status_code}" + (f" {code}" if code else "") + (f" ({msg})" if msg else "")
    where = f"{resp.request.method} {redact_url(resp.request.url)}"
    status = resp.status_code
    if status == 401 or (status == 403 and not _rate_limited(resp)):
        raise AuthError(f"{what}: {where}: {detail}")
    if status == 404:
        raise NotFound(f"{what}: {where}: {detail}", status=status, code=code)
    if resp.request.method == "DELETE" and (status == 405 or code == "UNSUPPORTED"):
        raise DeleteDisabled(
            f"{what}: the registry has deletion disabled ({where}: {detail}); "
            "in distribution set storage.delete.enabled: true",
            status=status,
            code=code,
        )
    raise RegistryError(f"{what}: {where}: {detail}", status=status, code=code)


def _rate_limited(resp: httpx.Response) -> bool:
    """GitHub answers a rate limit with 403 and a Retry-After or an exhausted quota."""
    h = resp.headers
    return "retry-after" in h or h.get("x-ratelimit-remaining") == "0"


class _Retryable(Exception):
    def __init__(self, resp: httpx.Response):
        super().__init__(f"{resp.status_code}")
        self.resp = resp


def _is_tls(exc: Exception) -> bool:
    text = str(exc).upper()
    return "SSL" in text or "CERTIFICATE" in text or "TLS" in text


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or an HTTP date), or Docker Hub's
    X-Retry-After / a reset time (Unix seconds)."""
    h = resp.headers
    value = h.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(when.timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            pass
    for name in ("x-retry-after", "x-ratelimit-reset"):
        raw = h.get(name, "").strip()
        if raw.isdigit() and (name == "x-retry-after" or h.get("x-ratelimit-remaining") == "0"):
            # A Unix time (Docker Hub, GitHub); a small number is seconds from now.
            return float(raw) if int(raw) < 10**9 else max(float(raw) - time.time(), 0.0)
    return None


def _proxied(url: str) -> bool:
    """The environment routes this URL through a proxy (httpx's transport handles proxies)."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def _kind(method: str, url: str) -> str:
    """What kind of request, for the limiter's latency baseline: a DELETE is slower than a HEAD."""
    for part in ("/manifests/", "/blobs/", "/tags/", "/_catalog", "/referrers/"):
        if part in url:
            return method + part
    return method


def _backoff(failed_attempt: int) -> float:
    base = min(0.1 * (2 ** (failed_attempt - 1)), 5.0)
    return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not crypto


@dataclass
class RateLimits:
    """The quota a server announces: the latest figures (to slow down before it runs out) and
    the lowest remaining seen (for the summary)."""

    lowest: int | None = None
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # Unix time the quota refills

    def note(self, resp: httpx.Response) -> None:
        h = resp.headers
        for name in ("ratelimit-remaining", "x-ratelimit-remaining"):
            raw = h.get(name, "").split(";", 1)[0].strip()
            if not raw.isdigit():
                continue
            self.remaining = int(raw)
            limit = h.get(name.replace("remaining", "limit"), "").split(";", 1)[0].strip()
            reset = h.get(name.replace("remaining", "reset"), "").split(";", 1)[0].strip()
            self.reset = float(reset) if reset.isdigit() and int(reset) > 10**9 else None
            if self.lowest is None or self.remaining < self.lowest:
                self.lowest = self.remaining
                self.limit = int(limit) if limit.isdigit() else None
            return


def tls_verify(insecure: bool, ca_cert: str | None) -> bool | ssl.SSLContext:
    if ca_cert:
        try:
            return ssl.create_default_context(cafile=ca_cert)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--ca-cert {ca_cert}: cannot load certificate: {exc}") from None
    return not insecure


class HttpClient:
    """Requests to one origin (a registry or a vendor API) over httpx, with the rules above."""

    def __init__(
        self,
        base: str,
        *,
        auth: httpx.Auth | None = None,
        verify: bool | ssl.SSLContext = True,
        concurrency: int = 8,
        timeout: float = 30.0,
        attempts: int = ATTEMPTS,
        max_wait: float = MAX_WAIT,
        log: Callable[[str], None] | None = None,
        notice: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        fixed: bool = False,
    ):
        """`concurrency` is the most requests in flight; the limiter finds how many pay (unless
        `fixed`: always that many)."""
        self.base = base
        self.host = urlsplit(base).netloc
        # httpcore's pool costs CPU that grows with the square of its connections (5.6 ms a
        # request at 64, 0.45 ms as 4 pools of 16; docs/performance.md): several small pools.
        shards = -(-max(1, concurrency) // POOL_SIZE)
        per = -(-max(1, concurrency) // shards)
        lean = transport is None and base.startswith("http://") and not _proxied(base)
        self.pools = [
            httpx.AsyncClient(
                base_url=base,
                auth=auth,
                verify=verify,
                timeout=timeout,
                limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
                headers={"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})},
                transport=LeanTransport(max_idle=per) if lean else transport,
                follow_redirects=True,
                http2=base.startswith("https://") and transport is None,
            )
            for _ in range(shards)
        ]
        self.http = self.pools[0]
        self._turn = 0
        self.limiter = Limiter(concurrency, start=concurrency if fixed else START)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.max_wait = max_wait
        self.log = log
        self.notice = notice  # a person watching: told when we wait, so a pause is not a hang
        # Called before each attempt: a vendor API paces itself here (quota, points per minute).
        self.pace: Callable[[str], Awaitable[None]] | None = None
        self.requests = 0
        self.rate = RateLimits()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()

    async def request(self, method: str, url: str, *, cap: int = DEFAULT_CAP, **kw: Any) -> httpx.Response:
        """Send with retries within the budget; return the final response (not checked)."""
        waited = 0.0
        attempt = 0
        timeouts = 0
        while True:
            attempt += 1
            try:
                if self.pace is not None:
                    await self.pace(method)
                return await self._limited(method, url, cap, kw)
            except _Retryable as exc:
                after = retry_after(exc.resp)
                pause = _backoff(attempt) if after is None else after
                if attempt >= self.attempts or waited + pause > self.max_wait:
                    raise
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError) and _is_tls(exc):
                    raise  # a certificate will not verify on the next attempt either
                if isinstance(exc, httpx.TimeoutException):
                    timeouts += 1
                    if timeouts >= TIMEOUT_ATTEMPTS:
                        raise
                if attempt >= self.attempts:
                    raise
                pause = _backoff(attempt)
                if waited + pause > self.max_wait:
                    raise
            if pause >= 1:
                self._tell(f"waiting {pause:.0f} s before retrying {method} {redact_url(self.base + url)}")
            await asyncio.sleep(pause)
            waited += pause

    async def _limited(self, method: str, url: str, cap: int, kw: dict[str, Any]) -> httpx.Response:
        await self.limiter.acquire()
        started = time.monotonic()
        latency: float | None = None
        congested = False
        try:
            resp = await self._attempt(method, url, cap, kw)
            latency = time.monotonic() - started
            return resp
        except _Retryable as exc:
            congested = exc.resp.status_code in (429, 503) or _rate_limited(exc.resp)
            raise
        except httpx.TimeoutException:
            congested = True
            raise
        finally:
            self.limiter.release(_kind(method, url), latency, congested)
            left = self.rate.remaining
            if left is not None and left < self.limiter.limit:
                # Slow down before the quota ends rather than after: no more in flight than
                # half of what is left.
                self.limiter.limit = max(1.0, left / 2)

    def _tell(self, text: str) -> None:
        for say in (self.notice, self.log):
            if say:
                say(text)

    async def _attempt(self, method: str, url: str, cap: int, kw: dict[str, Any]) -> httpx.Response:
        started = time.monotonic()
        self.requests += 1
        slow = None
        if self.notice:
            slow = asyncio.get_running_loop().call_later(
                SLOW_NOTICE, self.notice, f"still waiting for {self.host} to answer {method} {url[:80]} ..."
            )
        try:
            # A whole-answer deadline too: httpx's timeout is per read, and a server that drips
            # one byte a minute would never trip it.
            async with asyncio.timeout(self.timeout * 2):
                resp = await self._send_capped(method, url, cap, kw)
        except TimeoutError:
            exc = httpx.ReadTimeout(f"no complete answer within {self.timeout * 2:.0f} s")
            self._log_failure(method, url, exc)
            raise exc from None
        except httpx.TransportError as exc:
            self._log_failure(method, url, exc)
            raise
        finally:
            if slow is not None:
                slow.cancel()
        self.rate.note(resp)
        if self.log:
            ms = (time.monotonic() - started) * 1000
            where = redact_url(resp.request.url)
            self.log(f"{method} {where} -> {resp.status_code} {resp.http_version} ({ms:.0f} ms)")
        if resp.status_code in RETRY_STATUSES or (resp.status_code == 403 and _rate_limited(resp)):
            raise _Retryable(resp)
        return resp

    def _log_failure(self, method: str, url: str, exc: Exception) -> None:
        if self.log:
            self.log(f"{method} {redact_url(self.base + url)} -> {type(exc).__name__}")

    async def _send_capped(self, method: str, url: str, cap: int, kw: dict[str, Any]) -> httpx.Response:
        self._turn = (self._turn + 1) % len(self.pools)
        pool = self.pools[self._turn]
        request = pool.build_request(method, url, **kw)
        resp = await pool.send(request, stream=True)
        try:
            length = resp.headers.get("content-length", "")
            if method != "HEAD" and length.isdigit() and int(length) > cap:
                raise ResponseTooLarge(
                    f"{method} {redact_url(resp.request.url)}: answer of {int(length)} bytes is over "
                    f"the {cap} byte limit for this kind of request",
                    status=resp.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise ResponseTooLarge(
                        f"{method} {redact_url(resp.request.url)}: answer is over the {cap} byte "
                        "limit for this kind of request",
                        status=resp.status_code,
                    )
                chunks.append(chunk)
        finally:
            await resp.aclose()
        headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            resp.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=resp.request,
            extensions={k: v for k, v in resp.extensions.items() if k != "network_stream"},
        )

    async def call(self, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        """request() with transport failures and exhausted retries mapped to typed errors."""
        try:
            resp = await self.request(method, url, **kw)
        except _Retryable as exc:
            resp = exc.resp
            after = retry_after(resp)
            if after is not None and after > self.max_wait:
                code, msg = server_errors(resp)
                raise RegistryError(
                    f"{what}: {redact_url(resp.request.url)}: {resp.status_code}: rate limited, the "
                    f"server asks to wait {after:.0f} s, more than the {self.max_wait:.0f} s allowed",
                    status=resp.status_code,
                    code=code,
                ) from None
            return check(resp, what)
        except httpx.ConnectError as exc:
            if _is_tls(exc):
                raise ConnectError(
                    f"{what}: TLS failed for {redact_url(self.base + url)}: {exc} "
                    "(use --ca-cert FILE, or --insecure for a registry without valid TLS)"
                ) from None
            raise ConnectError(f"{what}: cannot connect to {redact_url(self.base + url)}: {exc}") from None
        except httpx.TimeoutException:
            raise ConnectError(
                f"{what}: {redact_url(self.base + url)}: no answer within {self.timeout:.0f} s "
                f"(tried {TIMEOUT_ATTEMPTS} times; --timeout sets the limit)"
            ) from None
        except httpx.TransportError as exc:
            raise ConnectError(
                f"{what}: {redact_url(self.base + url)}: {type(exc).__name__}: {exc}"
            ) from None
        except httpx.TooManyRedirects as exc:
            raise ConnectError(f"{what}: {redact_url(self.base + url)}: {exc}") from None
        return check(resp, what)

    def json_body(self, resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise RegistryError(
                f"{what}: {redact_url(resp.request.url)}: {resp.status_code} but the body is not JSON",
                status=resp.status_code,
            ) from None

    async def paged(
        self,
        first: str,
        what: str,
        items: Callable[[Any, str], list[Any]],
        *,
        key: Callable[[Any], Any],
        cap: int = DEFAULT_CAP,
    ) -> list[Any]:
        """Every item of a listing paged by Link rel=next, or IncompleteListing. Follows a link
        only to our own origin (compared after normalisation, so `REGISTRY.example:443` is
        `registry.example`), at most MAX_PAGES pages, and stops with an error on a repeated link
        or on a page that adds nothing new: a missing page could hold what keeps a digest."""
        url: str | None = first
        seen_urls: set[str] = set()
        out: list[Any] = []
        known: set[Any] = set()
        pages = 0
        while url:
            if url in seen_urls:
                raise IncompleteListing(f"{what}: the next-page link repeats ({redact_url(url)})")
            if pages >= MAX_PAGES:
                raise IncompleteListing(f"{what}: more than {MAX_PAGES} pages; giving up")
            seen_urls.add(url)
            pages += 1
            resp = await self.call("GET", url, what, cap=cap)
            page = items(self.json_body(resp, what), redact_url(resp.request.url))
            new = [x for x in page if key(x) not in known]
            url = self._next_link(resp, what)
            if url and not new and pages > 1:
                raise IncompleteListing(f"{what}: page {pages} added nothing new but links to another")
            known.update(key(x) for x in new)
            out.extend(new)
        return out

    def _next_link(self, resp: httpx.Response, what: str) -> str | None:
        for link in resp.headers.get_list("Link", split_commas=True):
            if 'rel="next"' not in link and "rel=next" not in link:
                continue
            target = link.split(";", 1)[0].strip().strip("<>")
            absolute = urljoin(str(resp.request.url), target)
            if origin(absolute) != origin(self.base):
                raise IncompleteListing(
                    f"{what}: the next page is on another origin ({redact_url(absolute)}), not "
                    f"{redact_url(self.base)}; not followed, so the listing is incomplete"
                )
            a = urlsplit(absolute)
            return urlunsplit(("", "", a.path, a.query, ""))
        return None
