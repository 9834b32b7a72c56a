"""Local choices, pure: what the user targeted or a preset selects, and what the environment pins.

Targets resolve as `docker rmi` does (classic store): a full id is an id; anything else is first a
name (default tag latest), then an id prefix; an ambiguous prefix is an error listing candidates.
Presets: --dangling (= docker image prune), --unused (= prune -a); budgets are in budget.py.
Pins (kept whatever is selected): running containers always; stopped containers unless
--remove-containers or --force; images outside --filter; images used within --min-age.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field

from regcollect.errors import ReferenceError_, UsageError
from regcollect.model import Artifact, Inventory
from regcollect.planner import Action, Selected
from regcollect.policy import LabelMatch
from regcollect.reference import parse, parse_image_id
from regcollect.units import format_duration, parse_duration, parse_time

Selection = dict[tuple[str, str], Selected]


@dataclass
class Filter:
    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


FILTER_KEYS = {"until", "label", "label!", "before", "since", "reference", "dangling"}


def parse_filters(values: tuple[str, ...] | list[str]) -> list[Filter]:
    out = []
    for text in values:
        if text.startswith("label!="):
            key, sep, value = "label!", "=", text[len("label!=") :]
        else:
            key, sep, value = text.partition("=")
        if not sep or key not in FILTER_KEYS or not value:
            raise UsageError(
                f"--filter {text!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(FILTER_KEYS))}"
            )
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"--filter {text!r}: dangling takes true or false")
        out.append(Filter(key, value))
    return out


def _until_cutoff(value: str, now: dt.datetime) -> dt.datetime:
    """docker's `until`: unix time, an RFC 3339 date, or a duration ago (10m, 24h, also 1h30m)."""
    if value.replace(".", "", 1).isdigit():
        try:
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        except (OverflowError, ValueError, OSError):
            raise UsageError(f"--filter until={value}: not a valid Unix time") from None
    t = parse_time(value) or parse_time(value + "T00:00:00Z")
    if t:
        return t
    try:
        return now - parse_duration(value)
    except ValueError:
        raise UsageError(f"--filter until={value}: not a timestamp, date or duration") from None


@dataclass
class LocalContext:
    inv: Inventory
    now: dt.datetime
    by_id: dict[str, list[Artifact]] = field(default_factory=dict)
    children_of: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_id: dict[str, list[Artifact]] = defaultdict(list)
        children: dict[str, set[str]] = defaultdict(set)
        for a in self.inv.artifacts:
            by_id[a.digest].append(a)
            for parent in a.children:
                children[parent].add(a.digest)
        self.by_id = dict(by_id)
        self.children_of = dict(children)

    def tags_of(self, iid: str) -> list[str]:
        return [f"{a.repository}:{t}" for a in self.by_id[iid] for t in a.tags]

    def repos_of(self, iid: str) -> list[str]:
        return sorted({a.repository for a in self.by_id[iid] if a.repository})

    def dangling_after(self, iid: str, gone: set[str]) -> bool:
        """Untagged, and every image depending on it is among `gone`."""
        return not self.tags_of(iid) and all(c in gone for c in self.children_of.get(iid, ()))

    def dangling(self, iid: str) -> bool:
        return not self.tags_of(iid) and not self.children_of.get(iid)

    def created(self, iid: str) -> dt.datetime | None:
        return self.by_id[iid][0].created

    def resolve_image(self, text: str) -> str:
        """A --filter before=/since= image, by name or id."""
        found, _ = self.resolve_target(text)
        return found

    def resolve_target(self, text: str) -> tuple[str, tuple[str, str] | None]:
        """(image id, (repo, tag) when named by tag). Raises UsageError for unknown or ambiguous."""
        iid = parse_image_id(text)
        if iid is not None and iid.full:
            full = f"sha256:{iid.prefix}"
            if full in self.by_id:
                return full, None
            raise UsageError(f"{text}: no such image")
        try:
            ref = parse(text)
        except ReferenceError_:
            ref = None
        if ref is not None and ref.digest is not None:  # name@digest acts on that image
            for a in self.inv.artifacts:
                if ref.digest in a.manifest_digests and a.repository in (ref.familiar_name, ref.name):
                    return a.digest, None
            raise UsageError(f"{text}: no such image")
        if ref is not None:
            for a in self.inv.artifacts:
                if ref.tag in a.tags and a.repository in (ref.familiar_name, ref.name):
                    return a.digest, (a.repository, ref.tag or "latest")
        if iid is not None:
            matches = sorted(d for d in self.by_id if d.split(":", 1)[1].startswith(iid.prefix))
            if len(matches) > 1:
                listed = ", ".join(
                    f"{m.split(':', 1)[1][:12]} ({', '.join(self.tags_of(m)) or '<none>'})" for m in matches
                )
                raise UsageError(f"{text}: ambiguous image id prefix, candidates: {listed}")
            if matches:
                return matches[0], None
        raise UsageError(f"{text}: no such image")


