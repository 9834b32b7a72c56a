"""Harbor's HTTP side for regcollect/registry/harbor.py: the REST client (HTTP Basic, the path
prefix), the /v2 client with Harbor's login hint, double encoding and the answer readers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from regcollect.errors import AuthError, RegistryError
from regcollect.registry.auth import Credentials
from regcollect.registry.client import RegistryClient
from regcollect.registry.http import HttpClient
from regcollect.units import parse_time


def double_encoded(name: str) -> str:
    """Harbor's REST paths take a repository name URL-encoded twice: a/b -> a%252Fb."""
    return quote(quote(name, safe=""), safe="")


def refused(exc: AuthError, what: str, username: str | None) -> AuthError:
    """Harbor's refusal with the likely fix; a robot name whose `$` the shell ate is named."""
    user = username or ""
    hint = ""
    if user.startswith("robot") and "$" not in user:
        hint = (
            f"; user {user!r} looks like a robot account whose '$' was expanded by the shell: "
            "quote the name ('robot$project+name')"
        )
    elif not user:
        hint = "; no credentials were given (-u USER --password-stdin, or docker login)"
    text = str(exc) if str(exc).startswith(what) else f"{what}: {exc}"
    return AuthError(f"Harbor refused: {text}{hint}")


def array(doc: Any, url: str) -> list[Any]:
    if not isinstance(doc, list):
        raise RegistryError(f"{url}: expected a JSON array")
    return [x for x in doc if isinstance(x, dict)]


def dicts(value: Any) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def row_key(row: dict[str, Any]) -> Any:
    return row.get("id", row.get("project_id", row.get("name")))


def time(value: Any) -> Any:
    return parse_time(value) if isinstance(value, str) else None  # the zero time is None


class HarborRegistryClient(RegistryClient):
    """/v2 with Harbor's hint on a refused login (the ping is the first request of a run)."""

    username: str | None = None

    async def ping(self) -> None:
        try:
            await super().ping()
        except AuthError as exc:
            raise refused(exc, f"logging in to {self.host}", self.username) from None


class HarborRestClient(HttpClient):
    """Harbor's REST API under its path prefix, HTTP Basic sent only to that origin (httpx drops
    it on a redirect elsewhere). A robot name's `$` travels inside the Basic header, never a URL."""

    def __init__(self, origin: str, path: str, creds: Credentials, **kw: Any):
        auth = httpx.BasicAuth(creds.username, creds.password) if creds.username and creds.password else None
        super().__init__(origin, auth=auth, headers={"Accept": "application/json"}, **kw)
        self.prefix = path

    async def call(self, method: str, url: str, what: str, **kw: Any) -> Any:
        if url.startswith("/") and not url.startswith(self.prefix + "/"):
            url = self.prefix + url
        return await super().call(method, url, what, **kw)
