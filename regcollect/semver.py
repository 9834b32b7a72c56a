"""Semantic versions in tags, for `order = "semver"`: keep the N highest versions, not the N
newest builds (release repositories re-push old versions: a rebuild of 1.2.9 after 2.0.0).

MAJOR.MINOR.PATCH with an optional `v`, pre-release and build metadata, compared as semver.org
says: numbers numerically, a pre-release below its release, pre-release identifiers field by
field (numeric below alphanumeric), build metadata ignored. Anything else (`1.2`, `latest`,
`2024-05-01`) is not a version and is never ranked: the planner keeps it and says why.
"""

from __future__ import annotations

import re

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$"
)

Key = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def version_key(tag: str) -> Key | None:
    """A sort key (higher = newer version), or None when the tag is not a semantic version."""
    m = _SEMVER.match(tag)
    if not m:
        return None
    major, minor, patch, pre = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
    if pre is None:
        return (major, minor, patch, 1, ())
    fields = tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in pre.split("."))
    return (major, minor, patch, 0, fields)


def highest(tags: tuple[str, ...] | list[str]) -> Key | None:
    """The highest version among an image's tags (it is as new as its newest name)."""
    keys = [k for k in map(version_key, tags) if k is not None]
    return max(keys) if keys else None
