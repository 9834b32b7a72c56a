"""The retention policy: ordered rules from a TOML file or from flags, validated before anything runs.

A repository is governed by the first rule whose pattern matches it; no match means untouched.
Only `keep_last`, `older_than`, `unpulled_for` and `untagged` select anything for deletion;
`keep_tags` and `keep_labels` only protect. A policy without any selecting rule is refused, so
regcollect never "deletes everything" by accident.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regcollect.errors import PolicyError
from regcollect.globs import repo_matches
from regcollect.protect import Protected, read_files
from regcollect.units import format_duration, parse_duration

RULE_KEYS = {
    "repositories",
    "keep_last",
    "keep_tags",
    "older_than",
    "untagged",
    "keep_labels",
    "unpulled_for",
    "order",
}
ORDERS = ("created", "semver")


@dataclass(frozen=True)
class LabelMatch:
    key: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> LabelMatch:
        key, sep, value = text.partition("=")
        if not key.strip():
            raise ValueError(f"bad label {text!r}: expected KEY or KEY=VALUE")
        return cls(key.strip(), value if sep else None)

    def matches(self, labels: dict[str, str]) -> bool:
        if self.key not in labels:
            return False
        return self.value is None or labels[self.key] == self.value

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


@dataclass(frozen=True)
class Rule:
    repositories: tuple[str, ...]
    keep_last: int | None = None
    keep_tags: tuple[str, ...] = ()
    older_than: dt.timedelta | None = None
    untagged: bool = False
    keep_labels: tuple[LabelMatch, ...] = ()
    origin: str = "flags"
    unpulled_for: dt.timedelta | None = None  # only images not pulled for this long may go
    order: str = "created"  # what keep_last ranks by: created time, or semantic version of the tags

    @property
    def selects_tagged(self) -> bool:
        return self.keep_last is not None or self.older_than is not None or self.unpulled_for is not None

    def matches(self, repository: str) -> bool:
        return any(repo_matches(p, repository) for p in self.repositories)

    def describe(self) -> str:
        parts = [f"repositories={list(self.repositories)}"]
        if self.keep_last is not None:
            parts.append(f"keep_last={self.keep_last}")
        if self.keep_tags:
            parts.append(f"keep_tags={list(self.keep_tags)}")
        if self.older_than is not None:
            parts.append(f"older_than={format_duration(self.older_than)}")
        if self.untagged:
            parts.append("untagged=true")
        if self.keep_labels:
            parts.append(f"keep_labels={[str(x) for x in self.keep_labels]}")
        if self.unpulled_for is not None:
            parts.append(f"unpulled_for={format_duration(self.unpulled_for)}")
        if self.order != "created":
            parts.append(f"order={self.order}")
        return f"{self.origin}: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "repositories": list(self.repositories),
            "keep_last": self.keep_last,
            "keep_tags": list(self.keep_tags),
            "older_than": format_duration(self.older_than) if self.older_than else None,
            "untagged": self.untagged,
            "keep_labels": [str(x) for x in self.keep_labels],
            "unpulled_for": format_duration(self.unpulled_for) if self.unpulled_for else None,
            "order": self.order,
        }


API_KINDS = ("distribution", "github", "dockerhub", "gitlab", "harbor")
REGISTRY_KEYS: dict[str, tuple[str, ...] | None] = {"api": API_KINDS, "api_url": None}


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str = "flags"
    registry: dict[str, str] = field(default_factory=dict)  # [registry]: api, api_url
    protect: tuple[Protected, ...] = ()  # in-use references: kept whatever the rules say
    _cache: dict[str, Rule | None] = field(default_factory=dict, compare=False, repr=False)

    def rule_for(self, repository: str, aliases: tuple[str, ...] | list[str] = ()) -> Rule | None:
        """The first rule matching the repository (or one of its other names, locally)."""
        key = repository if not aliases else "\0".join([repository, *aliases])
        if key not in self._cache:
            names = [repository, *aliases]
            self._cache[key] = next((r for r in self.rules if any(r.matches(n) for n in names)), None)
        return self._cache[key]

    @property
    def patterns(self) -> list[str]:
        return [p for r in self.rules for p in r.repositories]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"source": self.source, "rules": [r.to_json() for r in self.rules]}
        if self.protect:
            doc["protect"] = sorted({p.source for p in self.protect})
        return doc


def _check_rule(rule: Rule, where: str) -> Rule:
    if not (rule.selects_tagged or rule.untagged):
        if where == "flags":
            raise PolicyError(
                "no retention rule: give --keep-last, --older-than, --unpulled-for or --untagged "
                "(--keep-tag and --keep-label only protect; regcollect never deletes everything)"
            )
        raise PolicyError(
            f"{where}: no retention rule: set keep_last, older_than, unpulled_for or untagged "
            "(keep_tags and keep_labels only protect; regcollect never deletes everything)"
        )
    return rule


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: key '{key}' must be a list of non-empty strings")
    return tuple(value)


def rule_from_table(table: dict[str, Any], where: str) -> Rule:
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(RULE_KEYS))})")
    if "repositories" not in table:
        raise PolicyError(f"{where}: key 'repositories' is required")
    repositories = _str_list(table["repositories"], where, "repositories")
    if not repositories:
        raise PolicyError(f"{where}: key 'repositories' must name at least one pattern")
    keep_last = table.get("keep_last")
    if keep_last is not None:
        if isinstance(keep_last, bool) or not isinstance(keep_last, int):
            raise PolicyError(f"{where}: key 'keep_last' must be an integer, got {keep_last!r}")
        if keep_last < 0:
            raise PolicyError(f"{where}: key 'keep_last' must not be negative, got {keep_last}")
    older_than = _duration(table, "older_than", where)
    unpulled_for = _duration(table, "unpulled_for", where)
    order = table.get("order", "created")
    if order not in ORDERS:
        raise PolicyError(f'{where}: key \'order\' must be "created" or "semver", got {order!r}')
    untagged = table.get("untagged", False)
    if not isinstance(untagged, bool):
        raise PolicyError(f"{where}: key 'untagged' must be true or false, got {untagged!r}")
    keep_tags = _str_list(table.get("keep_tags", []), where, "keep_tags")
    try:
        keep_labels = tuple(
            LabelMatch.parse(x) for x in _str_list(table.get("keep_labels", []), where, "keep_labels")
        )
    except ValueError as exc:
        raise PolicyError(f"{where}: key 'keep_labels': {exc}") from None
    rule = Rule(
        repositories=repositories,
        keep_last=keep_last,
        keep_tags=keep_tags,
        older_than=older_than,
        untagged=untagged,
        keep_labels=keep_labels,
        origin=where.rsplit(": ", 1)[-1],
        unpulled_for=unpulled_for,
        order=order,
    )
    return _check_rule(rule, where)


def _duration(table: dict[str, Any], key: str, where: str) -> dt.timedelta | None:
    if key not in table:
        return None
    raw = table[key]
    if not isinstance(raw, str):
        raise PolicyError(f"{where}: key '{key}' must be a string such as \"30d\"")
    try:
        return parse_duration(raw)
    except (ValueError, OverflowError) as exc:
        raise PolicyError(f"{where}: key '{key}': {exc}") from None


def load_policy(path: str | Path) -> Policy:
    """Read a TOML policy; every error names the file, the rule and the key."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read policy file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{p}: malformed TOML: {exc}") from None
    unknown = sorted(set(data) - {"rules", "registry", "protect"})
    if unknown:
        raise PolicyError(
            f"{p}: unknown top-level key '{unknown[0]}' (expected [[rules]], [registry] and protect)"
        )
    # Protect files are named relative to the policy file, so a repository's policy and its
    # deploy manifests travel together.
    protect = tuple(read_files(_str_list(data.get("protect", []), str(p), "protect"), base=p.parent))
    registry = _registry_table(data.get("registry", {}), f"{p}: [registry]")
    rules_raw = data.get("rules")
    if not rules_raw:
        raise PolicyError(f"{p}: no retention rule: add at least one [[rules]] table")
    if not isinstance(rules_raw, list) or not all(isinstance(r, dict) for r in rules_raw):
        raise PolicyError(f"{p}: 'rules' must be an array of tables ([[rules]])")
    rules = tuple(rule_from_table(table, f"{p}: rule {i}") for i, table in enumerate(rules_raw, start=1))
    return Policy(rules=rules, source=str(p), registry=registry, protect=protect)


