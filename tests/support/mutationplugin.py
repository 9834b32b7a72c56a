"""A pytest plugin for scripts/mutation: the same tests, deterministic, with cold caches.

mutmut runs each mutant against the tests that cover it and reads pass/fail as the verdict, so a
property test must draw the same examples every time: a mutant killed only on a lucky draw would
make the score wander between runs. Loaded with `-p tests.support.mutationplugin`.

mutmut forks each mutant's worker from a process that already ran the tests, so every
`functools.lru_cache` in regcollect starts warm: a mutant inside code a cached function calls
(`globs._Class.__init__` under `_glob_tokens`) is never executed and "survives". Every cache in
regcollect.* is cleared before each test, so a test sees what the mutated code computes.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("mutation", derandomize=True, deadline=None, database=None, print_blob=False)
settings.load_profile("mutation")


def _clear_regcollect_caches() -> None:
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "regcollect" or name.startswith("regcollect.")):
            continue
        for value in list(vars(module).values()):
            clear: Any = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _clear_regcollect_caches()
