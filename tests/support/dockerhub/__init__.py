"""An offline emulator of Docker Hub: the Hub API (hub.docker.com) and the registry's /v2.

Built from /work/shared/reference/hosted-registries.md section 2 (docs/emulators.md lists what
it models and its switches). Use it as a context manager:

    with HubEmulator() as emu:
        seeded = seed_demo(emu)
        ... emu.api_url, emu.registry_host, emu.tags("acme/app"), emu.rest_log ...
"""

from tests.support.dockerhub.demo import OAT, PASSWORD, PAT, READ_PAT, seed_demo
from tests.support.dockerhub.server import HubEmulator

__all__ = ["OAT", "PASSWORD", "PAT", "READ_PAT", "HubEmulator", "seed_demo"]
