"""Docker Hub: listed and untagged through the Hub API, read and deleted through the registry.

The Hub API's tag listing gives, 100 tags a page, each tag's digest, its per-platform image
digests, tag_last_pushed and tag_last_pulled: planning needs no manifest GET to resolve a tag,
and a GET is a pull against the account's quota (a HEAD is not), so each manifest is read at
most once per run, by digest, and not at all when the cache has it. A tag is deleted through the
Hub API (a real untag: the manifest and its other tags stay). A manifest goes with the Registry
API's DELETE, which the Hub accepts (202) only for manifests no tag or index references (403
otherwise) and refuses outright on older setups (405): then its tags are gone but the manifest
stays stored untagged, and the run says so. Untagged manifests are not in the tag listing.
Facts and assumptions: docs/dockerhub.md and hosted-registries.md section 2.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

from regcollect.errors import AuthError, DeleteDisabled, NotFound, RegistryError, UsageError
from regcollect.registry.api import Listing, Version
from regcollect.registry.client import (
    Manifest,
    RegistryClient,
    base_url,
    is_digest,
    valid_tag,
)
from regcollect.registry.credentials import resolve
from regcollect.registry.dockerhub_rest import TOKEN_FIX, HubRest, IncompleteListing
from regcollect.registry.http import check, is_loopback, redact_url, server_errors
from regcollect.registry.opening import api_origin, registry_client, rest_settings, select_owned
from regcollect.units import parse_time

DEFAULT_API = "https://hub.docker.com"
HUB_NAMES = ("docker.io", "index.docker.io")  # what users write; the /v2 side is registry-1.docker.io
HUB_REGISTRY = "registry-1.docker.io"
GC_NOTE = (
    "Docker Hub reclaims storage itself. `regcollect restore JOURNAL` re-pushes deleted tags and "
    "manifests while their layers are still stored; what Docker Hub has already purged cannot "
    "come back (docs/dockerhub.md)."
)


class HubRegistryClient(RegistryClient):
    """/v2 on Docker Hub: every manifest GET is a pull against the quota, so one per digest per
    run (content-addressed: the bytes cannot differ), and a 429 says which limit it was."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self._read: dict[str, asyncio.Future[Manifest]] = {}

    async def get_manifest(self, repo: str, ref: str) -> Manifest:
        if not is_digest(ref):
            return await self._get(repo, ref)
        pending = self._read.get(ref)
        if pending is None:
            pending = self._read[ref] = asyncio.ensure_future(self._get(repo, ref))
        try:
            return await asyncio.shield(pending)
        except Exception:
            if self._read.get(ref) is pending:
                del self._read[ref]  # not read: the next caller asks again
            raise

    async def delete_manifest(self, repo: str, ref: str) -> bool:
        """The shared mapping makes any 403 a missing permission (fatal); here 403 is what the Hub
        answers for a manifest still tagged or referenced, which concerns that manifest only."""
        what = f"deleting {repo}@{ref}"
        try:
            resp = await self.request("DELETE", self._path(repo, "manifests", ref))
        except Exception:  # noqa: BLE001 - transport failures: the shared mapping reports them
            return await super().delete_manifest(repo, ref)
        if resp.status_code == 404:
            return False
        if resp.status_code == 403 and "retry-after" not in resp.headers:
            code, msg = server_errors(resp)
            raise RegistryError(f"{what}: 403{f' {code}' if code else ''} ({msg})", status=403, code=code)
        check(resp, what)
        return True

    async def _get(self, repo: str, ref: str) -> Manifest:
        try:
            return await super().get_manifest(repo, ref)
        except RegistryError as exc:
            if exc.status == 429:
                raise RegistryError(
                    f"{exc}; Docker Hub's pull limit (each manifest GET counts, HEAD does not): a warm "
                    "run reads manifests from the cache, so run again after the window, authenticated",
                    status=429,
                    code=exc.code,
                ) from None
            raise


