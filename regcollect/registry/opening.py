"""What every kind of registry opens the same way from RemoteOptions: the Registry API client
with its auth flow, a vendor API's base URL, and the settings a vendor's REST client shares with
it (TLS, requests in flight, timeouts, waits, logs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from regcollect.errors import UsageError
from regcollect.globs import has_wildcard, repo_matches
from regcollect.registry.auth import Credentials, RegistryAuth
from regcollect.registry.client import RegistryClient, base_url, valid_repository
from regcollect.registry.http import redact_url, tls_verify


def registry_client(
    opts: Any, creds: Credentials, *, cls: type[RegistryClient] = RegistryClient, registry: str | None = None
) -> RegistryClient:
    """The /v2 client; the auth flow is told the registry's base URL and --insecure, which decide
    where the credentials may go (registry/auth.py)."""
    name = registry or opts.registry
    base = base_url(name, insecure=opts.insecure)
    return cls(
        name,
        auth=RegistryAuth(creds, base=base, insecure=opts.insecure, log=opts.log),
        insecure=opts.insecure,
        ca_cert=opts.ca_cert,
        concurrency=opts.concurrency,
        timeout=opts.timeout,
        log=opts.log,
        notice=opts.notice,
    )


def api_origin(api_url: str, example: str, *, insecure: bool = False) -> tuple[str, str]:
    """--api-url split into its origin and path prefix (GitHub Enterprise: /api/v3)."""
    url = api_url.rstrip("/")
    origin = base_url(url, insecure=insecure) if "://" in url else None
    if origin is None:
        raise UsageError(f"--api-url {redact_url(url)!r}: expected a URL such as {example}")
    return origin, url[len(origin) :]


def rest_settings(opts: Any) -> dict[str, Any]:
    """Keyword arguments for a vendor's HttpClient."""
    return {
        "verify": tls_verify(opts.insecure, opts.ca_cert),
        "concurrency": opts.concurrency,
        "timeout": opts.timeout,
        "max_wait": opts.max_wait,
        "log": opts.log,
        "notice": opts.notice,
    }


async def select_owned(
    patterns: list[str],
    owner_word: str,
    names_of: Callable[[str, str], Awaitable[Iterable[str]]],
) -> list[str]:
    """OWNER/NAME-GLOB selection where the vendor lists an owner's repositories (GitHub's owners,
    Docker Hub's namespaces): literal names go as they are, a glob asks names_of(owner, pattern)
    for the owner's names (full OWNER/NAME) and keeps the matching valid ones. The owner must be
    named exactly: a pattern there would list every account."""
    out: set[str] = set()
    for p in patterns:
        owner = p.split("/", 1)[0]
        if "/" not in p or not owner:
            raise UsageError(f"{p!r}: a repository here is {owner_word.upper()}/NAME (e.g. acme/app)")
        if has_wildcard(owner):
            raise UsageError(f"--repo {p!r}: name the {owner_word} exactly (acme/*), not a pattern")
        if not has_wildcard(p):
            if not valid_repository(p):
                raise UsageError(f"invalid repository name {p!r}")
            out.add(p)
            continue
        out.update(n for n in await names_of(owner, p) if valid_repository(n) and repo_matches(p, n))
    return sorted(out)
