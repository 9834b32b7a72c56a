"""References are parsed exactly as distribution/reference does (docker pull agrees with us)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regcollect.errors import ReferenceError_
from regcollect.reference import parse, parse_image_id, parse_repository, validate_digest

H64 = "a" * 64
D = f"sha256:{H64}"

# input, canonical name, tag, digest
VALID = [
    ("alpine", "docker.io/library/alpine", "latest", None),
    ("alpine:3.19", "docker.io/library/alpine", "3.19", None),
    ("library/alpine", "docker.io/library/alpine", "latest", None),
    ("docker.io/alpine", "docker.io/library/alpine", "latest", None),
    ("index.docker.io/alpine", "docker.io/library/alpine", "latest", None),
    ("index.docker.io/team/app:v1", "docker.io/team/app", "v1", None),
    ("team/app", "docker.io/team/app", "latest", None),
    ("team/app:v1.2.3", "docker.io/team/app", "v1.2.3", None),
    ("team/sub/app:x", "docker.io/team/sub/app", "x", None),
    ("myhost:5000", "docker.io/library/myhost", "5000", None),
    ("myhost:5000/app", "myhost:5000/app", "latest", None),
    ("localhost", "docker.io/library/localhost", "latest", None),
    ("localhost/app", "localhost/app", "latest", None),
    ("localhost:5000/a", "localhost:5000/a", "latest", None),
    ("localhost:5000/a/b:c", "localhost:5000/a/b", "c", None),
    ("[::1]:5000/x", "[::1]:5000/x", "latest", None),
    ("[::1]/x:y", "[::1]/x", "y", None),
    ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app", "v2", None),
    ("registry.example.com/app", "registry.example.com/app", "latest", None),
    ("Registry.Example.com/app", "Registry.Example.com/app", "latest", None),
    ("Foo/bar", "Foo/bar", "latest", None),
    ("ghcr.io/org/app:TAG", "ghcr.io/org/app", "TAG", None),
    ("app:Latest_1-2.3", "docker.io/library/app", "Latest_1-2.3", None),
    (f"app@{D}", "docker.io/library/app", None, D),
    (f"app:v1@{D}", "docker.io/library/app", "v1", D),
    (f"localhost:5000/app:v1@{D}", "localhost:5000/app", "v1", D),
    ("a__b/c-d/e.f", "docker.io/a__b/c-d/e.f", "latest", None),
    ("a---b", "docker.io/library/a---b", "latest", None),
    (f"app@sha512:{'b' * 128}", "docker.io/library/app", None, f"sha512:{'b' * 128}"),
    ("host.with-dash.io:443/x/y:1", "host.with-dash.io:443/x/y", "1", None),
]

INVALID = [
    "",
    "foo/Bar",
    "FOO",
    H64,
    "app:",
    "app:-tag",
    "app:.tag",
    f"app:{'t' * 129}",
    "app@sha256:abc",
    f"app@sha256:{'A' * 64}",
    f"app@md5:{'a' * 32}",
    f"app@sha512:{'b' * 64}",
    "a_-b",
    "-app",
    "app-",
    "a..b",
    "a//b",
    "http://host/app",
    "host:/app",
    " app :x",
    "app@@sha256",
    "a" * 256,
]


@pytest.mark.parametrize(("text", "name", "tag", "digest"), VALID)
def test_valid_references_normalise_like_docker(text, name, tag, digest):
    ref = parse(text)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)
    assert ref.original == text


@pytest.mark.parametrize("text", INVALID)
def test_invalid_references_are_refused_with_the_input_named(text):
    with pytest.raises(ReferenceError_) as exc:
        parse(text)
    assert "invalid reference" in str(exc.value)


def test_name_tag_digest_acts_on_the_digest():
    ref = parse(f"team/app:v1@{D}")
    assert ref.identifier == D


def test_familiar_forms():
    assert parse("alpine").familiar == "alpine:latest"
    assert parse("docker.io/library/alpine:3").familiar_name == "alpine"
    assert parse("team/app").familiar_name == "team/app"
    assert parse("localhost:5000/app:v1").familiar == "localhost:5000/app:v1"
    assert str(parse("alpine")) == "docker.io/library/alpine:latest"


def test_latest_only_without_tag_or_digest():
    assert parse(f"app@{D}").tag is None
    assert parse("app", default_tag=False).tag is None


def test_repository_refuses_tags():
    assert parse_repository("team/app").path == "team/app"
    with pytest.raises(ReferenceError_):
        parse_repository("team/app:v1")


def test_uppercase_path_message_says_lowercase():
    with pytest.raises(ReferenceError_, match="must be lowercase"):
        parse("team/App")


def test_bare_hex_is_an_id_not_a_name():
    with pytest.raises(ReferenceError_, match="image id"):
        parse(H64)
    assert parse_image_id(H64).full
    assert parse_image_id(f"sha256:{H64[:12]}").prefix == H64[:12]
    assert parse_image_id("abc123").prefix == "abc123"
    assert parse_image_id("team/app") is None


def test_digest_validation():
    assert validate_digest(D) == D
    for bad in ["sha256", "sha256:", f"sha256:{H64[:-1]}", f"sha1:{H64}", f"sha256:{H64.upper()}"]:
        with pytest.raises(ReferenceError_):
            validate_digest(bad)


_component = st.from_regex(r"\A[a-z0-9]+(?:[._-][a-z0-9]+){0,2}\Z")
_tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
_hex = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(
    domain=st.sampled_from(["", "localhost:5000/", "reg.example.com/", "127.0.0.1:1/", "[::1]:5/"]),
    path=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), _tag),
    digest=st.one_of(st.none(), _hex),
)
def test_round_trip_canonical_and_familiar(domain, path, tag, digest):
    text = domain + "/".join(path)
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@sha256:{digest}"
    ref = parse(text)
    assert parse(str(ref)) == parse(str(ref))
    again = parse(str(ref))
    assert (again.name, again.tag, again.digest) == (ref.name, ref.tag, ref.digest)
    fam = parse(ref.familiar)
    assert (fam.name, fam.tag, fam.digest) == (ref.name, ref.tag, ref.digest)