class DockerHubApi:
    kind = "dockerhub"
    pull_times = True  # tag_last_pulled (null: never pulled)
    tag_delete = True  # DELETE .../tags/TAG/ removes one tag and keeps the manifest

    def __init__(self, client: RegistryClient, rest: HubRest):
        self.client = client
        self.rest = rest
        self.gc_note: str | None = GC_NOTE
        self.refused: list[str] = []  # manifests the Registry API's DELETE was refused for (405)

    @staticmethod
    def split(repo: str) -> tuple[str, str]:
        namespace, _, name = repo.partition("/")
        if not namespace or not name or "/" in name:
            raise UsageError(
                f"{repo!r}: a Docker Hub repository is NAMESPACE/NAME (e.g. acme/app; library/NAME for "
                "official images)"
            )
        return namespace, name

    def _tags_path(self, repo: str) -> str:
        ns, name = self.split(repo)
        return f"/v2/namespaces/{quote(ns, safe='')}/repositories/{quote(name, safe='')}/tags"

    # RegistryApi ------------------------------------------------------------------------------
    async def repositories(self, patterns: list[str]) -> list[str]:
        # `alpine` is `library/alpine`, as docker pull names official images.
        return await select_owned(
            [p if "/" in p else f"library/{p}" for p in patterns], "namespace", self._names
        )

    async def _names(self, ns: str, p: str) -> list[str]:
        what = f"listing the repositories of {ns}"
        first = f"/v2/namespaces/{quote(ns, safe='')}/repositories?page_size=100"
        try:
            rows, _ = await self.rest.pages(first, what, key=lambda x: x.get("name"))
        except NotFound:
            raise UsageError(f"--repo {p!r}: Docker Hub has no namespace {ns!r}") from None
        return [f"{ns}/{r['name']}" for r in rows if isinstance(r.get("name"), str)]

    async def listing(self, repo: str) -> Listing:
        """Read twice at most: the pages are offsets into a list that moves while a CI job pushes,
        so fewer tags than the last page's `count` means one may have slid past us."""
        for attempt in (1, 2):
            what = f"listing the tags of {repo}"
            try:
                rows, count = await self.rest.pages(
                    self._tags_path(repo) + "?page_size=100", what, key=lambda x: x.get("name")
                )
            except NotFound:
                return Listing(tags={})
            if count < 0 or len(rows) >= count:
                return self._listing(repo, rows)
            if attempt == 2:
                raise IncompleteListing(
                    f"{what}: {len(rows)} tags read but Docker Hub counts {count} (tags changed while "
                    "it was read); run again"
                )
        raise AssertionError("unreachable")

    def _listing(self, repo: str, rows: list[dict[str, Any]]) -> Listing:
        listing = Listing(tags={})
        for row in rows:
            tag = row.get("name")
            if not isinstance(tag, str) or not valid_tag(tag):
                self.client.dropped.setdefault(repo, []).append(str(tag))
                continue
            digest = row.get("digest")
            if not isinstance(digest, str) or not is_digest(digest):
                listing.tags[tag] = None  # the registry resolves it
                continue
            listing.tags[tag] = digest
            pushed = parse_time(row.get("tag_last_pushed")) or parse_time(row.get("last_updated"))
            # The last pull through a tag. Not images[].last_pulled: regcollect's own manifest
            # GETs by digest may set it, and one cold run would then make everything "pulled".
            pulled = parse_time(row.get("tag_last_pulled"))
            v = listing.versions.get(digest)
            if v is None:
                listing.versions[digest] = Version(digest, None, (tag,), pushed, pulled)
                continue
            v.tags = (*v.tags, tag)
            v.pushed = _later(v.pushed, pushed)  # the younger: an age is never overstated
            v.pulled = _later(v.pulled, pulled)
        return listing

    async def delete_tag(self, repo: str, tag: str) -> bool:
        ns, name = self.split(repo)
        what = f"deleting tag {repo}:{tag}"
        url = f"/v2/repositories/{quote(ns, safe='')}/{quote(name, safe='')}/tags/{quote(tag, safe='')}/"
        try:
            await self.rest.call("DELETE", url, what)
            return True
        except NotFound:
            return False
        except AuthError as exc:
            raise AuthError(f"Docker Hub refused: {exc}; {TOKEN_FIX}") from None

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        """Every tag the plan saw on the digest through the Hub API, then the manifest itself."""
        untagged = False
        for tag in tags:
            untagged = await self.delete_tag(repo, tag) or untagged
        if self.refused:
            return self._left_stored(repo, digest, tags, None)
        try:
            gone = await self.client.delete_manifest(repo, digest)
        except DeleteDisabled as exc:
            return self._left_stored(repo, digest, tags, exc)
        except AuthError as exc:
            raise AuthError(f"Docker Hub refused to delete {repo}@{digest}: {exc}; {TOKEN_FIX}") from None
        except RegistryError as exc:
            if exc.status == 403:
                raise RegistryError(
                    f"Docker Hub refused to delete {repo}@{digest} (403): it is still tagged or referenced "
                    "by another manifest (an index or a referrer), which Docker Hub does not allow",
                    status=403,
                    code=exc.code,
                ) from None
            if exc.status == 500:
                raise RegistryError(
                    f"{exc}; Docker Hub may still be deleting it in the background: run again to see",
                    status=500,
                    code=exc.code,
                ) from None
            raise
        # 404 after its tags went: the Hub removed the manifest with its last tag.
        return gone or untagged

    def _left_stored(self, repo: str, digest: str, tags: tuple[str, ...], exc: DeleteDisabled | None) -> bool:
        """405: this Hub does not take the Registry API's DELETE. The tags are gone, which is
        what pulls see; the manifest stays stored untagged (said once in the report)."""
        why = (
            f"Docker Hub refused the Registry API's DELETE ({exc.status} {exc.code or ''})".rstrip()
            if exc
            else "Docker Hub refused the Registry API's DELETE earlier in this run"
        )
        self.refused.append(digest)
        self.gc_note = (
            f"{why} for {len(self.refused)} manifest(s): their tags are deleted, the manifests stay "
            "stored untagged on Docker Hub (remove them in Docker Hub's image management). " + GC_NOTE
        )
        if tags:
            return True
        raise RegistryError(
            f"{why}: the untagged manifest {repo}@{digest} stays stored (remove it in Docker Hub's image "
            "management)",
            status=exc.status if exc else 405,
            code=exc.code if exc else None,
        )

    async def probe_delete(self, repo: str) -> None:
        """Deleting needs a login; a wrong secret shows here, before anything changed."""
        self.split(repo)
        if not self.rest.authenticated:
            raise AuthError(
                f"deleting in {repo} needs credentials: -u USER --password-stdin (or docker login); "
                + TOKEN_FIX
            )
        await self.rest.token()

    def record(self, repo: str, digest: str, version_id: str | None) -> dict[str, Any]:
        return {"api": self.kind, "api_url": self.rest.base + self.rest.prefix}

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.rest.aclose()


