"""Make local images without pulls: write a docker-save tar and `docker load` it.

Chosen created time, labels, tags and layers; layers given as bytes are shared between images
when equal (same diff id), so tests can build shared bases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass

import docker


def layer_tar(content: bytes, name: str = "data.bin") -> bytes:
    """A layer: an uncompressed tar holding one file (deterministic for equal content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Loaded:
    id: str  # sha256:<config digest>
    tags: list[str]
    layers: list[bytes]

    @property
    def short(self) -> str:
        return self.id.split(":", 1)[1][:12]


def load_image(
    client: docker.DockerClient,
    tags: list[str] | str | None,
    *,
    created: dt.datetime,
    labels: dict[str, str] | None = None,
    layers: list[bytes] | None = None,
    size: int = 1024,
    cmd: list[str] | None = None,
) -> Loaded:
    """Load one image; `layers` are layer tars (see layer_tar), default one random layer of `size`."""
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    layers = layers if layers is not None else [layer_tar(os.urandom(size))]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "config": {"Labels": labels or {}, "Cmd": cmd or ["/bin/true"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha(x)}" for x in layers]},
    }
    cfg = json.dumps(config).encode()
    cfg_hex = sha(cfg)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add(f"{cfg_hex}.json", cfg)
        names = []
        for x in layers:
            n = f"{sha(x)}/layer.tar"
            if n not in names:
                add(n, x)
            names.append(n)
        add(
            "manifest.json",
            json.dumps([{"Config": f"{cfg_hex}.json", "RepoTags": tags or None, "Layers": names}]).encode(),
        )
    client.images.load(buf.getvalue())
    return Loaded(f"sha256:{cfg_hex}", tags, layers)


def busybox_layer() -> bytes:
    """A layer with a static busybox at /bin/busybox and /bin/sh, so containers can run."""
    path = "/bin/busybox"
    data = open(path, "rb").read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        d = tarfile.TarInfo("bin")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
        for name in ("sh", "sleep", "true"):
            ln = tarfile.TarInfo(f"bin/{name}")
            ln.type = tarfile.SYMTYPE
            ln.linkname = "busybox"
            tar.addfile(ln)
    return buf.getvalue()
