"""In-use protection against distribution 2.8: what a deployment names survives keep-last, by tag
and by digest, from a Kubernetes manifest, a compose file and a pod list on stdin."""

from __future__ import annotations

import json

import pytest

from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def old_and_new(p, repo: str) -> dict[str, object]:
    return {t: p.image(repo, t, created=ts(10 - i)) for i, t in enumerate(("v1", "v2", "v3", "v4"))}


def test_a_kubernetes_manifest_keeps_its_tag_over_keep_last(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("prot") + "/app"
    imgs = old_and_new(p, repo)
    deploy = tmp_path / "deploy" / "prod.yaml"
    deploy.parent.mkdir()
    deploy.write_text(
        f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {host}/{repo}:v1
        - name: sidecar
          image: other.example/sidecar:1
"""
    )
    dry = run(
        "remote", host, "--repo", repo, "--keep-last", "1", "--protect-file", str(deploy), "--dry-run", "-v"
    )
    assert dry.code == 0, dry.err
    line = next(x for x in dry.out.splitlines() if "v1" in x)
    assert f"kept: in use (from {deploy})" in line
    assert "other.example/sidecar:1 is in another registry: ignored" in dry.err
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--protect-file", str(deploy), "--yes")
    assert r.code == 0, r.out + r.err
    assert p.tags(repo) == ["v1", "v4"]
    assert p.exists(repo, imgs["v1"].digest)


def test_a_compose_file_by_digest_and_a_policy_file_that_names_it(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("prot") + "/web"
    imgs = old_and_new(p, repo)
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {host}/{repo}@{imgs['v2'].digest}\n  db:\n    image: postgres:16\n"
    )
    (tmp_path / "policy.toml").write_text(
        f'protect = ["compose.yaml"]\n[[rules]]\nrepositories = ["{repo}"]\nkeep_last = 1\n'
    )
    r = run("remote", host, "--policy", str(tmp_path / "policy.toml"), "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    by = {a["digest"]: a for a in r.json()["actions"]}
    assert by[imgs["v2"].digest]["reason"] == "kept: in use (from compose.yaml)"
    assert p.tags(repo) == ["v2", "v4"]  # by digest, and the tag stays with it


def test_a_pod_list_on_stdin_keeps_tags_and_status_digests_with_their_index(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("prot") + "/pods"
    imgs = old_and_new(p, repo)
    kids = [p.image(repo, created=ts(20), arch=a) for a in ("amd64", "arm64")]
    idx = p.index(repo, "multi", kids)
    sig = p.cosign_signature(repo, idx)
    pods = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "kind": "Pod",
                "spec": {"containers": [{"name": "a", "image": f"{host}/{repo}:v2"}]},
                "status": {
                    "containerStatuses": [
                        {
                            "image": f"{host}/{repo}:v2",
                            "imageID": f"docker-pullable://{host}/{repo}@{kids[0].digest}",
                        }
                    ]
                },
            }
        ],
    }
    r = run(
        "remote",
        host,
        "--repo",
        repo,
        "--keep-last",
        "1",
        "--protect-file",
        "-",
        "--yes",
        "-o",
        "json",
        input=json.dumps(pods),
    )
    assert r.code == 0, r.out + r.err
    by = {a["digest"]: a for a in r.json()["actions"]}
    assert by[kids[0].digest]["reason"] == "kept: in use (from stdin)"
    assert by[idx.digest]["action"] == "keep" and "holds" in by[idx.digest]["reason"]
    assert by[sig.digest]["action"] == "keep"  # the index's signature follows it
    assert sorted(p.tags(repo)) == sorted(["v2", "v4", "multi", sig.tags[0]])
    assert p.exists(repo, kids[1].digest) and not p.exists(repo, imgs["v1"].digest)


def test_protect_file_errors_stop_before_anything_is_contacted(run, tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("reg.example/app:1\nreg.example/App:2\n")
    unreachable = "127.0.0.1:9"  # nothing listens: contacting it would be exit 3
    r = run("remote", unreachable, "--keep-last", "1", "--protect-file", str(bad), "--dry-run")
    assert r.code == 2, r.out + r.err
    assert f"{bad}:2: invalid reference 'reg.example/App:2'" in r.err
    r = run(
        "remote",
        unreachable,
        "--keep-last",
        "1",
        "--protect-file",
        "-",
        "-u",
        "me",
        "--password-stdin",
        "--yes",
        input="secret\n",
    )
    assert r.code == 2
    assert "--protect-file - and --password-stdin both read stdin" in r.err
    assert "secret" not in r.out + r.err


def test_locally_a_protected_tag_survives_keep_last(engine, run, tmp_path):
    from tests.support.dockertar import load_image

    repo = unique("lprot") + "/svc"
    imgs = [load_image(engine, f"{repo}:v{i}", created=ts(50 - i)) for i in range(3)]
    (tmp_path / "compose.yaml").write_text(f"services:\n  svc:\n    image: {repo}:v0\n")
    r = run(
        "local", "--repo", repo, "--keep-last", "1", "--protect-file", str(tmp_path / "compose.yaml"), "--yes"
    )
    assert r.code == 0, r.out + r.err
    assert "kept: in use (from" in r.out
    left = {t for i in imgs for t in _tags(engine, i.id)}
    assert left == {f"{repo}:v0", f"{repo}:v2"}
    # Every local mode honours it: naming the image as docker rmi would, or a budget.
    r = run("local", f"{repo}:v0", "--protect-file", str(tmp_path / "compose.yaml"), "--yes")
    assert r.code == 0, r.out + r.err
    assert "kept: in use (from" in r.out and f"{repo}:v0" in _tags(engine, imgs[0].id)
    r = run(
        "local", "--repo", repo, "--max-size", "1B", "--protect-file", str(tmp_path / "compose.yaml"), "--yes"
    )
    assert f"{repo}:v0" in _tags(engine, imgs[0].id), r.out + r.err


def _tags(engine, image_id: str) -> list[str]:
    import docker

    try:
        return engine.images.get(image_id).tags
    except docker.errors.ImageNotFound:
        return []
