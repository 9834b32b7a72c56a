"""The few Docker Engine calls regcollect uses, over docker-py's low-level API, errors mapped here.

A 409 is only a status code in docker-py; here it becomes Conflict with the kind users need to
understand (running, stopped, child, multiple).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import requests

from regcollect.errors import Conflict, ConnectError, EngineError, NotFound


def _conflict_kind(message: str) -> str:
    m = message.lower()
    if "running container" in m or ("container" in m and "running" in m):
        return "running"
    if "container" in m:
        return "stopped"
    if "multiple repositories" in m:
        return "multiple"
    if "child" in m or "dependent" in m:
        return "child"
    return "conflict"


class EngineClient:
    def __init__(self, host: str | None = None, *, log: Callable[[str], None] | None = None):
        self.log = log
        try:
            if host:
                self.api = docker.APIClient(base_url=host, version="auto", timeout=120)
            else:
                self.api = docker.from_env(timeout=120).api
        except docker.errors.DockerException as exc:
            raise ConnectError(
                f"cannot connect to the Docker Engine at {host or 'DOCKER_HOST'}: {exc}"
            ) from None
        self.address = host or self.api.base_url
        # A unix socket is this machine's engine (its data root is a local path); tcp:// and
        # ssh:// may be anywhere, so free space on its disk cannot be measured from here.
        where = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.local = where.startswith(("unix://", "/"))

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        started = time.monotonic()
        try:
            out = fn(*args, **kw)
        except docker.errors.NotFound as exc:
            self._log(what, started, "404")
            raise NotFound(f"{what}: {exc.explanation or exc}", status=404) from None
        except docker.errors.APIError as exc:
            status = exc.status_code
            self._log(what, started, str(status))
            text = str(exc.explanation or exc)
            if status == 409:
                raise Conflict(f"{what}: {text}", _conflict_kind(text)) from None
            raise EngineError(f"{what}: {status} {text}") from None
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise ConnectError(f"{what}: cannot reach the Docker Engine at {self.address}: {exc}") from None
        self._log(what, started, "ok")
        return out

    def _log(self, what: str, started: float, status: str) -> None:
        if self.log:
            self.log(f"engine {what} -> {status} ({(time.monotonic() - started) * 1000:.0f} ms)")

    def ping(self) -> None:
        self._call("ping", self.api.ping)

    def info(self) -> dict[str, Any]:
        return dict(self._call("info", self.api.info))

    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self._call(f"inspect container {container}", self.api.inspect_container, container))

    def events(self) -> Iterator[dict[str, Any]]:
        """The engine's event stream, decoded; errors while reading are mapped as for any call."""
        stream = self._call("events", self.api.events, decode=True)
        self._stream = stream
        try:
            while True:
                try:
                    event = next(stream)
                except StopIteration:
                    return
                except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
                    raise ConnectError(f"events: lost the Docker Engine at {self.address}: {exc}") from None
                if isinstance(event, dict):
                    yield event
        finally:
            self._stream = None
            stream.close()

    def close_events(self) -> None:
        """Unblock a thread reading events (shutdown)."""
        stream = getattr(self, "_stream", None)
        if stream is not None:
            with contextlib.suppress(Exception):  # a broken stream: nothing left to close
                stream.close()

    def images(self) -> list[dict[str, Any]]:
        return list(self._call("list images", self.api.images, all=True) or [])

    def inspect(self, image: str) -> dict[str, Any]:
        return dict(self._call(f"inspect {image}", self.api.inspect_image, image))

    def containers(self) -> list[dict[str, Any]]:
        return list(self._call("list containers", self.api.containers, all=True) or [])

    def df(self) -> dict[str, Any]:
        return dict(self._call("disk usage", self.api.df))

    def remove_image(self, image: str, *, force: bool = False) -> list[dict[str, Any]]:
        return list(self._call(f"remove image {image}", self.api.remove_image, image, force=force) or [])

    def remove_container(self, container: str) -> None:
        self._call(f"remove container {container}", self.api.remove_container, container)
