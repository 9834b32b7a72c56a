"""The "demo" seed: accounts and content Docker Hub cleanups get wrong.

acme/app (public): buildx multi-arch releases with attestations, cosign .sig tags, a release with
three tags (v1.2.0, v1.2, latest), nightlies, a Docker manifest list; pull times set so that
`--unpulled-for` has something to decide. acme/many: 130 tags (two pages of 100). octo/tool: a
user's repository. Times are relative to `now`. The content comes from the ghcr seed builders.
"""

from __future__ import annotations

import datetime as dt

from tests.support.dockerhub.server import HubEmulator
from tests.support.ghcr.demo import Seeded
from tests.support.ghcr.seed import Builder

PASSWORD = "pw-octo-0000000000"  # octo's account password (admin on octo and acme)
PAT = "dckr_pat_octo00000000000000000000"  # octo's personal access token: Read, Write, Delete
READ_PAT = "dckr_pat_read00000000000000000000"  # octo's personal access token: Read only
OAT = "dckr_oat_acme00000000000000000000"  # acme's organisation access token (identifier "acme")

__all__ = ["OAT", "PASSWORD", "PAT", "READ_PAT", "Seeded", "seed_demo"]


def seed_demo(emu: HubEmulator, now: dt.datetime | None = None) -> Seeded:
    now = now or emu.now()

    def ago(days: float) -> dt.datetime:
        return now - dt.timedelta(days=days)

    s = Seeded()
    emu.store.account("acme", org=True, members=("octo",))
    emu.add_secret("octo", PASSWORD, "admin")
    emu.add_secret("octo", PAT, "admin")
    emu.add_secret("octo", READ_PAT, "read")
    emu.add_secret("acme", OAT, "admin", org=True)

    app = Builder(emu, "acme/app", visibility="public", created=ago(200))  # type: ignore[arg-type]
    for tag, days in [("v1.0.0", 90), ("v1.1.0", 60), ("v1.2.0", 10)]:
        tags = [tag, "v1.2", "latest"] if tag == "v1.2.0" else [tag]
        idx = s.keep(f"app:{tag}", app.multiarch(ago(days), tags))
        for n, child in enumerate(idx.children):
            s.refs[f"app:{tag}/{n}"] = child.digest
        s.keep(f"app:{tag}.sig", app.cosign(idx, "sig", ago(days) + dt.timedelta(minutes=6)))
    for n in range(6):
        idx = s.keep(f"app:nightly-{n}", app.multiarch(ago(8 - n), [f"nightly-{n}"]))
        s.refs[f"app:nightly-{n}/0"] = idx.children[0].digest
    s.keep("app:legacy-1.0", app.multiarch(ago(120), ["legacy-1.0"], oci=False))

    many = Builder(emu, "acme/many", visibility="public", created=ago(140))  # type: ignore[arg-type]
    for n in range(130):
        s.keep(f"many:build-{n:03d}", many.image(ago(130 - n), [f"build-{n:03d}"]))

    tool = Builder(emu, "octo/tool", visibility="private", created=ago(30))  # type: ignore[arg-type]
    for n in range(3):
        s.keep(f"tool:0.{n}", tool.image(ago(30 - 10 * n), [f"0.{n}"]))

    # Pulls: v1.0.0 is old but still pulled; v1.1.0 was last pulled long ago; nightly-0 never.
    pulled = {"v1.0.0": 2, "v1.1.0": 45, "latest": 1, "legacy-1.0": 100, "nightly-1": 3}
    repo = emu.repo("acme/app")
    for tag, days in pulled.items():
        t = repo.tags[tag]
        t.last_pulled = repo.manifests[t.digest].last_pulled = ago(days)
    s.repos = ["acme/app", "acme/many", "octo/tool"]
    return s
