"""The "demo" seed for the Harbor emulator: the content Harbor cleanups get wrong.

acme/app (private): releases and nightlies as buildx multi-arch indexes with attestations (index
children Harbor lists only inside `references`), cosign .sig accessories, an OCI 1.1 referrer, a
multi-tagged release, an untagged orphan, a nested index, and pull times. acme/team/app (a slash
after the project: double encoding), acme/many (130 artifacts: two pages of 100), pub/tool (a
public project). Accounts: an admin, a developer (no delete), project and system robots.
"""

from __future__ import annotations

import datetime as dt

from tests.support.ghcr.demo import Seeded
from tests.support.ghcr.seed import Builder, Manifest
from tests.support.harbor.server import HarborEmulator

ADMIN = ("admin", "Harbor12345")
DEVELOPER = ("dev", "dev-password-1")  # developer on acme: may push, may not delete
ROBOT = ("robot$acme+ci", "robot-secret-0000000000000000")  # project robot: pull, push, delete on acme
SYSTEM_ROBOT = ("robot$ci", "system-robot-secret-00000000")  # system robot: every project
READ_ROBOT = ("robot$acme+read", "read-robot-secret-000000000")  # project robot: pull only

__all__ = ["ADMIN", "DEVELOPER", "READ_ROBOT", "ROBOT", "SYSTEM_ROBOT", "Seeded", "seed_demo"]


def seed_demo(emu: HarborEmulator, now: dt.datetime | None = None) -> Seeded:
    now = now or emu.now()

    def ago(days: float) -> dt.datetime:
        return now - dt.timedelta(days=days)

    s = Seeded()
    emu.store.project("acme", public=False)
    emu.store.project("pub", public=True)
    emu.add_user(*ADMIN, admin=True)
    emu.add_user(*DEVELOPER, acme="developer")
    emu.add_robot(*ROBOT, {"acme": ("pull", "push", "delete")})
    emu.add_robot(*SYSTEM_ROBOT, {"acme": ("pull", "push", "delete"), "pub": ("pull", "push", "delete")})
    emu.add_robot(*READ_ROBOT, {"acme": ("pull",)})

    app = Builder(emu, "acme/app", created=ago(200))  # type: ignore[arg-type]
    for i, (tag, days) in enumerate([("v1.0.0", 90), ("v1.1.0", 60), ("v1.2.0", 10)]):
        tags = [tag, "v1.2", "latest"] if tag == "v1.2.0" else [tag]
        idx = s.keep(f"app:{tag}", app.multiarch(ago(days), tags))
        s.refs[f"app:{tag}/amd64"] = idx.children[0].digest
        s.refs[f"app:{tag}/arm64"] = idx.children[1].digest
        s.refs[f"app:{tag}/attestation-amd64"] = idx.children[2].digest
        s.keep(f"app:{tag}.sig", app.cosign(idx, "sig", ago(days) + dt.timedelta(minutes=6 + i)))
    latest = app.pkg.by_tag("latest")
    release = Manifest(latest.digest, latest.media_type, emu.store.content[latest.digest])
    s.keep("app:v1.2.0/referrer", app.referrer(release, ago(10) + dt.timedelta(minutes=9)))
    for n in range(6):
        day = ago(14 - n)
        s.keep(f"app:nightly-{n:02d}", app.multiarch(day - dt.timedelta(hours=2), [f"nightly-{day:%Y%m%d}"]))
    s.keep("app:orphan", app.image(ago(40), arch="amd64", labels={"stage": "orphan"}))
    inner = app.multiarch(ago(30), [], attest=False)
    windows = app.image(ago(30), arch="amd64", os="windows")
    s.keep("app:bundle-1", app.index([inner, windows], ["bundle-1"], ago(30) + dt.timedelta(minutes=5)))
    s.keep("app:bundle-1/inner", inner)
    # Pull times (Harbor keeps one per artifact): v1.0.0 is still pulled, v1.1.0 was never.
    emu.artifact("acme/app", s.refs["app:v1.0.0"]).pull_time = ago(2)  # type: ignore[union-attr]
    emu.artifact("acme/app", s.refs["app:v1.2.0"]).pull_time = ago(1)  # type: ignore[union-attr]

    team = Builder(emu, "acme/team/app", created=ago(100))  # type: ignore[arg-type]
    for n in range(5):
        tags = [f"dev-{n}"] + (["stable", "prod"] if n == 2 else [])
        s.keep(f"team/app:dev-{n}", team.image(ago(50 - 10 * n), tags, oci=False))

    many = Builder(emu, "acme/many", created=ago(140))  # type: ignore[arg-type]
    for n in range(130):
        s.keep(
            f"many:build-{n:03d}", many.image(ago(130 - n) + dt.timedelta(hours=n % 7), [f"build-{n:03d}"])
        )

    tool = Builder(emu, "pub/tool", visibility="public", created=ago(30))  # type: ignore[arg-type]
    for n in range(3):
        s.keep(f"tool:0.{n}", tool.image(ago(30 - 10 * n), [f"0.{n}"]))

    s.repos = ["acme/app", "acme/team/app", "acme/many", "pub/tool"]
    return s
