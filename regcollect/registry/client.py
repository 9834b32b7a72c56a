"""A Registry v2 / OCI distribution client over httpx (async, one pool, bounded concurrency).

One place (`check`) turns a response into a typed error carrying status and registry error code.
Retries (tenacity) cover 429, 502, 503, 504, connection errors and timeouts, honouring Retry-After.
Digests are computed from the bytes received, never from a re-serialised document.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import random
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
)

from regcollect.errors import (
    AuthError,
    ConnectError,
    DeleteDisabled,
    NotFound,
    RegistryError,
    UsageError,
)
from regcollect.registry.sender import LeanSender
from regcollect.registry.transport import LeanTransport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
RETRY_STATUSES = {429, 502, 503, 504}
USER_AGENT = "regcollect/0.1"


def redact_url(url: str | httpx.URL) -> str:
    """The URL without user:password@ (never print a secret)."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def lean_transport_fits(url: str) -> bool:
    """Our lean transport, unless the environment routes this registry through a proxy (httpx's
    own transport handles proxies) or REGCOLLECT_HTTP_TRANSPORT=httpx asks for httpx's."""
    if os.environ.get("REGCOLLECT_HTTP_TRANSPORT", "lean") == "httpx":
        return False
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname or "", proxies))


def base_url(registry: str, *, insecure: bool) -> str:
    """`host[:port]` or a URL. HTTPS unless the URL says http, --insecure, or the host is loopback."""
    text = registry.strip().rstrip("/")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"invalid registry URL {redact_url(text)!r}")
        if parts.username or parts.password:
            raise UsageError(
                f"registry URL {redact_url(text)!r} holds credentials: use --username and "
                "--password-stdin or a docker config file instead"
            )
        return f"{parts.scheme}://{parts.netloc}"
    if "@" in text:  # user[:password]@host: name only the host, never the userinfo
        raise UsageError(
            f"registry {text.rsplit('@', 1)[-1]!r} is given with user:password@ (credentials): use "
            "--username and --password-stdin or a docker config file instead"
        )
    if "/" in text or not text:
        raise UsageError(f"invalid registry {text!r}: expected host[:port] or a URL")
    host = urlsplit(f"//{text}").hostname or text
    scheme = "http" if insecure or is_loopback(host) else "https"
    return f"{scheme}://{text}"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_errors(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return []
    errs = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errs if isinstance(e, dict)] if isinstance(errs, list) else []


def check(resp: httpx.Response, what: str) -> httpx.Response:
    """Raise the typed error for a non-2xx response; `what` says what we were doing."""
    if resp.status_code < 400:
        return resp
    errs = registry_errors(resp)
    code = errs[0].get("code") if errs else None
    msg = errs[0].get("message") if errs else None
    detail = f"{resp.status_code}" + (f" {code}" if code else "") + (f" ({msg})" if msg else "")
    where = f"{resp.request.method} {redact_url(resp.request.url)}"
    status = resp.status_code
    if status in (401, 403):
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


class _Retryable(Exception):
    def __init__(self, resp: httpx.Response):
        super().__init__(f"{resp.status_code}")
        self.resp = resp


def _is_tls(exc: Exception) -> bool:
    text = str(exc).upper()
    return "SSL" in text or "CERTIFICATE" in text or "TLS" in text


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.ConnectError) and _is_tls(exc):
        return False  # a certificate will not verify on the next attempt either
    return isinstance(exc, _Retryable | httpx.TransportError)


def _backoff(failed_attempt: int, exc: BaseException | None) -> float:
    """Seconds to wait after attempt N failed: Retry-After when given, else jittered doubling."""
    if isinstance(exc, _Retryable):
        after = exc.resp.headers.get("Retry-After", "")
        if after.isdigit():
            return min(float(after), 30.0)
    base = min(0.1 * (2 ** (failed_attempt - 1)), 5.0)
    return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not crypto