def pins(
    ctx: LocalContext,
    *,
    filters: list[Filter],
    min_age: dt.timedelta | None,
    remove_containers: bool,
    force: bool,
) -> dict[str, str]:
    out: dict[str, str] = {}
    for iid, arts in ctx.by_id.items():
        a = arts[0]
        running = [c for c in a.containers if c.running]
        stopped = [c for c in a.containers if not c.running]
        if running:
            names = ", ".join(f"{c.name} ({c.id[:12]})" for c in running)
            out[iid] = f"kept: used by running container {names}; regcollect never stops containers"
            continue
        if stopped and not remove_containers and not force:
            names = ", ".join(f"{c.name} ({c.id[:12]})" for c in stopped)
            out[iid] = (
                f"skipped: used by stopped container {names}; --remove-containers removes it first "
                "and frees the space, --force only untags (the layers stay until the container goes)"
            )
            continue
        if min_age is not None and a.last_used and ctx.now - a.last_used < min_age:
            ago = format_duration(dt.timedelta(seconds=int((ctx.now - a.last_used).total_seconds())))
            out[iid] = f"kept: used {ago} ago, within --min-age {format_duration(min_age)}"
            continue
        for f in filters:
            if not _matches(ctx, iid, f):
                out[iid] = f"kept: does not match --filter {f}"
                break
    return out


def _matches(ctx: LocalContext, iid: str, f: Filter) -> bool:
    a = ctx.by_id[iid][0]
    if f.key == "until":
        return a.created is not None and a.created < _until_cutoff(f.value, ctx.now)
    if f.key == "label":
        return LabelMatch.parse(f.value).matches(a.labels)
    if f.key == "label!":
        return not LabelMatch.parse(f.value).matches(a.labels)
    if f.key in ("before", "since"):
        other = ctx.created(ctx.resolve_image(f.value))
        if a.created is None or other is None:
            return False
        return a.created < other if f.key == "before" else a.created > other
    if f.key == "reference":
        return any(
            fnmatch.fnmatchcase(ref, f.value) or fnmatch.fnmatchcase(ref.rsplit(":", 1)[0], f.value)
            for ref in ctx.tags_of(iid)
        )
    if f.key == "dangling":
        return ctx.dangling(iid) == (f.value.lower() in ("true", "1"))
    return True


def _delete_all(ctx: LocalContext, iid: str, reason: str, sel: Selection) -> None:
    for a in ctx.by_id[iid]:
        sel[(a.repository, iid)] = Selected(Action.DELETE, reason)


def select_targets(ctx: LocalContext, targets: list[str], *, force: bool) -> tuple[Selection, list[str]]:
    """Explicit IMAGE arguments; errors for single targets come back as messages (exit 1)."""
    sel: Selection = {}
    errors: list[str] = []
    removed: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for text in targets:
        try:
            iid, named = ctx.resolve_target(text)
        except UsageError as exc:
            errors.append(str(exc))
            continue
        if named is not None:
            repo, tag = named
            removed[iid].add(named)
            if len(removed[iid]) < len(ctx.tags_of(iid)):
                gone = tuple(sorted(t for r, t in removed[iid] if r == repo))
                sel[(repo, iid)] = Selected(
                    Action.UNTAG, f"untagged: {text} named; the image keeps its other tags", gone
                )
            else:
                _delete_all(ctx, iid, f"deleted: {text} named, its last reference", sel)
            continue
        repos = ctx.repos_of(iid)
        if len(repos) > 1 and not force:
            errors.append(
                f"{text}: image is referenced in multiple repositories ({', '.join(repos)}): "
                "use --force or name the tags"
            )
            continue
        _delete_all(ctx, iid, f"deleted: {text} named by id", sel)
    return sel, errors


def select_dangling(ctx: LocalContext) -> Selection:
    sel: Selection = {}
    for iid in ctx.by_id:
        if ctx.dangling(iid) and not ctx.by_id[iid][0].containers:
            _delete_all(ctx, iid, "deleted: dangling (untagged, no image depends on it)", sel)
    return sel


def select_unused(ctx: LocalContext) -> Selection:
    sel: Selection = {}
    for iid, arts in ctx.by_id.items():
        if not arts[0].containers:
            _delete_all(ctx, iid, "deleted: unused (no container uses it)", sel)
    return sel
