"""RegistryClient over a mock transport: what reaches the user from each registry answer
(issue 21: mutation survivors in registry/client.py). The registry is untrusted: a digest is
checked, a name is checked, an upload stays on the registry's origin."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable

import httpx
import pytest

from regcollect.errors import ConnectError, RegistryError, UsageError
from regcollect.registry.client import (
    DOCKER_MANIFEST,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    base_url,
)

REPO = "team/app"


def dg(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def client(handler: Callable[[httpx.Request], httpx.Response]) -> RegistryClient:
    return RegistryClient("https://reg.test", transport=httpx.MockTransport(handler), attempts=1)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_base_url_defaults_to_https_and_http_only_for_loopback_or_insecure() -> None:
    assert base_url("reg.test", insecure=False) == "https://reg.test"
    assert base_url(" reg.test:5000/ ", insecure=False) == "https://reg.test:5000"
    assert base_url("reg.test", insecure=True) == "http://reg.test"
    assert base_url("localhost:5000", insecure=False) == "http://localhost:5000"
    assert base_url("127.0.0.1:5000", insecure=False) == "http://127.0.0.1:5000"
    assert base_url("[::1]:5000", insecure=False) == "http://[::1]:5000"
    assert base_url("http://reg.test:80/v2/", insecure=False) == "http://reg.test:80"
    assert base_url("HTTPS://reg.test", insecure=True) == "https://reg.test"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("ftp://reg.test", "invalid registry URL 'ftp://reg.test'"),
        ("https:///v2", "invalid registry URL 'https:///v2'"),
        ("reg.test/path", "invalid registry 'reg.test/path': expected host[:port] or a URL"),
        ("", "invalid registry '': expected host[:port] or a URL"),
    ],
)
def test_base_url_names_what_is_wrong(given: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        base_url(given, insecure=False)
    assert str(err.value) == message


def test_a_scheme_without_a_host_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        base_url("https://", insecure=False)


def test_credentials_in_a_registry_name_are_refused_without_echoing_them() -> None:
    with pytest.raises(UsageError) as err:
        base_url("https://me:s3cret@reg.test", insecure=False)
    assert "s3cret" not in str(err.value) and "'https://reg.test'" in str(err.value)
    assert "--password-stdin" in str(err.value)
    with pytest.raises(UsageError) as err:
        base_url("me:s3cret@reg.test", insecure=False)
    assert str(err.value).startswith("registry 'reg.test' is given with user:password@")
    assert "s3cret" not in str(err.value)


def manifest_server(
    body: bytes, content_type: str = OCI_MANIFEST, said: str | None = None, seen: list | None = None
):  # type: ignore[no-untyped-def,type-arg]
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        headers = {"Content-Type": content_type}
        if said is not None:
            headers["Docker-Content-Digest"] = said
        return httpx.Response(200, content=body, headers=headers)

    return handler


def test_a_manifest_by_tag_is_identified_by_the_digest_the_registry_names() -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
    seen: list[httpx.Request] = []
    c = client(manifest_server(body, content_type="application/json; charset=x", said=dg(body), seen=seen))
    m = run(c.get_manifest(REPO, "v1"))
    assert (m.digest, m.media_type, m.data) == (dg(body), OCI_MANIFEST, body)
    assert seen[0].headers["Accept"] == MANIFEST_ACCEPT and seen[0].url.path == "/v2/team/app/manifests/v1"
    assert c.manifest_gets == 1


def test_a_manifest_without_media_type_in_the_body_takes_the_content_type() -> None:
    body = json.dumps({"schemaVersion": 2}).encode()
    m = run(client(manifest_server(body, content_type=f"{DOCKER_MANIFEST}; x=y")).get_manifest(REPO, "v1"))
    assert m.media_type == DOCKER_MANIFEST and m.digest == dg(body)  # no header: its own hash


def test_a_tag_whose_bytes_differ_from_the_named_digest_is_refused() -> None:
    body = b'{"schemaVersion":2}'
    with pytest.raises(RegistryError) as err:
        run(client(manifest_server(body, said=dg(b"other"))).get_manifest(REPO, "v1"))
    assert str(err.value) == (
        f"reading manifest team/app:v1: content does not match its digest {dg(b'other')} (got {dg(body)}); "
        "the registry or something in between altered it"
    )


def test_a_manifest_by_digest_must_hash_to_that_digest() -> None:
    body = b'{"schemaVersion":2}'
    want = dg(b"wanted")
    with pytest.raises(RegistryError) as err:
        run(client(manifest_server(body, said=dg(body))).get_manifest(REPO, want))
    assert str(err.value).startswith(f"reading manifest team/app@{want}: content does not match")


def test_non_json_and_schema1_manifests_are_errors() -> None:
    with pytest.raises(RegistryError) as err:
        run(client(manifest_server(b"<html>")).get_manifest(REPO, "v1"))
    assert (
        str(err.value)
        == "reading manifest team/app:v1: https://reg.test/v2/team/app/manifests/v1: manifest is not JSON"
    )
    for body, ctype in (
        (b'{"schemaVersion":1}', "application/json"),
        (b'{"x":1}', "application/vnd.docker.distribution.manifest.v1+prettyjws"),
    ):
        with pytest.raises(RegistryError) as err:
            run(client(manifest_server(body, content_type=ctype)).get_manifest(REPO, "v1"))
        assert str(err.value) == "reading manifest team/app:v1: schema1 manifests are not supported"


def test_head_manifest_answers_the_named_digest_none_when_gone_and_falls_back_to_get() -> None:
    body = b'{"schemaVersion":2}'
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/gone"):
            return httpx.Response(404)
        if request.method == "HEAD" and request.url.path.endswith("/v1"):
            return httpx.Response(200, headers={"Docker-Content-Digest": dg(b"x")})
        if request.method == "HEAD":
            return httpx.Response(200)  # no digest header: read the manifest
        return httpx.Response(200, content=body, headers={"Content-Type": OCI_MANIFEST})

    c = client(handler)
    assert run(c.head_manifest(REPO, "v1")) == dg(b"x")
    assert seen[0].method == "HEAD" and seen[0].headers["Accept"] == MANIFEST_ACCEPT
    assert run(c.head_manifest(REPO, "gone")) is None
    assert run(c.head_manifest(REPO, "v2")) == dg(body)


def test_referrers_none_only_where_there_is_no_api() -> None:
    digest = dg(b"subject")
    index = {"manifests": [{"digest": dg(b"sig")}, "junk", {"digest": dg(b"sbom")}]}

    def answers(status: int, **kw):  # type: ignore[no-untyped-def]
        return client(lambda request: httpx.Response(status, **kw))

    got = run(answers(200, json=index, headers={"Content-Type": OCI_INDEX}).referrers(REPO, digest))
    assert got == [{"digest": dg(b"sig")}, {"digest": dg(b"sbom")}]
    assert run(answers(200, json={"manifests": None}).referrers(REPO, digest)) == []
    for status in (404, 405, 400):
        assert run(answers(status).referrers(REPO, digest)) is None, status
    assert (
        run(answers(200, text="<html>", headers={"Content-Type": "text/html"}).referrers(REPO, digest))
        is None
    )
    with pytest.raises(RegistryError) as err:
        run(answers(500).referrers(REPO, digest))
    assert err.value.status == 500
    with pytest.raises(RegistryError) as err:
        run(answers(200, json=["a"]).referrers(REPO, digest))
    assert str(err.value) == f"listing referrers of team/app@{digest}: the answer is not a JSON object"


def test_referrers_asks_for_an_index() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"manifests": []})

    run(client(handler).referrers(REPO, dg(b"s")))
    assert seen[0].headers["Accept"] == OCI_INDEX
    assert seen[0].url.path == f"/v2/team/app/referrers/{dg(b's')}"


def test_put_manifest_sends_the_media_type_and_returns_the_digest() -> None:
    seen: list[httpx.Request] = []
    body = b'{"schemaVersion":2}'

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        said = {"Docker-Content-Digest": dg(b"said")} if request.url.path.endswith("/a") else {}
        return httpx.Response(201, headers=said)

    c = client(handler)
    assert run(c.put_manifest(REPO, "a", body, OCI_MANIFEST)) == dg(b"said")
    assert run(c.put_manifest(REPO, "b", body, OCI_MANIFEST)) == dg(body)
    assert seen[0].headers["Content-Type"] == OCI_MANIFEST and seen[0].content == body


def upload_server(location: str, seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": location})
        return httpx.Response(201)

    return handler


def test_a_blob_upload_puts_to_the_location_with_the_digest() -> None:
    data = b"layer"
    for location, want in (
        ("/v2/team/app/blobs/uploads/u1?state=s", "/v2/team/app/blobs/uploads/u1?state=s&digest="),
        ("u2", "/v2/team/app/blobs/uploads/u2?digest="),
        ("https://reg.test/v2/team/app/blobs/uploads/u3", "/v2/team/app/blobs/uploads/u3?digest="),
    ):
        seen: list[httpx.Request] = []
        assert run(client(upload_server(location, seen)).put_blob(REPO, data)) == dg(data)
        post, put = seen[1], seen[2]
        assert post.method == "POST" and post.url.path == "/v2/team/app/blobs/uploads/"
        assert put.method == "PUT" and put.content == data
        assert put.headers["Content-Type"] == "application/octet-stream"
        assert put.url.raw_path.decode() == want + dg(data)


def test_an_upload_location_on_another_origin_is_refused() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(RegistryError) as err:
        run(client(upload_server("https://evil.test/upload", seen)).put_blob(REPO, b"layer"))
    assert str(err.value) == "uploading blob to team/app: upload location points to another origin"
    assert all(r.url.host == "reg.test" for r in seen)


def test_a_ping_answered_with_html_is_not_a_registry() -> None:
    c = client(lambda r: httpx.Response(200, text="<html>hi</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(ConnectError) as err:
        run(c.ping())
    assert str(err.value) == "https://reg.test/v2/: answered HTML, not a registry"
    run(client(lambda r: httpx.Response(200, text="{}", headers={"Content-Type": "application/json"})).ping())
    with pytest.raises(ConnectError) as err:
        run(client(lambda r: httpx.Response(404)).ping())
    assert str(err.value).endswith(": this does not serve the Registry v2 API")


def test_a_catalog_refused_at_1000_a_page_is_read_100_a_page_and_bad_names_are_dropped() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.params["n"] == "1000":
            return httpx.Response(
                400, json={"errors": [{"code": "PAGINATION_NUMBER_INVALID", "message": "n"}]}
            )
        return httpx.Response(200, json={"repositories": ["team/app", "../etc", "Bad", "team/web"]})

    c = client(handler)
    assert run(c.catalog()) == ["team/app", "team/web"]
    assert seen == ["https://reg.test/v2/_catalog?n=1000", "https://reg.test/v2/_catalog?n=100"]
    assert c.dropped == {"<catalog>": ["../etc", "Bad"]}


def test_a_catalog_failure_of_another_kind_is_an_error_naming_the_listing() -> None:
    c = client(lambda r: httpx.Response(400, json={"errors": [{"code": "DENIED", "message": "no"}]}))
    with pytest.raises(RegistryError) as err:
        run(c.catalog())
    assert str(err.value).startswith("listing repositories of reg.test: GET ") and err.value.code == "DENIED"


def test_tags_with_bad_names_are_dropped_and_remembered() -> None:
    c = client(lambda r: httpx.Response(200, json={"name": REPO, "tags": ["v1", "-bad", "v2"]}))
    assert run(c.tags(REPO)) == ["v1", "v2"]
    assert c.dropped == {REPO: ["-bad"]}
    assert run(client(lambda r: httpx.Response(404)).tags(REPO)) == []


def test_names_and_references_are_checked_before_any_request() -> None:
    c = client(lambda r: httpx.Response(500))
    with pytest.raises(RegistryError) as err:
        run(c.get_blob("Team/App", dg(b"x")))
    assert str(err.value) == "invalid repository name 'Team/App'"
    with pytest.raises(RegistryError) as err:
        run(c.get_blob(REPO, "v1"))  # a blob is named by digest only
    assert str(err.value) == "invalid reference 'v1' in repository team/app"
    with pytest.raises(RegistryError) as err:
        run(c.referrers(REPO, "latest"))
    assert str(err.value) == "invalid reference 'latest' in repository team/app"
    with pytest.raises(RegistryError) as err:  # a tag is a valid manifest reference: it is asked
        run(c.head_manifest(REPO, "v1"))
    assert err.value.status == 500


def test_a_repository_name_of_255_characters_is_valid_256_not() -> None:
    from regcollect.registry.client import valid_repository

    assert valid_repository("a" * 255) and not valid_repository("a" * 256)


def test_a_sha512_digest_is_checked_with_sha512() -> None:
    from regcollect.registry.client import matches_digest

    data = b"blob"
    assert matches_digest(data, "sha512:" + hashlib.sha512(data).hexdigest())
    assert not matches_digest(data, "sha512:" + hashlib.sha256(data).hexdigest())
    assert not matches_digest(data, "md5:" + hashlib.md5(data).hexdigest())  # noqa: S324


def test_the_client_counts_manifest_reads_from_zero_and_keeps_its_registry_name() -> None:
    c = RegistryClient("localhost:5000", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert (c.registry, c.base, c.manifest_gets, c.dropped, c.recent) == (
        "localhost:5000",
        "http://localhost:5000",
        0,
        {},
        {},
    )
    assert RegistryClient("reg.test", insecure=True).base == "http://reg.test"