@dataclass
class Manifest:
    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.data)
        if not isinstance(doc, dict):
            raise ValueError("manifest is not a JSON object")
        return doc


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        auth: httpx.Auth | None = None,
        insecure: bool = False,
        ca_cert: str | None = None,
        concurrency: int = 8,
        attempts: int = 8,
        timeout: float = 30.0,
        log: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.registry = registry
        self.base = base_url(registry, insecure=insecure)
        self.host = urlsplit(self.base).netloc
        verify: bool | ssl.SSLContext = True
        if ca_cert:
            try:
                verify = ssl.create_default_context(cafile=ca_cert)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--ca-cert {ca_cert}: cannot load certificate: {exc}") from None
        elif insecure:
            verify = False
        if transport is None and lean_transport_fits(self.base):
            transport = LeanTransport(ssl_context=httpx.create_ssl_context(verify), max_idle=concurrency)
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        self.http: LeanSender | httpx.AsyncClient
        if isinstance(transport, LeanTransport):
            self.http = LeanSender(self.base, transport, auth=auth, timeout=timeout, headers=headers)
        else:
            self.http = httpx.AsyncClient(
                base_url=self.base,
                auth=auth,
                verify=verify,
                timeout=timeout,
                limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
                headers=headers,
                transport=transport,
                follow_redirects=True,
            )
        self.sem = asyncio.Semaphore(concurrency)
        self.attempts = attempts
        self.log = log
        self.requests = 0

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Send with retries; return the final response (not checked). The first attempt goes
        without tenacity's bookkeeping (about 0.1 ms of CPU a request); a retryable failure hands
        the remaining attempts to it."""
        async with self.sem:
            try:
                return await self._attempt(method, url, kw)
            except Exception as exc:
                if self.attempts <= 1 or not _retryable(exc):
                    raise
                await asyncio.sleep(_backoff(1, exc))
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                stop=stop_after_attempt(self.attempts - 1),
                wait=lambda state: _backoff(
                    state.attempt_number + 1, state.outcome.exception() if state.outcome else None
                ),
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(method, url, kw)
        raise AssertionError("unreachable")

    async def _attempt(self, method: str, url: str, kw: dict[str, Any]) -> httpx.Response:
        started = time.monotonic()
        self.requests += 1
        try:
            resp = await self.http.request(method, url, **kw)
        except httpx.TransportError as exc:
            if self.log:
                self.log(f"{method} {redact_url(self.base + url)} -> {type(exc).__name__}")
            raise
        if self.log:
            ms = (time.monotonic() - started) * 1000
            self.log(f"{method} {redact_url(resp.request.url)} -> {resp.status_code} ({ms:.0f} ms)")
        if resp.status_code in RETRY_STATUSES:
            raise _Retryable(resp)
        return resp

    async def call(self, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        """request() with transport failures and exhausted retries mapped to typed errors."""
        try:
            resp = await self.request(method, url, **kw)
        except _Retryable as exc:
            return check(exc.resp, what)
        except httpx.ConnectError as exc:
            if _is_tls(exc):
                raise ConnectError(
                    f"{what}: TLS failed for {redact_url(self.base + url)}: {exc} "
                    "(use --ca-cert FILE, or --insecure for a registry without valid TLS)"
                ) from None
            raise ConnectError(f"{what}: cannot connect to {redact_url(self.base + url)}: {exc}") from None
        except httpx.TransportError as exc:
            raise ConnectError(
                f"{what}: {redact_url(self.base + url)}: {type(exc).__name__}: {exc}"
            ) from None
        except httpx.TooManyRedirects as exc:
            raise ConnectError(f"{what}: {redact_url(self.base + url)}: {exc}") from None
        return check(resp, what)

    def json_body(self, resp: httpx.Response, what: str) -> dict[str, Any]:
        try:
            doc = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            raise ConnectError(
                f"{what}: {redact_url(resp.request.url)}: {resp.status_code} but the body is not a "
                "JSON object (is this a registry?)"
            )
        return doc

    # discovery ------------------------------------------------------------------------------
    async def ping(self) -> None:
        try:
            resp = await self.call("GET", "/v2/", f"contacting registry {self.host}")
        except NotFound as exc:
            raise ConnectError(f"{exc}: this does not serve the Registry v2 API") from None
        if "json" not in resp.headers.get("content-type", "json") and resp.text.strip().startswith("<"):
            raise ConnectError(f"{redact_url(resp.request.url)}: answered HTML, not a registry")

    async def _paged(self, first: str, key: str, what: str) -> AsyncIterator[str]:
        """Follow Link rel=next verbatim, same scheme and host only, stopping on a repeat."""
        url: str | None = first
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            resp = await self.call("GET", url, what)
            doc = self.json_body(resp, what)
            items = doc.get(key) or []
            if not isinstance(items, list):
                raise ConnectError(f"{what}: {redact_url(resp.request.url)}: '{key}' is not a list")
            for item in items:
                if isinstance(item, str):
                    yield item
            url = self._next_link(resp)

    def _next_link(self, resp: httpx.Response) -> str | None:
        link = resp.headers.get("Link")
        if not link:
            return None
        for part in link.split(","):
            if 'rel="next"' not in part and "rel=next" not in part:
                continue
            target = part.split(";", 1)[0].strip().strip("<>")
            absolute = urljoin(str(resp.request.url), target)
            a, b = urlsplit(absolute), urlsplit(self.base)
            if (a.scheme, a.netloc) != (b.scheme, b.netloc):
                return None  # never follow a registry elsewhere
            return urlunsplit(("", "", a.path, a.query, ""))
        return None

    async def catalog(self) -> list[str]:
        what = f"listing repositories of {self.host}"
        try:
            return [r async for r in self._paged("/v2/_catalog?n=1000", "repositories", what)]
        except RegistryError as exc:
            if exc.code == "PAGINATION_NUMBER_INVALID":
                return [r async for r in self._paged("/v2/_catalog?n=100", "repositories", what)]
            raise

    async def tags(self, repo: str) -> list[str]:
        what = f"listing tags of {repo}"
        try:
            return [t async for t in self._paged(f"/v2/{repo}/tags/list?n=1000", "tags", what)]
        except NotFound:
            return []

    async def get_manifest(self, repo: str, ref: str) -> Manifest:
        what = f"reading manifest {repo}:{ref}" if ":" not in ref else f"reading manifest {repo}@{ref}"
        resp = await self.call(
            "GET", f"/v2/{repo}/manifests/{ref}", what, headers={"Accept": MANIFEST_ACCEPT}
        )
        data = resp.content
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and ref != digest:
            raise RegistryError(f"{what}: content does not match its digest (got {digest})")
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConnectError(f"{what}: {redact_url(resp.request.url)}: manifest is not JSON") from None
        if isinstance(doc, dict) and doc.get("mediaType"):
            media_type = doc["mediaType"]
        if media_type in SCHEMA1 or (isinstance(doc, dict) and doc.get("schemaVersion") == 1):
            raise RegistryError(f"{what}: schema1 manifests are not supported")
        return Manifest(data, media_type, digest)

    async def head_manifest(self, repo: str, ref: str) -> str | None:
        """The digest a tag (or digest) resolves to now, or None when it does not exist."""
        try:
            resp = await self.call(
                "HEAD",
                f"/v2/{repo}/manifests/{ref}",
                f"resolving {repo}:{ref}",
                headers={"Accept": MANIFEST_ACCEPT},
            )
        except NotFound:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return (await self.get_manifest(repo, ref)).digest

    async def get_blob(self, repo: str, digest: str) -> bytes:
        resp = await self.call("GET", f"/v2/{repo}/blobs/{digest}", f"reading blob {repo}@{digest}")
        return resp.content

    async def blob_exists(self, repo: str, digest: str) -> bool:
        try:
            await self.call("HEAD", f"/v2/{repo}/blobs/{digest}", f"checking blob {repo}@{digest}")
            return True
        except NotFound:
            return False

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """Descriptors from the referrers API, or None where the registry lacks it."""
        what = f"listing referrers of {repo}@{digest}"
        try:
            resp = await self.call(
                "GET", f"/v2/{repo}/referrers/{digest}", what, headers={"Accept": OCI_INDEX}
            )
        except (NotFound, RegistryError):
            return None
        if "json" not in resp.headers.get("content-type", ""):
            return None
        doc = self.json_body(resp, what)
        return [m for m in doc.get("manifests") or [] if isinstance(m, dict)]

    # changes --------------------------------------------------------------------------------
    async def delete_manifest(self, repo: str, ref: str) -> bool:
        """True when deleted now, False when it was already gone (idempotent)."""
        try:
            await self.call("DELETE", f"/v2/{repo}/manifests/{ref}", f"deleting {repo}@{ref}")
            return True
        except NotFound:
            return False

    async def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        resp = await self.call(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            f"writing manifest {repo}:{ref}",
            content=data,
            headers={"Content-Type": media_type},
        )
        return resp.headers.get("Docker-Content-Digest") or sha256_digest(data)

    async def put_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload (POST, then PUT). A session is not resumable, so a failed upload is
        retried whole; a blob that exists afterwards counts as uploaded (the lost answer case)."""
        digest = sha256_digest(data)
        for attempt in range(3):
            if await self.blob_exists(repo, digest):
                return digest
            try:
                await self._upload(repo, data, digest)
                return digest
            except (NotFound, RegistryError):
                if attempt == 2:
                    raise
        return digest

    async def _upload(self, repo: str, data: bytes, digest: str) -> None:
        what = f"uploading blob to {repo}"
        resp = await self.call("POST", f"/v2/{repo}/blobs/uploads/", what)
        location = resp.headers.get("Location", "")
        target = urljoin(self.base + f"/v2/{repo}/blobs/uploads/", location)
        a = urlsplit(target)
        if a.netloc != urlsplit(self.base).netloc:
            raise RegistryError(f"{what}: upload location points to another host")
        sep = "&" if a.query else "?"
        path = urlunsplit(("", "", a.path, a.query, "")) + f"{sep}digest={digest}"
        await self.call("PUT", path, what, content=data, headers={"Content-Type": "application/octet-stream"})
