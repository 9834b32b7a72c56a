"""Image references, parsed and normalised exactly as distribution/reference does.

A reference is a small immutable value: domain, path, optional tag and digest, and the string the
user typed (kept for messages). `parse` is the one entry point for names; local short ids are a
separate, explicit kind (`ImageId`) because only the engine can resolve them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from regcollect.errors import ReferenceError_

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE_NAME}"

REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
TAG_RE = re.compile(rf"^{_TAG}$")
PATH_RE = re.compile(rf"^{_REMOTE_NAME}$")
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
SHORT_ID_RE = re.compile(r"^(?:sha256:)?[a-f0-9]{1,64}$")

_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


def validate_digest(value: str) -> str:
    """Check `alg:hex` as go-digest does: known algorithm, exact length, lowercase hex."""
    alg, sep, hexpart = value.partition(":")
    if not sep or not alg or not hexpart:
        raise ReferenceError_(f"invalid digest {value!r}: expected algorithm:hex")
    want = _DIGEST_HEX_LEN.get(alg)
    if want is None:
        raise ReferenceError_(f"invalid digest {value!r}: unsupported algorithm {alg!r}")
    if len(hexpart) != want or not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise ReferenceError_(
            f"invalid digest {value!r}: {alg} needs {want} lowercase hexadecimal characters"
        )
    return value


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None
    original: str = ""

    @property
    def name(self) -> str:
        """Canonical repository name, e.g. docker.io/library/alpine."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short form docker prints: alpine, team/app, localhost:5000/app."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_REPO_PREFIX) :]
            return self.path
        return self.name

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    @property
    def identifier(self) -> str:
        """What a registry call addresses: the digest when present (name:tag@digest acts on it)."""
        return self.digest or self.tag or DEFAULT_TAG


def split_domain(name: str) -> tuple[str, str]:
    """distribution/reference splitDockerDomain."""
    i = name.find("/")
    first = name[:i]
    if i == -1 or ("." not in first and ":" not in first and first != "localhost" and first == first.lower()):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(value: str, *, default_tag: bool = True) -> Reference:
    """ParseNormalizedNamed (+ TagNameOnly when default_tag): the one way names enter regcollect."""
    text = value.strip()
    if not text:
        raise ReferenceError_("invalid reference '': empty")
    if HEX64_RE.match(text):
        raise ReferenceError_(
            f"invalid reference {value!r}: a 64-character hexadecimal string is an image id, "
            "not a repository name"
        )
    domain, remainder = split_domain(text)
    # Only the path (before tag or digest) must be lowercase; tags may hold uppercase.
    path_part = remainder.split("@", 1)[0]
    if ":" in path_part:
        path_part = path_part.rsplit(":", 1)[0]
    if path_part.lower() != path_part:
        raise ReferenceError_(f"invalid reference {value!r}: repository name must be lowercase")
    m = REFERENCE_RE.match(f"{domain}/{remainder}")
    if not m:
        raise ReferenceError_(f"invalid reference {value!r}: invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError_(
            f"invalid reference {value!r}: repository name longer than {NAME_TOTAL_LENGTH_MAX}"
        )
    if digest:
        try:
            validate_digest(digest)
        except ReferenceError_ as exc:
            raise ReferenceError_(f"invalid reference {value!r}: {exc}") from None
    path = name[len(domain) + 1 :]
    if not tag and not digest and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest, original=value)


def parse_repository(value: str) -> Reference:
    """A bare repository name (no tag, no digest), e.g. for `--repo` without wildcards."""
    ref = parse(value, default_tag=False)
    if ref.tag or ref.digest:
        raise ReferenceError_(f"invalid repository {value!r}: a repository has no tag or digest")
    return ref


@dataclass(frozen=True)
class ImageId:
    """A local image id or unique prefix of one: only the engine can say which image it is."""

    prefix: str
    original: str = ""

    @property
    def full(self) -> bool:
        return len(self.prefix) == 64


def parse_image_id(value: str) -> ImageId | None:
    """Return an ImageId when `value` looks like one (hex, optionally sha256:), else None."""
    text = value.strip()
    if not SHORT_ID_RE.match(text):
        return None
    return ImageId(prefix=text.removeprefix("sha256:"), original=value)


def tag_is_valid(tag: str) -> bool:
    return bool(TAG_RE.match(tag))
