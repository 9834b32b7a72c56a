"""The engine's inventory while other programs change the engine: an image that goes away between
the list and the inspect is simply not there, and the run goes on."""

from __future__ import annotations

from regcollect.engine.inventory import build_inventory
from regcollect.errors import NotFound

GONE = "sha256:" + "1" * 64
STAYS = "sha256:" + "2" * 64


class FakeEngine:
    """The engine's answers after `docker rmi GONE` ran between our list and our inspect."""

    address = "unix:///fake.sock"

    def images(self):
        return [
            {"Id": GONE, "RepoTags": ["team/old:v1"], "Created": 1_700_000_000},
            {"Id": STAYS, "RepoTags": ["team/app:v2"], "Created": 1_700_000_100},
        ]

    def containers(self):
        return []

    def df(self):
        return {
            "LayersSize": 2000,
            "Images": [
                {"Id": GONE, "Size": 1000, "SharedSize": 0},
                {"Id": STAYS, "Size": 1000, "SharedSize": 0},
            ],
        }

    def inspect(self, image):
        if image == GONE:
            raise NotFound(f"inspect {image}: No such image", status=404)
        return {"Id": image, "RootFS": {"Layers": ["sha256:" + "a" * 64]}, "Metadata": {}}


def test_image_removed_between_list_and_inspect_is_left_out():
    inv, _ = build_inventory(FakeEngine(), need_last_use=True)  # type: ignore[arg-type]
    assert [(a.repository, a.digest, a.tags) for a in inv.artifacts] == [("team/app", STAYS, ("v2",))]
    assert inv.repositories == ["team/app"]
