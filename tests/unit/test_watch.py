"""The watcher's watermarks and schedule, with a fake clock and a small fake engine (the narrow
EngineClient seam: list, inspect, df, remove)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from regcollect.engine.session import LocalOptions
from regcollect.engine.watch import Schedule, WatchConfig, Watcher
from regcollect.errors import NotFound

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> dt.datetime:
        return T0 + dt.timedelta(seconds=self.t)


class FakeEngine:
    """Images of one 100-byte layer each, created `age` days before T0."""

    address = "unix:///fake.sock"
    local = True

    def __init__(self) -> None:
        self.imgs: dict[str, dict[str, Any]] = {}
        self.removed: list[str] = []

    def add(self, name: str, days: float) -> str:
        iid = "sha256:" + f"{len(self.imgs) + 1:x}".rjust(64, "0")
        self.imgs[iid] = {"tag": f"app:{name}", "created": T0 - dt.timedelta(days=days)}
        return iid

    def ping(self) -> None: ...

    def info(self) -> dict[str, Any]:
        return {"ID": "fake-engine", "DockerRootDir": "/"}

    def images(self) -> list[dict[str, Any]]:
        return [
            {"Id": i, "RepoTags": [v["tag"]], "Created": int(v["created"].timestamp()), "Labels": {}}
            for i, v in self.imgs.items()
        ]

    def containers(self) -> list[dict[str, Any]]:
        return []

    def df(self) -> dict[str, Any]:
        return {
            "Images": [{"Id": i, "Size": 100, "SharedSize": 0} for i in self.imgs],
            "LayersSize": 100 * len(self.imgs),
        }

    def inspect(self, ref: str) -> dict[str, Any]:
        iid = ref if ref in self.imgs else next((i for i, v in self.imgs.items() if v["tag"] == ref), None)
        if iid is None:
            raise NotFound(ref)
        return {"Id": iid, "RepoTags": [self.imgs[iid]["tag"]], "RootFS": {"Layers": [f"sha256:{iid[-8:]}"]}}

    def remove_image(self, ref: str, *, force: bool = False) -> list[dict[str, Any]]:
        iid = self.inspect(ref)["Id"]
        del self.imgs[iid]
        self.removed.append(self_tag := ref)
        return [{"Untagged": self_tag}, {"Deleted": iid}]


@pytest.fixture
def setup(tmp_path):
    engine, clock, lines = FakeEngine(), FakeClock(), []
    opts = LocalOptions(max_size="1000B", state_path=str(tmp_path / "state.sqlite"))
    w = Watcher(
        lambda: engine,  # type: ignore[arg-type, return-value]
        WatchConfig(opts, interval=300, debounce=5),
        lambda event, msg, **kw: lines.append((event, msg)),
        clock,
    )
    return engine, clock, w, lines


def event(image: str, action: str = "tag") -> dict[str, Any]:
    return {"Type": "image", "Action": action, "Actor": {"ID": image}, "timeNano": 0}


def test_no_cleanup_until_above_the_high_watermark_then_down_to_the_low(setup):
    engine, clock, w, lines = setup
    ids = [engine.add(f"v{i}", 50 - i) for i in range(10)]  # 1000 bytes: at the budget, not over
    assert w.tick() and engine.removed == []
    engine.add("v10", 1)  # 1100 > 1000: a cleanup goes down to 800 (80%)
    w.on_event(engine, "fake-engine", event("app:v10"))  # type: ignore[arg-type]
    clock.t += 4
    assert not w.tick(), "debounced: not 5 s after the last event yet"
    clock.t += 1
    assert w.tick()
    assert engine.removed == ["app:v0", "app:v1", "app:v2"]  # oldest first, 1100 -> 800
    assert [i in engine.imgs for i in ids[3:]] == [True] * 7
    assert any(e == "summary" for e, _ in lines)


def test_between_the_watermarks_nothing_is_evicted(setup):
    engine, clock, w, _ = setup
    for i in range(9):
        engine.add(f"v{i}", 50 - i)  # 900: below high (1000), above low (800)
    w.check()
    assert engine.removed == []


def test_recorded_use_outranks_creation_time(setup):
    engine, clock, w, _ = setup
    ids = [engine.add(f"v{i}", 50 - i) for i in range(11)]
    w.on_event(engine, "fake-engine", {**event(ids[0], "pull"), "timeNano": int(T0.timestamp() * 1e9)})  # type: ignore[arg-type]
    w.check()
    assert engine.removed == ["app:v1", "app:v2", "app:v3"], "v0 was pulled at T0: used last"


def test_schedule_debounces_bursts_and_keeps_the_interval():
    s = Schedule(interval=300, debounce=5, now=0)
    assert s.next_due() == 0  # a check at start
    s.checked(0)
    assert s.next_due() == 300
    for t in range(100, 130):  # an event every second for 30 s
        s.event(t)
    assert s.next_due() == 120, "a steady stream still gets a check after 4 x debounce"
    s.checked(120)
    s.event(200)
    assert s.next_due() == 205
    s.checked(205)
    s.retry_at(210)
    assert s.next_due() == 210
