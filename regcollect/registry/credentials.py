"""Credentials as docker finds them: flags, DOCKER_AUTH_CONFIG, $DOCKER_CONFIG/config.json
(`auths`, `credHelpers`, `credsStore` through `docker-credential-<name> get`). Missing = anonymous.
Secrets stay inside Credentials, whose repr hides them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from regcollect.errors import AuthError, UsageError
from regcollect.registry.auth import Credentials

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def _config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    """Older config keys may be URLs: reduce them to host[:port]."""
    if "://" in key:
        return urlsplit(key).netloc
    return key.split("/", 1)[0]


def _lookup(mapping: dict[str, Any], host: str) -> Any:
    if host in mapping:
        return mapping[host]
    hub = host in ("docker.io", "index.docker.io", "registry-1.docker.io")
    for key, value in mapping.items():
        if _key_host(key) == host or (hub and key == DOCKER_HUB_KEY):
            return value
    return None


def _from_auth_entry(entry: Any, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials(username=entry.get("username"), identity_token=entry["identitytoken"])
    if entry.get("auth"):
        try:
            raw = base64.b64decode(entry["auth"]).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise UsageError(f"{where}: 'auth' is not valid base64 of user:password") from None
        user, sep, password = raw.partition(":")
        if not sep:
            raise UsageError(f"{where}: 'auth' does not hold user:password")
        return Credentials(username=user, password=password)
    if entry.get("username") and entry.get("password"):
        return Credentials(username=entry["username"], password=entry["password"])
    return None


def _helper(name: str, host: str) -> Credentials | None:
    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run([program, "get"], input=host, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise AuthError(f"credential helper {program} is configured but not installed") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} did not answer in 30 s") from None
    if proc.returncode != 0:
        if "not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise AuthError(f"credential helper {program} failed (exit {proc.returncode})")
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AuthError(f"credential helper {program} printed no JSON") from None
    user, secret = doc.get("Username"), doc.get("Secret")
    if not secret:
        return None
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username=user, password=secret)


def _load(text: str, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: expected a JSON object")
    return doc


def resolve(host: str, username: str | None = None, password: str | None = None) -> Credentials:
    """Flags first, then DOCKER_AUTH_CONFIG, then the docker config file; else anonymous."""
    if username is not None:
        if password is None:
            raise UsageError("--username needs --password-stdin (the password is read from stdin)")
        return Credentials(username=username, password=password)
    env = os.environ.get("DOCKER_AUTH_CONFIG")
    if env:
        doc = _load(env, "DOCKER_AUTH_CONFIG")
        auths = doc.get("auths", doc)
        found = _from_auth_entry(_lookup(auths, host), f"DOCKER_AUTH_CONFIG entry for {host}")
        if found:
            return found
    path = _config_path()
    if not path.exists():
        return Credentials()
    try:
        doc = _load(path.read_text(), str(path))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    helpers = doc.get("credHelpers") or {}
    helper = _lookup(helpers, host) if isinstance(helpers, dict) else None
    if helper:
        return _helper(helper, host) or Credentials()
    found = _from_auth_entry(_lookup(doc.get("auths") or {}, host), f"{path}: auths[{host!r}]")
    if found:
        return found
    if doc.get("credsStore"):
        return _helper(doc["credsStore"], host) or Credentials()
    return Credentials()
