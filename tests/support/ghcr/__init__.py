"""An offline emulator of GitHub Container Registry: the REST Packages API and ghcr.io's /v2.

Built from /work/shared/reference/hosted-registries.md section 1 (docs/emulators.md lists what it
models and its switches). Use it as a context manager:

    with GhcrEmulator() as emu:
        seeded = seed_demo(emu)
        ... emu.api_url, emu.registry_url, emu.downloads("acme/app", digest), emu.rest_log ...

or run `python -m tests.support.ghcr serve --seed demo`.
"""

from tests.support.ghcr.demo import ACTIONS_TOKEN, PAT, READ_ONLY_PAT, Seeded, seed_demo
from tests.support.ghcr.httpbase import Logged
from tests.support.ghcr.seed import Builder, Manifest
from tests.support.ghcr.server import GhcrEmulator, Token

__all__ = [
    "ACTIONS_TOKEN",
    "PAT",
    "READ_ONLY_PAT",
    "Builder",
    "GhcrEmulator",
    "Logged",
    "Manifest",
    "Seeded",
    "Token",
    "seed_demo",
]