def _later(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def registry_for(registry: str, insecure: bool) -> str:
    """docker.io and index.docker.io are names; the /v2 API is on registry-1.docker.io."""
    host = urlsplit(base_url(registry, insecure=insecure)).netloc
    return HUB_REGISTRY if host in HUB_NAMES else registry


def open_dockerhub(opts: Any) -> DockerHubApi:
    registry = registry_for(opts.registry, opts.insecure)
    base = base_url(registry, insecure=opts.insecure)
    host = urlsplit(base).netloc
    if opts.password is not None and opts.username is None:
        raise UsageError("--password-stdin needs --username (the Docker Hub user or organisation name)")
    creds = resolve(host, opts.username, opts.password)
    if creds.identity_token and not creds.password:
        raise UsageError(
            f"the docker credentials for {host} are an OAuth identity token, which the Docker Hub API "
            f"does not accept: pass -u USER --password-stdin with a token instead; {TOKEN_FIX}"
        )
    api_url = (opts.api_url or DEFAULT_API).rstrip("/")
    api_base, api_path = api_origin(api_url, DEFAULT_API)
    api_host = urlsplit(api_base).hostname or ""
    if api_base.startswith("http://") and not (opts.insecure or is_loopback(api_host)):
        raise UsageError(
            f"--api-url {redact_url(api_url)!r} is plain HTTP: the login would cross the network "
            "unencrypted (use https://, or --insecure on a trusted network)"
        )
    client = registry_client(opts, creds, cls=HubRegistryClient, registry=registry)
    rest = HubRest(
        api_base,
        api_path,
        creds.username if creds.password else None,
        creds.password,
        say=opts.note,
        **rest_settings(opts),
    )
    return DockerHubApi(client, rest)
