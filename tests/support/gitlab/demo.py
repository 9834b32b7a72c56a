"""The "demo" seed: GitLab groups and projects with the content cleanups get wrong.

acme/app (private project, its own repository acme/app): releases and nightlies as buildx
multi-arch indexes with attestations, cosign .sig/.att tags, a multi-tagged release, a Docker
manifest list, a nested index. acme/app/worker (a second repository of the same project):
multi-tagged images. acme/platform/many (a subgroup's project): 130 tags, more than one page even
at per_page=100. octo/tool (a user's public project). Content is made by the ghcr emulator's
seed Builder, which writes through the same store methods.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from tests.support.ghcr.demo import Seeded
from tests.support.ghcr.seed import Builder, Manifest
from tests.support.gitlab.server import DEVELOPER, MAINTAINER, REPORTER, GitLabEmulator

PAT = "glpat-demo00000000000000000"  # octo: api scope, Maintainer of acme and octo
READ_PAT = "glpat-read00000000000000000"  # octo: read_api + read_registry
DEV_PAT = "glpat-dev000000000000000000"  # dev: Developer on acme/app, Reporter on octo/tool
JOB_TOKEN = "glcbt-demo0000000000000000"  # a CI job of acme/app, run by octo


def seed_demo(emu: GitLabEmulator, now: dt.datetime | None = None) -> Seeded:
    now = now or emu.now()

    def ago(days: float) -> dt.datetime:
        return now - dt.timedelta(days=days)

    def builder(path: str, created: dt.datetime) -> Builder:
        return Builder(cast(Any, emu), path, created=created)

    s = Seeded()
    store = emu.store
    store.project("acme/app")
    store.project("acme/platform/many")
    store.project("octo/tool", visibility="public")
    emu.add_token(PAT, "octo")
    emu.add_token(READ_PAT, "octo", scopes=("read_api", "read_registry"))
    emu.add_token(DEV_PAT, "dev")
    emu.add_job_token(JOB_TOKEN, "octo", "acme/app")
    emu.member("acme", "octo", MAINTAINER)
    emu.member("octo", "octo", MAINTAINER)
    emu.member("acme/app", "dev", DEVELOPER)
    emu.member("octo/tool", "dev", REPORTER)

    app = builder("acme/app", ago(200))
    for i, (tag, days) in enumerate([("v1.0.0", 90), ("v1.1.0", 60), ("v1.2.0", 10)]):
        tags = [tag, "v1.2", "latest"] if tag == "v1.2.0" else [tag]
        idx = s.keep(f"app:{tag}", app.multiarch(ago(days), tags))
        s.refs[f"app:{tag}/amd64"], s.refs[f"app:{tag}/arm64"] = (
            idx.children[0].digest,
            idx.children[1].digest,
        )
        s.refs[f"app:{tag}/attestation-amd64"] = idx.children[2].digest
        s.keep(f"app:{tag}.sig", app.cosign(idx, "sig", ago(days) + dt.timedelta(minutes=6 + i)))
        if tag == "v1.2.0":
            s.keep("app:v1.2.0.att", app.cosign(idx, "att", ago(days) + dt.timedelta(minutes=8)))
    for n in range(14):
        day = ago(14 - n)
        s.keep(f"app:nightly-{n:02d}", app.multiarch(day - dt.timedelta(hours=2), [f"nightly-{day:%Y%m%d}"]))
    s.keep("app:legacy-1.0", app.multiarch(ago(120), ["legacy-1.0"], oci=False))
    inner = app.multiarch(ago(30), [], attest=False)
    windows = app.image(ago(30), arch="amd64", os="windows")
    s.keep("app:bundle-1", app.index([inner, windows], ["bundle-1"], ago(30) + dt.timedelta(minutes=5)))
    s.keep("app:bundle-1/inner", inner)

    worker = builder("acme/app/worker", ago(100))
    for n in range(5):
        tags = [f"dev-{n}"] + (["stable", "prod"] if n == 2 else [])
        s.keep(f"worker:dev-{n}", worker.image(ago(50 - 10 * n), tags, oci=False))

    many = builder("acme/platform/many", ago(140))
    for n in range(130):
        s.keep(
            f"many:build-{n:03d}", many.image(ago(130 - n) + dt.timedelta(hours=n % 7), [f"build-{n:03d}"])
        )

    tool = builder("octo/tool", ago(30))
    for n in range(3):
        s.keep(f"tool:0.{n}", tool.image(ago(30 - 10 * n), [f"0.{n}"]))

    s.repos = ["acme/app", "acme/app/worker", "acme/platform/many", "octo/tool"]
    return s


__all__ = ["DEV_PAT", "JOB_TOKEN", "PAT", "READ_PAT", "Manifest", "Seeded", "seed_demo"]
