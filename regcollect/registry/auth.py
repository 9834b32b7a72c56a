"""Registry authentication as an httpx auth flow: anonymous, Basic, and the Bearer token flow.

The flow sends, reads a 401 challenge, fetches a token for the scope the request needs (OAuth2 POST,
falling back to GET), and resends. Once the registry's challenge is known, later requests fetch or
reuse a token before sending, so a run does not pay a 401 per request. Tokens are cached per
(realm, service, scope) until they expire.

Where secrets may go (docs/remote.md, "Authentication"): credentials are added only to requests for
the registry's own origin, and only the registry's own origin may challenge; a 401 from a host a
redirect led to (blob storage) is an error, never a reason to authenticate there. A token realm
gets the credentials when it is HTTPS, or plain HTTP on the registry's own host (or loopback for a
loopback registry) when the registry is plain HTTP too, or plain HTTP elsewhere with --insecure;
never over plain HTTP for an HTTPS registry.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from regcollect.errors import AuthError
from regcollect.registry.client import is_loopback, redact_url

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_REPO_PATH_RE = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)(/|$)")


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None  # OAuth2 refresh token from a credential helper

    def __repr__(self) -> str:  # never show a secret
        return f"Credentials(username={self.username!r}, secret={'***' if self.secret else None})"

    @property
    def secret(self) -> str | None:
        return self.password or self.identity_token


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PARAM_RE.finditer(rest)
    }
    return scheme.lower(), params


def scope_for(request: httpx.Request) -> str | None:
    """What a request needs: repository:<name>:pull, pull,push or pull,delete; catalog access."""
    path = request.url.path
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    m = _REPO_PATH_RE.match(path)
    if not m:
        return None
    name = m.group(1)
    method = request.method
    if method == "DELETE":
        return f"repository:{name}:pull,delete"
    if method in ("PUT", "POST", "PATCH"):
        return f"repository:{name}:pull,push"
    return f"repository:{name}:pull"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme)


class RegistryAuth(httpx.Auth):
    """`base` is the registry's base URL (registry.client.base_url); `insecure` is --insecure;
    `log` gets one line per token fetch (realm, service, scope; never a secret)."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        base: str,
        insecure: bool = False,
        log: Callable[[str], None] | None = None,
    ):
        self.credentials = credentials or Credentials()
        self.base = httpx.URL(base)
        self.insecure = insecure
        self.log = log
        self.challenge: tuple[str, dict[str, str]] | None = None
        self.tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.granted: dict[str, list[str]] = {}

    def _is_registry(self, url: httpx.URL) -> bool:
        """The registry's own origin, or its HTTPS upgrade on the same host (default ports)."""
        mine, theirs = _origin(self.base), _origin(url)
        if mine == theirs:
            return True
        return mine == ("http", theirs[1], 80) and theirs == ("https", theirs[1], 443)

    def _refuse_foreign_challenge(self, response: httpx.Response) -> None:
        """A 401 (or a 403 with a challenge) from a host that is not the registry: an error."""
        challenged = response.status_code == 401 or (
            response.status_code == 403 and "WWW-Authenticate" in response.headers
        )
        if not challenged:
            return
        host = response.request.url.host
        raise AuthError(
            f"{host} (reached through a redirect from registry {self.base.host}) answered "
            f"{response.status_code} asking for authentication; credentials go only to the registry "
            f"and its token server (if {host} is the registry itself, name it as REGISTRY)"
        )

    def _has_secret(self) -> bool:
        c = self.credentials
        return bool(c.identity_token or (c.username is not None and c.password is not None))

    def _check_realm(self, realm: str) -> httpx.URL:
        """The token realm, if the rules (module docstring) allow sending it what we hold."""
        try:
            url = httpx.URL(realm)
        except (httpx.InvalidURL, TypeError):
            url = httpx.URL("")
        if url.scheme not in ("http", "https") or not url.host:
            raise AuthError(f"registry {self.base.host} names an unusable token realm {realm[:100]!r}")
        if url.scheme == "https":
            return url
        host, mine = url.host.lower(), self.base.host.lower()
        secret = self._has_secret()
        if self.base.scheme == "https":
            if secret:
                raise AuthError(
                    f"refusing to send credentials to token realm {host} over plain HTTP: registry "
                    f"{mine} is HTTPS (its token realm should be https://)"
                )
            if not self.insecure:
                raise AuthError(
                    f"token realm {host} is plain HTTP but registry {mine} is HTTPS; "
                    "use --insecure to fetch anonymous tokens from it"
                )
            return url
        same_host = host == mine or (is_loopback(host) and is_loopback(mine))
        if secret and not same_host and not self.insecure:
            raise AuthError(
                f"refusing to send credentials to token realm {host} over plain HTTP on another host "
                f"than registry {mine}; use --insecure to allow it"
            )
        return url

    def _basic(self) -> str | None:
        c = self.credentials
        if c.username is None or c.password is None:
            return None
        raw = f"{c.username}:{c.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _authorize(self, request: httpx.Request, scope: str | None) -> bool:
        """Add a header from what we already know; False when a token must be fetched first."""
        if self.challenge is None:
            return True
        scheme, params = self.challenge
        if scheme == "basic":
            header = self._basic()
            if header:
                request.headers["Authorization"] = header
            return True
        if scheme == "bearer":
            key = (params.get("realm", ""), params.get("service", ""), scope or "")
            cached = self.tokens.get(key)
            if cached and cached[1] > time.monotonic():
                request.headers["Authorization"] = f"Bearer {cached[0]}"
                return True
            return False
        return True

    def _token_request(self, params: dict[str, str], scope: str | None, post: bool) -> httpx.Request:
        realm = params.get("realm", "")
        query: dict[str, Any] = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        c = self.credentials
        if post:
            form = dict(query, client_id="regcollect")
            if c.identity_token:
                form.update(grant_type="refresh_token", refresh_token=c.identity_token)
            else:
                form.update(grant_type="password", username=c.username or "", password=c.password or "")
            return httpx.Request("POST", realm, data=form)
        headers = {}
        basic = self._basic()
        if basic:
            headers["Authorization"] = basic
        return httpx.Request("GET", realm, params=query, headers=headers)

    def _fetch_token(self, scope: str | None) -> Generator[httpx.Request, httpx.Response, str | None]:
        assert self.challenge is not None
        params = self.challenge[1]
        c = self.credentials
        realm = self._check_realm(params.get("realm", ""))
        if self.log:
            who = "with credentials" if self._has_secret() else "anonymous"
            self.log(
                f"token from {redact_url(realm.copy_with(query=None, fragment=None))} "
                f"service={params.get('service', '-')} scope={scope or '-'} ({who})"
            )
        # OAuth2 POST needs credentials; anonymous and Basic-style use GET (as docker does).
        use_post = bool(c.identity_token)
        resp = yield self._token_request(params, scope, post=use_post)
        if use_post and resp.status_code in (404, 405, 400):
            resp = yield self._token_request(params, scope, post=False)
        if resp.status_code in (401, 403):
            who = f"user {c.username!r}" if c.username else "anonymous access"
            raise AuthError(
                f"token server {redact_url(resp.request.url.copy_with(query=None))} refused "
                f"{who} for scope {scope or '-'}: {resp.status_code}"
            )
        if resp.status_code != 200:
            raise AuthError(
                f"token server {redact_url(resp.request.url.copy_with(query=None))} answered "
                f"{resp.status_code} for scope {scope or '-'}"
            )
        try:
            body = resp.json()
        except ValueError:
            raise AuthError(
                f"token server {redact_url(resp.request.url.copy_with(query=None))}: answer is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise AuthError("token server answer is not a JSON object")
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            return None
        expires = body.get("expires_in") or 60
        try:
            ttl = max(float(expires) - 5, 1.0)
        except (TypeError, ValueError):
            ttl = 55.0
        key = (params.get("realm", ""), params.get("service", ""), scope or "")
        self.tokens[key] = (token, time.monotonic() + ttl)
        return token

    def _send(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Send; the client follows redirects before we see the answer, so the final URL says
        who answered, and only the registry may ask for authentication."""
        response = yield request
        if not self._is_registry(response.request.url):
            self._refuse_foreign_challenge(response)
        return response

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._is_registry(request.url):
            yield from self._send(request)  # not the registry: sent as it is, no credentials
            return
        scope = scope_for(request)
        if not self._authorize(request, scope):
            token = yield from self._fetch_token(scope)
            if token:
                request.headers["Authorization"] = f"Bearer {token}"
        response = yield from self._send(request)
        if response.status_code not in (401, 403) or not self._is_registry(response.request.url):
            return
        header = response.headers.get("WWW-Authenticate")
        if not header:
            return
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            self.challenge = (scheme, params)
            basic = self._basic()
            if basic and request.headers.get("Authorization") != basic:
                request.headers["Authorization"] = basic
                yield from self._send(request)
            return
        if scheme != "bearer":
            return
        self.challenge = (scheme, params)
        wanted = params.get("scope") or scope
        # Re-authenticate once: a fresh token for the scope the registry asked for.
        token = yield from self._fetch_token(wanted)
        if token is None:
            return
        if wanted and wanted != scope:
            realm_key = (params.get("realm", ""), params.get("service", ""), scope or "")
            self.tokens[realm_key] = self.tokens[(realm_key[0], realm_key[1], wanted)]
        request.headers["Authorization"] = f"Bearer {token}"
        yield from self._send(request)

    # Token requests are separate requests; httpx reads their bodies for us in the flow.
    requires_response_body = True
