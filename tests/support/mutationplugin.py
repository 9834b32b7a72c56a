"""A pytest plugin for scripts/mutation: the same tests, deterministic.

mutmut runs each mutant against the tests that cover it and reads pass/fail as the verdict, so a
property test must draw the same examples every time: a mutant killed only on a lucky draw would
make the score wander between runs. Loaded with `-p tests.support.mutationplugin`.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutation", derandomize=True, deadline=None, database=None, print_blob=False)
settings.load_profile("mutation")
