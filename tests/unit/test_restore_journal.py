"""A journal line that is valid JSON but not a usable record is skipped with a warning naming its
line; restore goes on with the rest (it is the user's way back, a bad line must not block it)."""

from __future__ import annotations

import base64
import json

from regcollect.journal import read
from regcollect.registry.restore import items_from

MANIFEST = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "c" * 64}, "layers": []}).encode()
GOOD = {
    "type": "intent",
    "source": "remote",
    "registry": "127.0.0.1:5000",
    "repository": "team/app",
    "digest": "sha256:" + "a" * 64,
    "media_type": "application/vnd.oci.image.manifest.v1+json",
    "manifest": base64.b64encode(MANIFEST).decode(),
    "tags": ["v1"],
    "action": "delete",
    "remove_tags": [],
    "kind": "image",
    "subject": None,
    "children": [],
}


def garbled() -> list[dict]:
    return [
        {k: v for k, v in GOOD.items() if k != "manifest"},  # missing key
        {**GOOD, "manifest": "%%% not base64 %%%"},
        {**GOOD, "repository": ["team", "app"]},  # wrong type
        {**GOOD, "tags": "v1"},  # a string where a list belongs
        {**GOOD, "tags": [1, 2]},
        {**GOOD, "manifest": base64.b64encode(b"\x00not json").decode()},
        {**GOOD, "media_type": {"x": 1}},
        {**GOOD, "subject": 12},
        {**GOOD, "digest": ""},
    ]


def test_garbled_records_are_skipped_with_their_line_numbers(tmp_path):
    path = tmp_path / "j.jsonl"
    # A torn line and a blank one first: the warnings count file lines, not records.
    lines = ['{"type": "inte', ""] + [json.dumps(r) for r in garbled()] + [json.dumps(GOOD)]
    path.write_text("\n".join(lines) + "\n")
    warnings: list[str] = []
    items = items_from(list(read(path)), warn=warnings.append)
    assert [(i.repository, i.digest, i.tags, i.data) for i in items] == [
        ("team/app", GOOD["digest"], ["v1"], MANIFEST)
    ]
    assert [w.split(": skipped: ")[0] for w in warnings] == [
        f"journal line {n}" for n in range(3, len(lines))
    ]


def test_index_with_odd_entries_needs_only_its_well_formed_children(tmp_path):
    from regcollect.registry.restore import _needs

    path = tmp_path / "j.jsonl"
    odd_index = base64.b64encode(b'{"manifests": [{"digest": 5}, 7]}').decode()
    path.write_text(json.dumps({**GOOD, "manifest": odd_index}) + "\n")
    (item,) = items_from(list(read(path)), warn=lambda _: None)
    assert _needs(item) == ([], [])
