"""In-use protection edges (protect.py): pod image ids on a local engine, a manifest list's
holder chain, stdin, paths relative to the policy, and the error a bad file gives (issue 21)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from regcollect.errors import UsageError
from regcollect.model import Artifact, Inventory, Kind
from regcollect.protect import STDIN, parse_text, pins, read_files

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IX = "sha256:" + "9" * 64
OUTER = "sha256:" + "8" * 64


def test_a_pod_image_id_pins_the_local_image_it_names_only() -> None:
    found = parse_text(f"docker://{D1}\ndocker://{D2}\n", "pods")
    inv = Inventory("local", "engine", [Artifact("app", D1, tags=("1",))], global_ids=True)
    got, notes = pins(inv, found)
    assert got == {D1: "kept: in use (from pods)"} and notes == []


def test_a_pod_image_id_names_no_registry_remotely() -> None:
    found = parse_text(f"docker://{D1}\n", "pods")
    got, notes = pins(Inventory("remote", "reg.example", [Artifact("app", D1, tags=("1",))]), found)
    assert got == {} and notes == [f"pods:1: image id {D1} names no registry: ignored"]


def test_a_local_pin_by_name_and_tag_is_the_image_id() -> None:
    found = parse_text("app:1\nmissing:2\n", "f")
    inv = Inventory("local", "engine", [Artifact("app", D1, tags=("1",))], global_ids=True)
    got, notes = pins(inv, found)
    assert got == {D1: "kept: in use (from f)"}
    assert notes == ["f:2: missing:2 is not in engine: nothing to keep"]


def test_an_index_of_an_index_holding_a_pinned_manifest_is_pinned_too() -> None:
    arts = [
        Artifact("app", D1, tags=("1",)),
        Artifact("app", IX, kind=Kind.INDEX, children=(D1,)),
        Artifact("app", OUTER, kind=Kind.INDEX, tags=("multi",), children=(IX,)),
        Artifact("app", D2, tags=("2",)),
    ]
    got, _ = pins(Inventory("remote", "reg.example", arts), parse_text("reg.example/app:1\n", "f"))
    assert got[f"app@{IX}"] == f"kept: in use (from f), holds app@{D1[:19]}"
    assert got[f"app@{OUTER}"] == f"kept: in use (from f), holds app@{D1[:19]}, holds app@{IX[:19]}"
    assert f"app@{D2}" not in got


def test_stdin_and_files_relative_to_the_policy(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("reg.example/app:1\n")
    absolute = tmp_path / "b.txt"
    absolute.write_text("reg.example/app:2\n")
    got = read_files([STDIN, "a.txt", str(absolute)], stdin=io.StringIO("reg.example/app:3\n"), base=tmp_path)
    assert [(p.source, str(p)) for p in got] == [
        ("stdin", "reg.example/app:3"),
        ("a.txt", "reg.example/app:1"),
        (str(absolute), "reg.example/app:2"),
    ]


def test_a_protect_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError) as err:
        read_files(["x.txt"], base=tmp_path)
    assert str(err.value) == "x.txt: protect file is not UTF-8 text"
    with pytest.raises(UsageError) as err:
        read_files(["nope.txt"], base=tmp_path)
    assert str(err.value) == "nope.txt: cannot read protect file: No such file or directory"


def test_malformed_yaml_names_the_line_and_the_problem() -> None:
    with pytest.raises(UsageError) as err:
        parse_text("kind: Pod\nspec: [a, b\n", "k.yaml")
    assert str(err.value).startswith("k.yaml:3: ")
    assert "expected ',' or ']'" in str(err.value)


def test_two_words_on_a_line_are_not_a_plain_list() -> None:
    with pytest.raises(UsageError):
        parse_text("reg.example/app:1 reg.example/app:2\n", "f")
