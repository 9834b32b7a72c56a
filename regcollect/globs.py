"""Repository and tag globs.

Repositories: `*` stays within one path segment, `**` crosses segments, `?` is one character,
`[a-m]` / `[!x]` one character of a class. Matched by simulating the pattern's states over the
name (linear in both), never by a backtracking regex: `*a*a*a*a*a*a*a*b` against a long name took
minutes that way. Tags: shell globs (fnmatch, case-sensitive).
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache


class _Class:
    """A `[...]` glob class: `!` negates, `a-m` is a range (a reversed one matches nothing)."""

    __slots__ = ("negate", "ranges")

    def __init__(self, body: str, negate: bool):
        self.negate = negate
        ranges, j = [], 0
        while j < len(body):
            if j + 2 < len(body) and body[j + 1] == "-":
                ranges.append((body[j], body[j + 2]))
                j += 3
            else:
                ranges.append((body[j], body[j]))
                j += 1
        self.ranges = tuple(ranges)

    def __call__(self, ch: str) -> bool:
        return any(lo <= ch <= hi for lo, hi in self.ranges) != self.negate


_STAR, _DSTAR, _ONE = 1, 2, 3  # wildcard tokens; a literal character is a str, a class a _Class
_Token = int | str | _Class


@lru_cache(maxsize=4096)
def _glob_tokens(pattern: str) -> tuple[_Token, ...]:
    """`*` stays within one path segment, `**` crosses segments, `?` is one character but never
    `/`, `[a-m]` / `[!x]` one character of a class (as in shell globs; `]` right after `[` or `[!`
    is a member). Anything else, including an unclosed `[`, is itself. A run of stars holding a
    `**` is one `**` (what it matches is the same), so no two star tokens are adjacent."""
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            if out and out[-1] in (_STAR, _DSTAR):
                out.pop()
            out.append(_DSTAR)
            i += 2
        elif pattern[i] == "*":
            if not (out and out[-1] == _DSTAR):
                out.append(_STAR)
            i += 1
        elif pattern[i] == "?":
            out.append(_ONE)
            i += 1
        elif pattern[i] == "[":
            negate = pattern.startswith("[!", i)
            start = i + 2 if negate else i + 1
            end = pattern.find("]", start + 1)
            if end < 0:
                out.append("[")
                i += 1
            else:
                out.append(_Class(pattern[start:end], negate))
                i = end + 1
        else:
            out.append(pattern[i])
            i += 1
    return tuple(out)


@lru_cache(maxsize=4096)
def _glob_program(pattern: str) -> tuple[tuple[_Token, ...], list[tuple[int, ...]], str]:
    """The tokens; per state, the states entering it enters (a star may match nothing, so entering
    a state on a star also enters the one after it); the literal prefix."""
    tokens = _glob_tokens(pattern)
    n = len(tokens)
    enter: list[tuple[int, ...]] = [
        (k, k + 1) if k < n and tokens[k] in (_STAR, _DSTAR) else (k,) for k in range(n + 1)
    ]
    prefix = ""
    for t in tokens:
        if not isinstance(t, str):
            break
        prefix += t
    return tokens, enter, prefix


def repo_matches(pattern: str, repository: str) -> bool:
    """A set-of-states simulation: O(len(pattern) x len(name)) whatever the pattern, where a
    backtracking regex took minutes on `*a*a*a*a*a*a*a*b` (patterns are user input)."""
    tokens, enter, prefix = _glob_program(pattern)
    n = len(tokens)
    if len(prefix) == n:
        return repository == prefix
    if not repository.startswith(prefix):
        return False
    states = set(enter[len(prefix)])
    for ch in repository[len(prefix) :]:
        nxt: set[int] = set()
        for k in states:
            if k == n:
                continue
            t = tokens[k]
            if t == _DSTAR or (t == _STAR and ch != "/"):
                nxt.update(enter[k])
            elif (ch != "/") if t == _ONE else (t(ch) if isinstance(t, _Class) else t == ch):
                nxt.update(enter[k + 1])
        if not nxt:
            return False
        states = nxt
    return n in states


def has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def tag_matches(pattern: str, tag: str) -> bool:
    return fnmatch.fnmatchcase(tag, pattern)
