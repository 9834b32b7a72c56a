"""Bracket classes in repository globs read as a shell reads them (issue 21: mutation survivors):
`[xa-c-e]` is x, a to c, `-` and e; a range is three characters, whatever precedes it."""

from __future__ import annotations

from regcollect.globs import has_wildcard, repo_matches


def test_a_range_after_a_single_character_and_a_dash_after_a_range() -> None:
    assert [c for c in "abcdex-" if repo_matches("[xa-c-e]", c)] == ["a", "b", "c", "e", "x", "-"]


def test_the_character_after_a_range_is_a_member() -> None:
    assert repo_matches("[a-cd]", "d") and repo_matches("[a-cd]", "b") and not repo_matches("[a-cd]", "e")


def test_only_star_question_mark_and_bracket_are_wildcards() -> None:
    assert not has_wildcard("team/APP-X")
    assert has_wildcard("team/*") and has_wildcard("team/ap?") and has_wildcard("team/[ab]")
