"""How old an image is, from the evidence there is (pure).

`created` in an image config is whatever the builder wrote. Reproducible builds (ko, jib, apko,
bazel rules_oci, nix) write 1970-01-01, Buildpacks 1980-01-01, and SOURCE_DATE_EPOCH builds stamp
many images with one commit's time, so such a time says nothing about when the image was made.
It is not used when it is before 2000, in the future, or shared by several images of one
repository. The next evidence serves instead: a push time from the registry's API, else the time
regcollect first saw the digest (recorded in the state database; a lower bound of the age, so it
can only make an image look younger than it is). Without any, the age is unknown, and unknown is
never evidence of age: never old under older_than, never ranked below others under keep_last.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

PLAUSIBLE_SINCE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(days=1)

CREATED, PUSHED, FIRST_SEEN, UNKNOWN = "created", "pushed", "first seen", "unknown"


@dataclass(frozen=True)
class Age:
    time: dt.datetime | None
    source: str
    unusable_created: bool = False  # a created time was there but said nothing


def _plausible(t: dt.datetime | None, now: dt.datetime) -> bool:
    return t is not None and PLAUSIBLE_SINCE <= t <= now + FUTURE_SLACK


def ages(
    items: Iterable[tuple[Hashable, dt.datetime | None, dt.datetime | None, dt.datetime | None]],
    now: dt.datetime,
) -> dict[Hashable, Age]:
    """(key, created, pushed, first_seen) of one repository's images -> the age of each."""
    rows = list(items)
    shared = Counter(created for _, created, _, _ in rows if created is not None)
    out: dict[Hashable, Age] = {}
    for key, created, pushed, first_seen in rows:
        if created is not None and _plausible(created, now) and shared[created] == 1:
            out[key] = Age(created, CREATED)
            continue
        unusable = created is not None
        if _plausible(pushed, now):
            out[key] = Age(pushed, PUSHED, unusable)
        elif first_seen is not None:
            out[key] = Age(first_seen, FIRST_SEEN, unusable)
        else:
            out[key] = Age(None, UNKNOWN, unusable)
    return out


def newest(ranked: Mapping[Hashable, Any], keep: int) -> tuple[set[Hashable], set[Hashable]]:
    """The `keep` highest by rank (a time, or a version key), and which of them are kept only
    because they tie with the last place (their order is unknown, so none of a tie is treated as
    older than another). Unranked ones (None) are in neither set: the caller keeps them."""
    known = sorted(((r, k) for k, r in ranked.items() if r is not None), key=lambda x: x[0], reverse=True)
    kept: set[Hashable] = set()
    tied: set[Hashable] = set()
    for _, rows in groupby(known, key=lambda x: x[0]):
        if len(kept) >= keep:
            break
        group = [k for _, k in rows]
        if len(kept) + len(group) > keep:
            tied.update(group)
        kept.update(group)
    return kept, tied
