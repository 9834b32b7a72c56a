"""A Registry v2 / OCI distribution client on HttpClient (httpx, bounded retries, capped answers).

Everything the registry sends is untrusted: manifests and blobs are checked against their digest
before use (a mismatch is an error for that repository), names it supplies (tags, catalog entries,
digests) are checked against distribution's grammar before they go into a URL, and each kind of
answer has a size cap. A listing that cannot be completed is an error, never a short list: a
missing page could hold the tag that keeps a digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from regcollect.errors import ConnectError, NotFound, RegistryError, UsageError
from regcollect.reference import PATH_RE, TAG_RE
from regcollect.registry.http import (
    HttpClient,
    IncompleteListing,
    check,
    is_loopback,
    origin,
    redact_url,
    tls_verify,
)

__all__ = [
    "RegistryClient",
    "Manifest",
    "base_url",
    "redact_url",
    "is_loopback",
    "check",
    "IncompleteListing",
]

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

MANIFEST_CAP = 4 << 20  # containerd's limit for a manifest
CONFIG_CAP = 8 << 20  # an image config; a bigger descriptor is not read at all
PAGE_CAP = 32 << 20  # one page of tags or repositories
SMALL_CAP = 1 << 20  # /v2/ and other answers we only glance at

_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$")


def base_url(registry: str, *, insecure: bool) -> str:
    """`host[:port]` or a URL. HTTPS unless the URL says http, --insecure, or the host is loopback."""
    text = registry.strip()
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
    text = text.rstrip("/")
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


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{_HASHES[algorithm](data).hexdigest()}"


def sha256_digest(data: bytes) -> str:
    return digest_of(data)


def matches_digest(data: bytes, digest: str) -> bool:
    alg = digest.split(":", 1)[0]
    return alg in _HASHES and digest_of(data, alg) == digest


def valid_tag(tag: str) -> bool:
    return bool(TAG_RE.match(tag))


def valid_repository(name: str) -> bool:
    return len(name) <= 255 and bool(PATH_RE.match(name))


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


class RegistryClient(HttpClient):
    def __init__(
        self,
        registry: str,
        *,
        auth: httpx.Auth | None = None,
        insecure: bool = False,
        ca_cert: str | None = None,
        concurrency: int = 8,
        timeout: float = 30.0,
        log: Any = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **kw: Any,
    ):
        self.registry = registry
        super().__init__(
            base_url(registry, insecure=insecure),
            auth=auth,
            verify=tls_verify(insecure, ca_cert),
            concurrency=concurrency,
            timeout=timeout,
            log=log,
            transport=transport,
            **kw,
        )
        self.dropped: dict[str, list[str]] = {}  # repository -> names that failed the grammar
        self.manifest_gets = 0  # a pull on Docker Hub's quota, a download on ghcr.io
        # repository -> (monotonic time, Listing) this run read: verification reuses a fresh one
        self.recent: dict[str, tuple[float, Any]] = {}

    def _path(self, repo: str, *rest: str) -> str:
        """/v2/<repo>/<rest>, refusing names that could leave the repository's URL space."""
        if not valid_repository(repo):
            raise RegistryError(f"invalid repository name {repo!r}")
        if len(rest) == 2 and rest != ("blobs", "uploads") and rest[0] in ("manifests", "blobs", "referrers"):
            ref = rest[1]
            if not (is_digest(ref) or (rest[0] == "manifests" and valid_tag(ref))):
                raise RegistryError(f"invalid reference {ref!r} in repository {repo}")
        return "/v2/" + "/".join((repo, *rest))

    # discovery ------------------------------------------------------------------------------
    async def ping(self) -> None:
        try:
            resp = await self.call("GET", "/v2/", f"contacting registry {self.host}", cap=SMALL_CAP)
        except NotFound as exc:
            raise ConnectError(f"{exc}: this does not serve the Registry v2 API") from None
        if "json" not in resp.headers.get("content-type", "json") and resp.text.strip().startswith("<"):
            raise ConnectError(f"{redact_url(resp.request.url)}: answered HTML, not a registry")

    async def _paged(self, first: str, key: str, what: str) -> list[str]:
        def names(doc: Any, url: str) -> list[Any]:
            page = doc.get(key) if isinstance(doc, dict) else None
            if page is None:
                return []
            if not isinstance(page, list):
                raise RegistryError(f"{what}: {url}: '{key}' is not a list")
            return [x for x in page if isinstance(x, str)]

        return await self.paged(first, what, names, key=str, cap=PAGE_CAP)

    async def catalog(self) -> list[str]:
        what = f"listing repositories of {self.host}"
        try:
            names = await self._paged("/v2/_catalog?n=1000", "repositories", what)
        except RegistryError as exc:
            if exc.code != "PAGINATION_NUMBER_INVALID":
                raise
            names = await self._paged("/v2/_catalog?n=100", "repositories", what)
        bad = [n for n in names if not valid_repository(n)]
        if bad:
            self.dropped["<catalog>"] = bad
        return [n for n in names if valid_repository(n)]

    async def tags(self, repo: str) -> list[str]:
        what = f"listing tags of {repo}"
        try:
            tags = await self._paged(self._path(repo, "tags", "list") + "?n=1000", "tags", what)
        except NotFound:
            return []
        bad = [t for t in tags if not valid_tag(t)]
        if bad:
            self.dropped[repo] = bad
        return [t for t in tags if valid_tag(t)]

    async def get_manifest(self, repo: str, ref: str) -> Manifest:
        what = f"reading manifest {repo}@{ref}" if is_digest(ref) else f"reading manifest {repo}:{ref}"
        self.manifest_gets += 1
        resp = await self.call(
            "GET",
            self._path(repo, "manifests", ref),
            what,
            headers={"Accept": MANIFEST_ACCEPT},
            cap=MANIFEST_CAP,
        )
        data = resp.content
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        if is_digest(ref):
            digest = ref
        else:
            said = resp.headers.get("Docker-Content-Digest", "")
            digest = said if is_digest(said) else sha256_digest(data)
        if not matches_digest(data, digest):
            raise RegistryError(
                f"{what}: content does not match its digest {digest} (got {sha256_digest(data)}); "
                "the registry or something in between altered it"
            )
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RegistryError(f"{what}: {redact_url(resp.request.url)}: manifest is not JSON") from None
        if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
            media_type = doc["mediaType"]
        if media_type in SCHEMA1 or (isinstance(doc, dict) and doc.get("schemaVersion") == 1):
            raise RegistryError(f"{what}: schema1 manifests are not supported")
        return Manifest(data, media_type, digest)

    async def head_manifest(self, repo: str, ref: str) -> str | None:
        """The digest a tag (or digest) resolves to now, or None when it does not exist."""
        try:
            resp = await self.call(
                "HEAD",
                self._path(repo, "manifests", ref),
                f"resolving {repo}:{ref}",
                headers={"Accept": MANIFEST_ACCEPT},
            )
        except NotFound:
            return None
        digest = resp.headers.get("Docker-Content-Digest", "")
        if is_digest(digest):
            return digest
        try:
            return (await self.get_manifest(repo, ref)).digest
        except NotFound:
            return None

    async def get_blob(self, repo: str, digest: str, *, cap: int = CONFIG_CAP) -> bytes:
        """A blob's bytes, checked against its digest before anyone uses or caches them."""
        what = f"reading blob {repo}@{digest}"
        resp = await self.call("GET", self._path(repo, "blobs", digest), what, cap=cap)
        if not matches_digest(resp.content, digest):
            raise RegistryError(
                f"{what}: content does not match its digest (got {sha256_digest(resp.content)})"
            )
        return resp.content

    async def blob_exists(self, repo: str, digest: str) -> bool:
        try:
            await self.call("HEAD", self._path(repo, "blobs", digest), f"checking blob {repo}@{digest}")
            return True
        except NotFound:
            return False

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """Descriptors from the referrers API, or None where the registry has no such API (404,
        405, 400 or a non-JSON answer). Other failures raise: a passing 503 says nothing about
        whether the API exists."""
        what = f"listing referrers of {repo}@{digest}"
        try:
            resp = await self.call(
                "GET",
                self._path(repo, "referrers", digest),
                what,
                headers={"Accept": OCI_INDEX},
                cap=PAGE_CAP,
            )
        except NotFound:
            return None
        except RegistryError as exc:
            if exc.status in (400, 405):
                return None
            raise
        if "json" not in resp.headers.get("content-type", ""):
            return None
        doc = self.json_body(resp, what)
        if not isinstance(doc, dict):
            raise RegistryError(f"{what}: the answer is not a JSON object")
        return [m for m in doc.get("manifests") or [] if isinstance(m, dict)]

    # changes --------------------------------------------------------------------------------
    async def delete_manifest(self, repo: str, ref: str) -> bool:
        """True when deleted now, False when it was already gone (idempotent)."""
        try:
            await self.call("DELETE", self._path(repo, "manifests", ref), f"deleting {repo}@{ref}")
            return True
        except NotFound:
            return False

    async def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        resp = await self.call(
            "PUT",
            self._path(repo, "manifests", ref),
            f"writing manifest {repo}:{ref}",
            content=data,
            headers={"Content-Type": media_type},
        )
        said = resp.headers.get("Docker-Content-Digest", "")
        return said if is_digest(said) else sha256_digest(data)

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
        start = self._path(repo, "blobs", "uploads") + "/"
        resp = await self.call("POST", start, what, cap=SMALL_CAP)
        location = resp.headers.get("Location", "")
        target = urljoin(self.base + start, location)
        if origin(target) != origin(self.base):
            raise RegistryError(f"{what}: upload location points to another origin")
        a = urlsplit(target)
        sep = "&" if a.query else "?"
        path = urlunsplit(("", "", a.path, a.query, "")) + f"{sep}digest={digest}"
        await self.call(
            "PUT",
            path,
            what,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
            cap=SMALL_CAP,
        )