def _registry_table(table: Any, where: str) -> dict[str, str]:
    """How the registry is reached, as --api / --api-url say it (the flags win)."""
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: must be a table")
    for key, value in table.items():
        if key not in REGISTRY_KEYS:
            raise PolicyError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(REGISTRY_KEYS))})")
        allowed = REGISTRY_KEYS[key]
        if not isinstance(value, str) or (allowed and value not in allowed):
            expected = " or ".join(allowed) if allowed else "a URL string"
            raise PolicyError(f"{where}: key '{key}' must be {expected}, got {value!r}")
    return dict(table)


def policy_from_flags(
    *,
    repos: tuple[str, ...],
    keep_last: int | None,
    keep_tags: tuple[str, ...],
    older_than: str | None,
    untagged: bool,
    keep_labels: tuple[str, ...],
    unpulled_for: str | None = None,
    order: str | None = None,
    default_repos: tuple[str, ...] = ("**",),
) -> Policy:
    """The same Policy as a one-rule TOML file, from command-line flags."""
    table: dict[str, Any] = {"repositories": list(repos or default_repos)}
    if keep_last is not None:
        table["keep_last"] = keep_last
    if keep_tags:
        table["keep_tags"] = list(keep_tags)
    if older_than is not None:
        table["older_than"] = older_than
    if untagged:
        table["untagged"] = True
    if keep_labels:
        table["keep_labels"] = list(keep_labels)
    if unpulled_for is not None:
        table["unpulled_for"] = unpulled_for
    if order is not None:
        table["order"] = order
    rule = rule_from_table(table, "flags")
    return Policy(rules=(rule,), source="flags")


def flags_given(**flags: Any) -> bool:
    return any(v is not None and v is not False and v != () and v != [] for v in flags.values())
