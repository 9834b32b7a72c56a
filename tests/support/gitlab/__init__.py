"""An offline emulator of GitLab's container registry: the REST API (/api/v4, /jwt/auth) and /v2.

Built from /work/shared/reference/hosted-registries.md section 3 (docs/emulators.md lists what it
models and its switches):

    with GitLabEmulator() as emu:
        seeded = seed_demo(emu)
        ... emu.api_url, emu.registry_host, emu.tags("acme/app"), emu.gc(), emu.rest_log ...
"""

from tests.support.gitlab.demo import DEV_PAT, JOB_TOKEN, PAT, READ_PAT, Seeded, seed_demo
from tests.support.gitlab.server import GitLabEmulator, Token

__all__ = ["DEV_PAT", "JOB_TOKEN", "PAT", "READ_PAT", "GitLabEmulator", "Seeded", "Token", "seed_demo"]
