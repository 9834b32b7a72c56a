"""Protect files: every format a deployment comes in yields its images, with file and line on error,
and the planner keeps what they name (tags included) over any rule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from regcollect.errors import UsageError
from regcollect.model import Artifact, Inventory, Kind
from regcollect.planner import Action, evaluate
from regcollect.policy import load_policy, policy_from_flags
from regcollect.protect import parse_text, pins

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
IX = "sha256:" + "9" * 64


def refs(text: str) -> list[str]:
    return [str(p) for p in parse_text(text, "f")]


def test_a_plain_list_with_comments_and_blank_lines():
    text = "# prod\nreg.example:5000/app:1.4.2\n\nreg.example:5000/app@" + D1 + "  # pinned\nnginx\n"
    assert refs(text) == [
        "reg.example:5000/app:1.4.2",
        "reg.example:5000/app@" + D1,
        "docker.io/library/nginx:latest",
    ]


def test_a_deployment_gives_containers_init_and_ephemeral_containers():
    text = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: reg.example/app-migrate:7
      containers:
        - name: web
          image: reg.example/app:1.4.2
      ephemeralContainers:
        - name: debug
          image: busybox:1.36
"""
    assert refs(text) == [
        "reg.example/app-migrate:7",
        "reg.example/app:1.4.2",
        "docker.io/library/busybox:1.36",
    ]


def test_a_cronjob_and_a_helm_render_with_several_documents():
    text = """---
# Source: chart/templates/cron.yaml
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: "reg.example/cron:2"}]
---
# Source: chart/templates/svc.yaml
apiVersion: v1
kind: Service
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
spec:
  template:
    spec:
      containers:
        - image: reg.example/db:16
"""
    assert refs(text) == ["reg.example/cron:2", "reg.example/db:16"]


def test_a_pod_list_gives_images_and_the_digests_in_status():
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "kind": "Pod",
                "spec": {"containers": [{"name": "app", "image": "reg.example/app:1.4.2"}]},
                "status": {
                    "containerStatuses": [
                        {
                            "image": "reg.example/app:1.4.2",
                            "imageID": "docker-pullable://reg.example/app@" + D2,
                        }
                    ],
                    "initContainerStatuses": [{"image": "sha256:" + "4" * 64, "imageID": ""}],
                },
            }
        ],
    }
    found = parse_text(json.dumps(doc, indent=2), "pods.json")
    assert [str(p) for p in found] == [
        "reg.example/app:1.4.2",
        "reg.example/app:1.4.2",
        "reg.example/app@" + D2,
        "sha256:" + "4" * 64,
    ]
    assert found[2].line > 1  # JSON is read as YAML: lines are known


def test_an_empty_pod_list_is_fine():
    assert refs('{"apiVersion": "v1", "kind": "List", "items": []}') == []


def test_a_compose_file():
    text = "services:\n  web:\n    image: reg.example/app:1.4.2\n  build-only:\n    build: .\n"
    assert refs(text) == ["reg.example/app:1.4.2"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("reg.example/app:ok\nreg.example/App:bad\n", "f:2: invalid reference 'reg.example/App:bad'"),
        ("kind: Pod\nspec:\n  containers:\n    - image: 'a b'\n", "f:4: invalid reference 'a b'"),
        ("services:\n  web:\n    image: [1]\n", "f:3: an image must be a string"),
        ("kind: Pod\nspec: {containers: [\n", "f:3:"),
        ("foo: bar\n", "f:1: not a Kubernetes object, a compose file or a list of references"),
        ("reg/app@sha256:abc\n", "f:1: invalid reference 'reg/app@sha256:abc'"),
    ],
)
def test_what_does_not_parse_names_the_file_and_line(text, where):
    with pytest.raises(UsageError) as exc:
        parse_text(text, "f")
    assert str(exc.value).startswith(where), str(exc.value)


def _inv(target: str = "reg.example") -> Inventory:
    def img(d: str, tag: str | None, days: int) -> Artifact:
        return Artifact(
            "app", d, tags=(tag,) if tag else (), created=dt.datetime(2026, 1, days, tzinfo=dt.UTC)
        )

    return Inventory(
        source="remote",
        target=target,
        repositories=["app"],
        artifacts=[
            img(D1, "1.4.2", 1),
            img(D2, None, 2),
            Artifact("app", IX, kind=Kind.INDEX, tags=("multi",), children=(D2,)),
            img(D3, "2.0", 3),
        ],
    )


def test_pins_by_tag_by_digest_holders_and_other_registries():
    found = parse_text(f"reg.example/app:1.4.2\nreg.example/app@{D2}\nother.example/app:2.0\n", "p")
    got, notes = pins(_inv(), found)
    assert got[f"app@{D1}"] == "kept: in use (from p)"
    assert got[f"app@{D2}"] == "kept: in use (from p)"
    assert got[f"app@{IX}"].startswith("kept: in use (from p), holds app@sha256:2222")
    assert f"app@{D3}" not in got
    assert notes == ["p:3: other.example/app:2.0 is in another registry: ignored"]


def test_protection_overrides_keep_last_and_keeps_the_tag_that_keep_tags_would_untag():
    inv = _inv()
    inv.artifacts[0].tags = ("1.4.2", "stable")
    policy = policy_from_flags(
        repos=(), keep_last=1, keep_tags=("stable",), older_than=None, untagged=False, keep_labels=()
    )
    unprotected = {
        d.digest: d for d in evaluate(inv, policy, dt.datetime(2026, 2, 1, tzinfo=dt.UTC)).decisions
    }
    assert unprotected[D1].action is Action.UNTAG  # the case that would break a deployment
    prot = parse_text("reg.example/app:1.4.2\n", "deploy/prod.yaml")
    from dataclasses import replace

    plan = evaluate(inv, replace(policy, protect=tuple(prot)), dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    by = {d.digest: d for d in plan.decisions}
    assert by[D1].action is Action.KEEP
    assert by[D1].reason == "kept: in use (from deploy/prod.yaml)"
    assert plan.policy["protect"] == ["deploy/prod.yaml"]


def test_the_policy_file_names_protect_files_relative_to_itself(tmp_path: Path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "prod.yaml").write_text(
        "kind: Pod\nspec: {containers: [{image: r.example/a:1}]}\n"
    )
    (tmp_path / "policy.toml").write_text(
        'protect = ["deploy/prod.yaml"]\n[[rules]]\nrepositories = ["**"]\nkeep_last = 1\n'
    )
    policy = load_policy(tmp_path / "policy.toml")
    assert [(p.source, str(p)) for p in policy.protect] == [("deploy/prod.yaml", "r.example/a:1")]
    (tmp_path / "bad.toml").write_text('protect = ["missing.yaml"]\n[[rules]]\nrepositories = ["**"]\n')
    with pytest.raises(UsageError, match="missing.yaml: cannot read protect file"):
        load_policy(tmp_path / "bad.toml")
