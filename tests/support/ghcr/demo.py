"""The "demo" seed: an org and a user with the content ghcr cleanups get wrong.

acme/app (public): releases and nightlies as buildx multi-arch indexes with attestations, cosign
.sig/.att tags, an OCI 1.1 referrer, a multi-tagged release, an untagged orphan, a Docker manifest
list and a nested index. acme/team/app (a slash in the name), acme/many (130 versions, pagination),
octo/tool (a user's package). Times are relative to `now` so ages read the same on every run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from tests.support.ghcr.seed import Builder, Manifest
from tests.support.ghcr.server import GhcrEmulator

PAT = "ghp_demo0000000000000000000000000000000"  # classic PAT of octo: read/write/delete:packages
READ_ONLY_PAT = "ghp_read000000000000000000000000000000"  # classic PAT of octo: read:packages only
ACTIONS_TOKEN = "ghs_demo0000000000000000000000000000000"  # GITHUB_TOKEN, admin on acme/app only


@dataclass
class Seeded:
    """Names tests and the demo use to address what was seeded: role -> digest."""

    refs: dict[str, str] = field(default_factory=dict)
    repos: list[str] = field(default_factory=list)

    def keep(self, role: str, m: Manifest) -> Manifest:
        self.refs[role] = m.digest
        return m


def seed_demo(emu: GhcrEmulator, now: dt.datetime | None = None) -> Seeded:
    now = now or emu.now()

    def ago(days: float) -> dt.datetime:
        return now - dt.timedelta(days=days)

    s = Seeded()
    emu.store.owner("octo", "User")
    emu.store.owner("acme", "Organization", admins=("octo",))
    emu.add_token(PAT, "octo")
    emu.add_token(READ_ONLY_PAT, "octo", scopes=("read:packages",))
    emu.add_token(
        ACTIONS_TOKEN,
        "github-actions[bot]",
        kind="actions",
        admin_on=("acme/app",),
        read_on=("acme/team/app",),
    )

    app = Builder(emu, "acme/app", visibility="public", created=ago(200))
    for i, (tag, days) in enumerate([("v1.0.0", 90), ("v1.1.0", 60), ("v1.2.0", 10)]):
        tags = [tag, "v1.2", "latest"] if tag == "v1.2.0" else [tag]
        idx = s.keep(f"app:{tag}", app.multiarch(ago(days), tags))
        s.refs[f"app:{tag}/amd64"], s.refs[f"app:{tag}/arm64"] = (
            idx.children[0].digest,
            idx.children[1].digest,
        )
        s.refs[f"app:{tag}/attestation-amd64"] = idx.children[2].digest
        s.keep(f"app:{tag}.sig", app.cosign(idx, "sig", ago(days) + dt.timedelta(minutes=6 + i)))
    latest = app.pkg.by_tag("latest")
    assert latest is not None
    release = Manifest(latest.digest, latest.media_type, emu.store.content[latest.digest])
    s.keep("app:v1.2.0.att", app.cosign(release, "att", ago(10) + dt.timedelta(minutes=8)))
    s.keep("app:v1.2.0/referrer", app.referrer(release, ago(10) + dt.timedelta(minutes=9)))
    for n in range(14):
        day = ago(14 - n)
        s.keep(f"app:nightly-{n:02d}", app.multiarch(day - dt.timedelta(hours=2), [f"nightly-{day:%Y%m%d}"]))
    s.keep("app:orphan", app.image(ago(40), arch="amd64", labels={"stage": "orphan"}))
    s.keep("app:legacy-1.0", app.multiarch(ago(120), ["legacy-1.0"], oci=False))
    inner = app.multiarch(ago(30), [], attest=False)
    windows = app.image(ago(30), arch="amd64", os="windows")
    outer = app.index([inner, windows], ["bundle-1"], ago(30) + dt.timedelta(minutes=5))
    s.keep("app:bundle-1", outer)
    s.keep("app:bundle-1/inner", inner)

    team = Builder(emu, "acme/team/app", created=ago(100))
    for n in range(5):
        tags = [f"dev-{n}"] + (["stable", "prod"] if n == 2 else [])
        s.keep(f"team/app:dev-{n}", team.image(ago(50 - 10 * n), tags, oci=False))

    many = Builder(emu, "acme/many", created=ago(140))
    for n in range(130):
        s.keep(
            f"many:build-{n:03d}", many.image(ago(130 - n) + dt.timedelta(hours=n % 7), [f"build-{n:03d}"])
        )

    tool = Builder(emu, "octo/tool", visibility="public", created=ago(30))
    for n in range(3):
        s.keep(f"tool:0.{n}", tool.image(ago(30 - 10 * n), [f"0.{n}"]))

    s.repos = ["acme/app", "acme/team/app", "acme/many", "octo/tool"]
    return s
