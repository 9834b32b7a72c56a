"""Credentials go to the registry and its accepted token realm only (issue 20, items 8-10).

Every test drives the real client (httpx.AsyncClient through an httpx.MockTransport) and records
every request that left it, so "no secret reached X" is checked on the wire, not on our state.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from regcollect.errors import AuthError
from regcollect.registry.auth import Credentials, RegistryAuth
from regcollect.registry.client import RegistryClient, base_url

DIGEST = "sha256:" + hashlib.sha256(b"blob bytes").hexdigest()  # what storage serves
PASSWORD = "s3cret-pw"
REFRESH = "refresh-tok-secret"
TOKEN = "T0K-issued"
BASIC = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


def make_auth(
    creds: Credentials, base: str, *, insecure: bool = False, log: Callable[[str], None] | None = None
) -> RegistryAuth:
    return RegistryAuth(creds, base=base, insecure=insecure, log=log)


class Wire:
    """A scripted set of hosts: registry, token realms, storage; records every request sent."""

    def __init__(self, registry: str, realm: str, *, storage_challenge: str | None = None):
        self.registry = httpx.URL(registry)
        self.realm = realm
        self.storage_challenge = storage_challenge
        self.sent: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        # a snapshot: the auth flow may change a request's headers after it was sent
        self.sent.append(
            httpx.Request(request.method, request.url, headers=request.headers.copy(), content=request.read())
        )
        url = request.url
        if str(url.copy_with(query=None)) == self.realm:
            return httpx.Response(200, json={"token": TOKEN, "expires_in": 300})
        if url.host == "storage.example":
            if self.storage_challenge:
                return httpx.Response(401, headers={"WWW-Authenticate": self.storage_challenge})
            return httpx.Response(200, content=b"blob bytes")
        if url.host == "evil.example":
            return httpx.Response(200, json={"token": "EVIL"})
        if (url.scheme, url.host, url.port) == (self.registry.scheme, self.registry.host, self.registry.port):
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="{self.realm}",service="svc"'
                return httpx.Response(401, headers={"WWW-Authenticate": challenge})
            if "/blobs/" in url.path:
                return httpx.Response(307, headers={"Location": "https://storage.example/data/x?sig=1"})
            return httpx.Response(200, json={"name": "team/app", "tags": ["v1"]})
        return httpx.Response(404)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.sent if r.url.host == host]

    def secrets_seen_by(self, host: str) -> list[str]:
        """Authorization headers and secret-bearing bodies that reached `host`."""
        found = []
        for r in self.to(host):
            if "Authorization" in r.headers:
                found.append(r.headers["Authorization"])
            body = r.content.decode(errors="replace") + str(r.url)
            found += [s for s in (PASSWORD, REFRESH, TOKEN) if s in body]
        return found


def drive(
    wire: Wire,
    creds: Credentials,
    call: Callable[[RegistryClient], object],
    *,
    insecure: bool = False,
    log: Callable[[str], None] | None = None,
) -> object:
    async def main() -> object:
        registry = str(wire.registry)
        auth = make_auth(creds, base_url(registry, insecure=insecure), insecure=insecure, log=log)
        transport = httpx.MockTransport(wire.handler)
        async with RegistryClient(
            registry, auth=auth, insecure=insecure, transport=transport, attempts=1
        ) as client:
            return await call(client)  # type: ignore[misc]

    return asyncio.run(main())


async def blob(client: RegistryClient) -> object:
    """A tag list first (the registry's challenge and a token become known), then a blob GET that
    carries the token from the start and is sent on to storage."""
    await client.tags("team/app")
    return await client.get_blob("team/app", DIGEST)


async def tags(client: RegistryClient) -> object:
    return await client.tags("team/app")


ALICE = Credentials("alice", PASSWORD)


# item 8: only the registry's own origin may challenge ---------------------------------------


@pytest.mark.parametrize(
    "challenge",
    ['Bearer realm="https://evil.example/token",service="s3"', 'Basic realm="storage"'],
    ids=["bearer", "basic"],
)
def test_a_storage_host_401_after_a_redirect_is_refused_and_gets_no_credentials(challenge: str) -> None:
    """A blob GET sent on (307) to storage elsewhere that answers 401: an error naming that host;
    no token fetch from its realm, and no Authorization header or secret reaches any other host."""
    wire = Wire("https://reg.example", "https://reg.example/token", storage_challenge=challenge)
    with pytest.raises(AuthError) as err:
        drive(wire, ALICE, blob)
    message = str(err.value)
    assert "storage.example" in message and "\n" not in message
    assert PASSWORD not in message and TOKEN not in message
    assert wire.to("evil.example") == [], "the storage host's realm must not be contacted"
    assert wire.secrets_seen_by("storage.example") == []
    # the registry was asked once with the token, redirect followed once: no resend loop
    assert len(wire.to("storage.example")) == 1


def test_a_redirect_to_storage_that_answers_200_still_works_without_credentials() -> None:
    """The ordinary case keeps working: the blob comes from storage, which sees no secret."""
    wire = Wire("https://reg.example", "https://reg.example/token")
    assert drive(wire, ALICE, blob) == b"blob bytes"
    assert wire.secrets_seen_by("storage.example") == []


def test_a_request_to_another_origin_gets_no_credentials_even_when_the_challenge_is_known() -> None:
    """Defence in depth: once the registry's challenge is known, requests carry credentials
    pre-emptively, but only requests to the registry's own origin."""
    wire = Wire("https://reg.example", "https://reg.example/token")

    async def two(client: RegistryClient) -> object:
        await client.tags("team/app")
        return await client.request("GET", "https://storage.example/v2/team/app/tags/list")

    drive(wire, ALICE, two)
    assert wire.secrets_seen_by("storage.example") == []


# item 9: which token realms get credentials ------------------------------------------------


def test_an_http_realm_of_an_https_registry_never_gets_credentials() -> None:
    """Basic credentials over plain HTTP would be readable on the way: refused, with or without
    --insecure, naming the realm host; the realm is not contacted at all."""
    for insecure in (False, True):
        wire = Wire("https://reg.example", "http://reg.example/token")
        with pytest.raises(AuthError, match=r"reg\.example") as err:
            drive(wire, ALICE, tags, insecure=insecure)
        assert "plain HTTP" in str(err.value) and PASSWORD not in str(err.value)
        assert [r for r in wire.sent if r.url.scheme == "http"] == []


def test_a_refresh_token_is_not_posted_to_an_http_realm_of_an_https_registry() -> None:
    wire = Wire("https://reg.example", "http://auth.example/token")
    with pytest.raises(AuthError, match=r"auth\.example"):
        drive(wire, Credentials(identity_token=REFRESH), tags)
    assert wire.to("auth.example") == []


def test_an_https_realm_on_another_host_gets_the_credentials() -> None:
    """Hosted registries keep their token service elsewhere (auth.docker.io): HTTPS is enough."""
    wire = Wire("https://reg.example", "https://auth.example/token")
    assert drive(wire, ALICE, tags) == ["v1"]
    (fetch,) = wire.to("auth.example")
    assert fetch.headers["Authorization"] == BASIC


def test_an_http_realm_on_another_host_is_refused_unless_insecure() -> None:
    wire = Wire("http://reg.example", "http://auth.example/token")
    with pytest.raises(AuthError, match=r"auth\.example.*--insecure") as err:
        drive(wire, ALICE, tags)
    assert PASSWORD not in str(err.value) and "\n" not in str(err.value)
    assert wire.to("auth.example") == []

    wire = Wire("http://reg.example", "http://auth.example/token")
    assert drive(wire, ALICE, tags, insecure=True) == ["v1"]
    assert wire.to("auth.example")[0].headers["Authorization"] == BASIC


def test_an_http_realm_on_the_same_host_as_an_http_registry_is_allowed() -> None:
    """Our test services: registry http://127.0.0.1:15104, realm http://127.0.0.1:15105."""
    wire = Wire("http://127.0.0.1:15104", "http://127.0.0.1:15105/token")
    assert drive(wire, ALICE, tags) == ["v1"]
    assert wire.to("127.0.0.1")[1].headers["Authorization"] == BASIC


def test_anonymous_tokens_come_from_other_hosts_but_not_over_http_for_an_https_registry() -> None:
    """Anonymous token requests carry no secret: any host is fine, except plain HTTP for an HTTPS
    registry (a forged token could be replayed), which needs --insecure."""
    anonymous = Credentials()
    wire = Wire("https://reg.example", "https://auth.example/token")
    assert drive(wire, anonymous, tags) == ["v1"]
    assert "Authorization" not in wire.to("auth.example")[0].headers

    wire = Wire("http://reg.example", "http://auth.example/token")
    assert drive(wire, anonymous, tags) == ["v1"]

    wire = Wire("https://reg.example", "http://auth.example/token")
    with pytest.raises(AuthError, match=r"auth\.example.*--insecure"):
        drive(wire, anonymous, tags)
    assert wire.to("auth.example") == []
    wire = Wire("https://reg.example", "http://auth.example/token")
    assert drive(wire, anonymous, tags, insecure=True) == ["v1"]


def test_the_verbose_log_names_each_token_fetch_without_any_secret() -> None:
    lines: list[str] = []
    wire = Wire("https://reg.example", "https://auth.example/token")
    drive(wire, ALICE, tags, log=lines.append)
    fetches = [line for line in lines if "auth.example" in line]
    assert len(fetches) == 1, lines
    assert "https://auth.example/token" in fetches[0]
    assert "service=svc" in fetches[0] and "repository:team/app:pull" in fetches[0]
    for line in lines:
        assert PASSWORD not in line and TOKEN not in line and BASIC not in line


# item 10: a registry argument with user:password@ --------------------------------------------


@pytest.mark.parametrize("registry", ["u:s3cret@127.0.0.1:1", "u:s3cret@registry.example", "u@host:5000"])
def test_base_url_refuses_userinfo_without_a_scheme(registry: str) -> None:
    from regcollect.errors import UsageError

    with pytest.raises(UsageError, match="credentials") as err:
        base_url(registry, insecure=False)
    assert "s3cret" not in str(err.value)


def test_remote_with_user_password_at_host_is_refused_without_echoing_it(run) -> None:  # noqa: ANN001
    r = run("remote", "u:s3cret@127.0.0.1:1", "--keep-last", "1", "--dry-run", "-o", "json")
    assert r.code == 2
    assert "s3cret" not in r.out + r.err
    assert "credentials" in r.err


def plan_file(tmp_path: Path, target: str) -> Path:
    path = tmp_path / "plan.json"
    doc = {
        "schema": "regcollect.plan/v1",
        "source": "remote",
        "target": target,
        "now": "2024-01-01T00:00:00Z",
        "policy": {},
        "actions": [],
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("target", ["u:s3cret@127.0.0.1:1", "https://u:s3cret@127.0.0.1:1"])
def test_apply_of_a_plan_whose_target_holds_credentials_is_refused(run, tmp_path: Path, target) -> None:  # noqa: ANN001
    r = run("apply", str(plan_file(tmp_path, target)), "--yes")
    assert r.code == 2
    assert "s3cret" not in r.out + r.err
    assert "plan.json: plan target holds credentials" in r.err, "refused when the plan is read"


def test_restore_from_a_journal_whose_registry_holds_credentials_is_refused(run, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "j.jsonl"
    record = {
        "type": "intent",
        "source": "remote",
        "registry": "u:s3cret@127.0.0.1:1",
        "repository": "team/app",
        "digest": DIGEST,
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "manifest": base64.b64encode(b"{}").decode(),
        "tags": ["v1"],
        "action": "delete",
    }
    path.write_text(json.dumps(record) + "\n")
    r = run("restore", str(path), "--dry-run")
    assert r.code == 2
    assert "s3cret" not in r.out + r.err
