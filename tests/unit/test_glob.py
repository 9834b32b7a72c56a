"""Repository globs: the same answers as the regex they used to compile to, in linear time.

A policy or --repo pattern is user input and is matched against every repository name of a
catalog; a backtracking matcher let `*a*a*a*a*a*a*a*b` take 22 s on one 60-character name.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from regcollect.globs import repo_matches


def old_glob_regex(pattern: str) -> re.Pattern[str]:
    """The reference: regcollect's matcher up to 2f5858e, verbatim (fast on small inputs)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            chars = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{chars}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "possible set difference": same meaning today
        return re.compile("^" + "".join(out) + "$")


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("team/*", "team/app", True),
        ("team/*", "team/app/web", False),  # * stays within one segment
        ("team/**", "team/app/web", True),  # ** crosses segments
        ("**/web", "team/app/web", True),
        ("**", "", True),
        ("team/?pp", "team/app", True),
        ("team?app", "team/app", False),  # ? is never a /
        ("v[0-9]", "v7", True),
        ("v[!0-9]", "v7", False),
        ("v[!0-9]", "vx", True),
        ("[]a]", "]", True),  # ] first in a class is a member
        ("a[b", "a[b", True),  # an unclosed [ is itself
        ("[a-]", "-", True),
        ("[!]]", "x", True),  # an empty negated class does not exist: ] is its member
        ("[!]]", "]", False),
        ("[z-a]", "m", False),  # a reversed range matches nothing (the regex raised)
        ("a.b", "axb", False),  # no regex metacharacters leak through
    ],
)
def test_glob_semantics(pattern, name, expected):
    assert repo_matches(pattern, name) is expected


PATTERN_CHARS = st.sampled_from(list("ab/-.*?[]!^\\"))
NAME_CHARS = st.sampled_from(list("ab/-.[]!^\\"))


@settings(max_examples=3000, deadline=None)
@given(pattern=st.text(PATTERN_CHARS, max_size=10), name=st.text(NAME_CHARS, max_size=10))
def test_same_answers_as_the_old_regex(pattern, name):
    """Every pattern the old regex compiled gives the same answer (the old one raised on a
    reversed range; `[!]` was an empty class that garbled the rest of the pattern)."""
    assume("[!]" not in pattern)
    try:
        old = old_glob_regex(pattern)
    except re.error:
        assume(False)
        raise
    assert repo_matches(pattern, name) is bool(old.match(name)), (pattern, name)


@given(
    pattern=st.text(st.sampled_from(list("ab/*?")), max_size=12),
    name=st.text(st.sampled_from(list("ab/")), max_size=14),
)
def test_same_answers_on_wildcard_heavy_patterns(pattern, name):
    assert repo_matches(pattern, name) is bool(old_glob_regex(pattern).match(name)), (pattern, name)


def test_pathological_pattern_finishes():
    """A backtracking matcher takes minutes to hours here; the linear one a few milliseconds. Run in
    a subprocess with a generous timeout so a regression fails instead of hanging the suite."""
    code = (
        "from regcollect.globs import repo_matches;"
        "print(repo_matches('*a' * 12 + '*b', 'a' * 60), repo_matches('**a' * 12 + '**b', 'a' * 60 + 'b'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
