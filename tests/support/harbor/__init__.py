"""An offline emulator of Harbor v2: the REST API (/api/v2.0) and its registry (/v2) on one origin.

Built from /work/shared/reference/hosted-registries.md section 4 (docs/emulators.md lists what it
models and its switches):

    with HarborEmulator() as emu:
        seeded = seed_demo(emu)
        ... emu.url, emu.api_url, emu.digests("acme/app"), emu.log ...
"""

from tests.support.harbor.demo import ADMIN, DEVELOPER, READ_ROBOT, ROBOT, SYSTEM_ROBOT, seed_demo
from tests.support.harbor.rest import encode_repository
from tests.support.harbor.server import HarborEmulator

__all__ = [
    "ADMIN",
    "DEVELOPER",
    "READ_ROBOT",
    "ROBOT",
    "SYSTEM_ROBOT",
    "HarborEmulator",
    "encode_repository",
    "seed_demo",
]
