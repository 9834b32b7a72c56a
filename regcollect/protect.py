"""In-use protection: image references to keep whatever the policy says, read from what deploys them.

A protect file is recognised by its content: Kubernetes objects (workloads, Pods, `kubectl get
... -o json` lists, Helm-rendered multi-document YAML), a docker compose file, or a plain list of
references. Every reference is parsed as docker would; one that does not parse is an error naming
the file and line, because a protection silently dropped is an image deleted while in use.
`pins` turns the references into the planner's pins against one inventory (pure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from regcollect.errors import ReferenceError_, UsageError
from regcollect.model import Inventory, Kind
from regcollect.reference import DEFAULT_DOMAIN, Reference, parse, validate_digest

STDIN = "-"
CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")
STATUS_KEYS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
DOCKER_HUB_HOSTS = {DEFAULT_DOMAIN, "index.docker.io", "registry-1.docker.io"}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")  # docker-pullable://, docker://, containerd://


@dataclass(frozen=True)
class Protected:
    """One reference to keep. `image_id`: a bare sha256 from a pod status (docker://sha256:...),
    the engine's image id, which only a local run can match."""

    source: str  # the file as the user named it ("stdin" for -)
    line: int
    ref: Reference | None = None
    image_id: str | None = None

    @property
    def why(self) -> str:
        return f"kept: in use (from {self.source})"

    def __str__(self) -> str:
        return str(self.ref) if self.ref else str(self.image_id)


def read_files(paths: Iterable[str], stdin: Any = None, base: Path | None = None) -> list[Protected]:
    """Every file's references; `base`: the directory relative paths are read from (a policy
    file's), shown as written."""
    out: list[Protected] = []
    for name in paths:
        if name == STDIN:
            import sys

            text = (stdin or sys.stdin).read()
            out.extend(parse_text(text, "stdin"))
            continue
        path = (base / name) if base is not None and not Path(name).is_absolute() else Path(name)
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise UsageError(f"{name}: cannot read protect file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{name}: protect file is not UTF-8 text") from None
        out.extend(parse_text(text, name))
    return out


def parse_text(text: str, source: str) -> list[Protected]:
    """The references in one file, by what it holds: YAML/JSON documents, else one per line."""
    docs = _documents(text, source)
    if docs is None or all(d is None or isinstance(d, yaml.ScalarNode) for d in docs):
        return list(_plain(text, source))
    out: list[Protected] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, yaml.SequenceNode):  # a YAML list of references
            out.extend(_image(item, source) for item in doc.value)
            continue
        if not isinstance(doc, yaml.MappingNode):
            raise UsageError(
                f"{source}:{_line(doc)}: not a Kubernetes object, a compose file or a list of references"
            )
        out.extend(_document(doc, source))
    return out


def _documents(text: str, source: str) -> list[yaml.Node | None] | None:
    """YAML (JSON is YAML) composed into nodes, which know their lines; None when it is not
    YAML at all, which a plain list may well be (`app@sha256:...` lines are)."""
    try:
        return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        if all(len(line.split()) <= 1 for line in _lines(text)):
            return None
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise UsageError(f"{source}{where}: {problem}") from None


def _lines(text: str) -> Iterator[str]:
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            yield line


def _plain(text: str, source: str) -> Iterator[Protected]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            yield _reference(line, source, number)


def _reference(value: str, source: str, line: int) -> Protected:
    """An image as a workload names it, or a pod status's imageID (scheme://name@digest, or a
    bare sha256 image id)."""
    text = _SCHEME.sub("", value.strip())
    if text.startswith("sha256:") and "/" not in text:
        try:
            return Protected(source, line, image_id=validate_digest(text))
        except ReferenceError_ as exc:
            raise UsageError(f"{source}:{line}: {exc}") from None
    try:
        return Protected(source, line, ref=parse(text))
    except ReferenceError_ as exc:
        raise UsageError(f"{source}:{line}: {exc}") from None


