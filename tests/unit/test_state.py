"""The state database behind first-seen ages: private, forgiving, and it forgets what is gone."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from regcollect.model import Artifact, Inventory
from regcollect.state import record_first_seen

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def inv(*digests: str) -> Inventory:
    return Inventory("remote", "reg", [Artifact("team/app", d) for d in digests])


def test_first_seen_is_kept_across_runs_and_forgotten_when_the_digest_goes(tmp_path: Path) -> None:
    db = tmp_path / "state" / "state.sqlite"
    first = inv("sha256:a", "sha256:b")
    record_first_seen(first, T0, complete=["team/app"], path=db)
    later = inv("sha256:a", "sha256:c")
    record_first_seen(later, T0 + dt.timedelta(days=9), complete=["team/app"], path=db)
    assert [a.first_seen for a in later.artifacts] == [T0, T0 + dt.timedelta(days=9)]
    # b disappeared from a repository read whole: a re-push of the same digest starts young
    again = inv("sha256:b")
    record_first_seen(again, T0 + dt.timedelta(days=20), complete=["team/app"], path=db)
    assert again.artifacts[0].first_seen == T0 + dt.timedelta(days=20)
    assert os.stat(db).st_mode & 0o777 == 0o600
    assert os.stat(db.parent).st_mode & 0o777 == 0o700


def test_a_repository_not_read_whole_forgets_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    record_first_seen(inv("sha256:a"), T0, complete=["team/app"], path=db)
    record_first_seen(inv(), T0 + dt.timedelta(days=1), complete=[], path=db)
    back = inv("sha256:a")
    record_first_seen(back, T0 + dt.timedelta(days=2), complete=["team/app"], path=db)
    assert back.artifacts[0].first_seen == T0


def test_a_damaged_state_file_means_not_known_never_an_abort(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    i = inv("sha256:a")
    record_first_seen(i, T0, complete=["team/app"], path=db)
    assert i.artifacts[0].first_seen is None
