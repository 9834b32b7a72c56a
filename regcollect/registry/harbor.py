"""Harbor v2: listed and deleted through Harbor's REST API (/api/v2.0), read through /v2.

The artifacts API gives, per repository and in pages of 100, every artifact with its digest, tags,
push_time and pull_time, its index children (`references`: Harbor hides children from the rows)
and its signatures and SBOMs (`accessories`, likewise hidden). So tags need no manifest GET to be
resolved, untagged children and accessories are seen, and `unpulled_for` can be answered from
pull_time (the zero time means never pulled). Repository names go into REST paths URL-encoded
twice (a/b -> a%252Fb). An artifact is deleted by digest (Harbor deletes its accessories and the
children no other index names with it); one tag of a multi-tagged artifact is deleted with the tag
endpoint, a real untag. Facts: docs/harbor.md and hosted-registries.md section 4.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import quote

from regcollect.errors import AuthError, NotFound, RegistryError, UsageError
from regcollect.globs import has_wildcard, repo_matches
from regcollect.registry.api import PROBE_DIGEST, Listing, Version
from regcollect.registry.client import RegistryClient, base_url, is_digest, valid_repository, valid_tag
from regcollect.registry.credentials import resolve
from regcollect.registry.harbor_rest import (
    HarborRegistryClient,
    HarborRestClient,
    array,
    dicts,
    double_encoded,
    refused,
    row_key,
    time,
)
from regcollect.registry.http import HttpClient
from regcollect.registry.opening import api_origin, registry_client, rest_settings

API_PATH = "/api/v2.0"
PAGE_CAP = 32 << 20
DELETE_FIX = (
    "the account needs the delete permission on the project: a project admin or maintainer role, "
    "or a robot account with the 'delete artifact' permission (a developer may push but not delete)"
)


class HarborApi:
    kind = "harbor"
    pull_times = True  # pull_time per artifact
    tag_delete = True  # DELETE .../artifacts/{digest}/tags/{tag} removes one tag, keeps the artifact
    gc_note = (
        "Harbor frees storage only when its garbage collection runs (Administration > Clean Up); "
        "until then `regcollect restore JOURNAL` pushes deleted artifacts back. Harbor deleted each "
        "artifact's signatures and SBOMs (accessories) and unshared index children with it."
    )

    def __init__(self, client: RegistryClient, rest: HttpClient, username: str | None = None):
        self.client = client
        self.rest = rest
        self.username = username
        self._accessories: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._tag_digest: dict[tuple[str, str], str] = {}

    @staticmethod
    def split(repo: str) -> tuple[str, str]:
        project, _, name = repo.partition("/")
        if not project or not name:
            raise UsageError(f"{repo!r}: a Harbor repository is PROJECT/REPOSITORY (e.g. library/app)")
        return project, name

    def _artifacts(self, repo: str) -> str:
        project, name = self.split(repo)
        return f"/projects/{quote(project, safe='')}/repositories/{double_encoded(name)}/artifacts"

    def _refused(self, exc: AuthError, what: str) -> AuthError:
        return refused(exc, what, self.username)

    # RegistryApi ------------------------------------------------------------------------------
    async def repositories(self, patterns: list[str]) -> list[str]:
        out: set[str] = set()
        for p in patterns:
            project, _ = self.split(p)
            if not has_wildcard(p):
                if not valid_repository(p):
                    raise UsageError(f"invalid repository name {p!r}")
                out.add(p)
                continue
            projects = [project]
            if has_wildcard(project):
                rows = await self._paged("/projects?page_size=100", "listing Harbor projects")
                projects = [r["name"] for r in rows if isinstance(r.get("name"), str)]
                projects = [x for x in projects if repo_matches(project, x)]
            for proj in projects:
                what = f"listing the repositories of Harbor project {proj}"
                try:
                    rows = await self._paged(
                        f"/projects/{quote(proj, safe='')}/repositories?page_size=100", what
                    )
                except NotFound:
                    if has_wildcard(project):
                        continue
                    raise UsageError(f"--repo {p!r}: Harbor has no project {proj!r}") from None
                for r in rows:
                    name = r.get("name")
                    if isinstance(name, str) and valid_repository(name) and repo_matches(p, name):
                        out.add(name)
        return sorted(out)

    async def _paged(self, path: str, what: str) -> list[dict[str, Any]]:
        try:
            return await self.rest.paged(path, what, array, key=row_key, cap=PAGE_CAP)
        except AuthError as exc:
            raise self._refused(exc, what) from None

    async def listing(self, repo: str) -> Listing:
        what = f"listing the artifacts of {repo}"
        path = self._artifacts(repo) + "?with_tag=true&with_accessory=true&page_size=100"
        try:
            rows = await self._paged(path, what)
        except NotFound:
            return Listing(tags={})
        listing = Listing(tags={})
        accessories: dict[tuple[str, str], list[str]] = defaultdict(list)
        for row in rows:
            digest, aid = row.get("digest"), row.get("id")
            if not isinstance(digest, str) or not is_digest(digest) or not isinstance(aid, int | str):
                raise RegistryError(f"{what}: an artifact without a valid digest or id: {str(row)[:120]}")
            tags = self._tags(repo, row.get("tags"), what)
            listing.versions[digest] = Version(
                digest, str(aid), tags, time(row.get("push_time")), time(row.get("pull_time"))
            )
            for t in tags:
                listing.tags[t] = digest
            for ref in dicts(row.get("references")):
                child = ref.get("child_digest")
                if isinstance(child, str) and is_digest(child):
                    cid = ref.get("child_id")
                    listing.versions.setdefault(child, Version(child, str(cid) if cid is not None else None))
            for acc in dicts(row.get("accessories")):
                d = acc.get("digest")
                if isinstance(d, str) and is_digest(d):
                    accessories[(repo, digest)].append(d)
                    aid2 = acc.get("artifact_id")
                    listing.versions.setdefault(
                        d,
                        Version(
                            d, str(aid2) if aid2 is not None else None, (), time(acc.get("creation_time"))
                        ),
                    )
        # The rows show no tags of hidden artifacts (cosign's sha256-<hex>.sig on an accessory):
        # the registry's tag list names them, and discovery resolves them through /v2.
        for t in await self.client.tags(repo):
            listing.tags.setdefault(t, None)
        for key in [k for k in self._accessories if k[0] == repo]:
            del self._accessories[key]
        self._accessories.update(accessories)
        for t, d in listing.tags.items():
            if d:
                self._tag_digest[(repo, t)] = d
        return listing

    def _tags(self, repo: str, raw: Any, what: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise RegistryError(f"{what}: tags is not a list")
        names = [t.get("name") if isinstance(t, dict) else None for t in raw]
        good = tuple(n for n in names if isinstance(n, str) and valid_tag(n))
        if len(good) != len(names):
            self.client.dropped.setdefault(repo, []).extend(
                str(n) for n in names if not (isinstance(n, str) and valid_tag(n))
            )
        return good

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        what = f"deleting {repo}@{digest}"
        try:
            await self.rest.call("DELETE", f"{self._artifacts(repo)}/{quote(digest, safe=':')}", what)
            return True
        except NotFound:
            return False  # gone already (Harbor deletes children and accessories with their parent)
        except AuthError as exc:
            raise AuthError(f"{self._refused(exc, what)}; {DELETE_FIX}") from None
        except RegistryError as exc:
            if exc.status == 412:
                raise RegistryError(
                    f"Harbor refused: {exc}; a tag immutability rule (project > Policy) protects it, "
                    "or an index still references it",
                    status=exc.status,
                    code=exc.code,
                ) from None
            raise

    async def delete_tag(self, repo: str, tag: str) -> bool:
        """By the digest the last listing showed, so a tag that moved since is not touched."""
        ref = self._tag_digest.get((repo, tag), tag)
        what = f"deleting tag {repo}:{tag}"
        url = f"{self._artifacts(repo)}/{quote(ref, safe=':')}/tags/{quote(tag, safe='')}"
        try:
            await self.rest.call("DELETE", url, what)
            return True
        except NotFound:
            return False
        except AuthError as exc:
            raise AuthError(f"{self._refused(exc, what)}; {DELETE_FIX}") from None
        except RegistryError as exc:
            if exc.status == 412:
                raise RegistryError(
                    f"Harbor refused: {exc}; a tag immutability rule (project > Policy) protects it",
                    status=exc.status,
                    code=exc.code,
                ) from None
            raise

    async def probe_delete(self, repo: str) -> None:
        """DELETE a digest that cannot exist: Harbor checks the permission first (403), then
        finds nothing (404). Nothing is touched either way."""
        try:
            await self.delete(repo, PROBE_DIGEST)
        except AuthError:
            who = f"account {self.username!r}" if self.username else "anonymous access"
            raise AuthError(
                f"Harbor refused a delete in {repo} to {who} (asked with a digest that cannot exist, "
                f"before changing anything); {DELETE_FIX}"
            ) from None

    def record(self, repo: str, digest: str, version_id: str | None) -> dict[str, Any]:
        project, _ = self.split(repo)
        return {
            "api": self.kind,
            "api_url": self.rest.base + getattr(self.rest, "prefix", ""),
            "project": project,
            "artifact_id": version_id,
            # Deleted by Harbor with this artifact; the plan journals them too when it listed them.
            "accessories": list(self._accessories.get((repo, digest), [])),
        }

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.rest.aclose()


def open_harbor(opts: Any) -> HarborApi:
    base = base_url(opts.registry, insecure=opts.insecure)
    host = base.split("://", 1)[1]
    if opts.password is not None and opts.username is None:
        raise UsageError("--password-stdin needs --username (a Harbor user or robot account)")
    creds = resolve(host, opts.username, opts.password)
    if creds.identity_token and not creds.password:
        raise UsageError(
            f"the docker config holds an identity token for {host}; Harbor's API needs a user name and "
            "password or a robot account's secret (-u USER --password-stdin)"
        )
    api_base, api_path = api_origin(
        opts.api_url or base + API_PATH, "https://HOST/api/v2.0", insecure=opts.insecure
    )
    client = registry_client(opts, creds, cls=HarborRegistryClient)
    assert isinstance(client, HarborRegistryClient)
    client.username = creds.username
    rest = HarborRestClient(api_base, api_path, creds, **rest_settings(opts))
    return HarborApi(client, rest, creds.username)