def _get(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _document(doc: yaml.MappingNode, source: str) -> list[Protected]:
    services = _get(doc, "services")
    if _get(doc, "kind") is None and isinstance(services, yaml.MappingNode):  # docker compose
        return [
            _image(image, source)
            for _, svc in services.value
            if isinstance(svc, yaml.MappingNode) and (image := _get(svc, "image")) is not None
        ]
    if _get(doc, "kind") is None and _get(doc, "items") is None:
        raise UsageError(
            f"{source}:{_line(doc)}: not a Kubernetes object, a compose file or a list of references"
        )
    return list(_walk(doc, source))


def _walk(node: yaml.Node, source: str) -> Iterator[Protected]:
    """Every container image and status imageID at any depth: Pods, workload templates,
    CronJob job templates, List items, and whatever else embeds a pod spec."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item, source)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name in CONTAINER_KEYS + STATUS_KEYS and isinstance(value, yaml.SequenceNode):
            for c in value.value:
                if not isinstance(c, yaml.MappingNode):
                    continue
                for field in ("image", "imageID") if name in STATUS_KEYS else ("image",):
                    found = _get(c, field)
                    if found is not None and not (field == "imageID" and found.value == ""):
                        yield _image(found, source)
        else:
            yield from _walk(value, source)


def _image(node: yaml.Node, source: str) -> Protected:
    if not isinstance(node, yaml.ScalarNode) or not isinstance(node.value, str):
        raise UsageError(f"{source}:{_line(node)}: an image must be a string")
    return _reference(node.value, source, _line(node))


# resolution ---------------------------------------------------------------------------------
def _same_registry(domain: str, target: str) -> bool:
    if domain in DOCKER_HUB_HOSTS:
        return target in DOCKER_HUB_HOSTS
    return domain == target


def pins(inventory: Inventory, protected: Iterable[Protected]) -> tuple[dict[str, str], list[str]]:
    """(pins for the planner, notes for -v). By digest directly; by tag, the digest the tag
    points at in this inventory. Remote pins are `repo@digest`; an index that holds a pinned
    manifest is pinned too (see docs/policy.md, "In-use protection"). Local pins are image ids."""
    local = inventory.source == "local"
    out: dict[str, str] = {}
    notes: list[str] = []
    by_repo: dict[str, list[Any]] = {}
    for a in inventory.artifacts:
        by_repo.setdefault(a.repository, []).append(a)
    for p in protected:
        if p.ref is None:
            if local and any(a.digest == p.image_id for a in inventory.artifacts):
                out.setdefault(str(p.image_id), p.why)
            elif not local:
                notes.append(f"{p.source}:{p.line}: image id {p.image_id} names no registry: ignored")
            continue
        ref = p.ref
        if not local and not _same_registry(ref.domain, inventory.target):
            notes.append(f"{p.source}:{p.line}: {ref.familiar} is in another registry: ignored")
            continue
        repo = ref.familiar_name if local else ref.path
        arts = by_repo.get(repo, [])
        if ref.digest:
            hits = [a for a in arts if ref.digest in (a.digest, *a.manifest_digests)]
            if not local:
                out.setdefault(f"{repo}@{ref.digest}", p.why)
        else:
            hits = [a for a in arts if ref.tag in a.tags]
        for a in hits:
            out.setdefault(a.digest if local else f"{repo}@{a.digest}", p.why)
        if not hits:
            notes.append(f"{p.source}:{p.line}: {ref.familiar} is not in {inventory.target}: nothing to keep")
    if not local:
        _holders(inventory, out)
    return out, notes


def _holders(inventory: Inventory, out: dict[str, str]) -> None:
    """Indexes holding an in-use manifest, at any depth: the index is what keeps its children
    reachable (a registry's garbage collection of untagged manifests, or a later --untagged run,
    would take a child no index names)."""
    changed = True
    while changed:
        changed = False
        for a in inventory.artifacts:
            key = f"{a.repository}@{a.digest}"
            if a.kind is not Kind.INDEX or key in out:
                continue
            held = next((f"{a.repository}@{c}" for c in a.children if f"{a.repository}@{c}" in out), None)
            if held is not None:
                out[key] = f"{out[held]}, holds {held.split('@', 1)[0]}@{held.split('@', 1)[1][:19]}"
                changed = True
