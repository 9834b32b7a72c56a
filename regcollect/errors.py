"""The error tree. Library code raises these; only the CLI turns them into exit codes.

    RegcollectError                 exit 1  finished, but something failed
    +-- UsageError                  exit 2  bad flags, policy, reference or plan file; nothing done
    |   +-- PolicyError
    |   +-- ReferenceError_
    |   +-- ConfirmationRequired
    +-- StateError                  exit 4  finished; the state is not what was asked
    +-- ConnectError                exit 3  could not connect, TLS failed, or the answer was unreadable
    +-- AuthError                   exit 3  bad credentials or a missing permission
    +-- RegistryError               exit 1  the registry refused an operation (carries status and code)
    |   +-- DeleteDisabled          the registry has deletion switched off
    |   +-- NotFound
    +-- EngineError                 exit 1  the Docker Engine refused an operation
        +-- Conflict                409 from the engine (running/stopped container, children, multi-ref)

Messages are one line and never contain credentials: URLs are stripped of userinfo before they
get here (see registry.client.redact_url).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_STATE = 4  # finished; the state is not what was asked (check's findings, a budget unreachable)


class RegcollectError(Exception):
    exit_code = EXIT_FAILED


class UsageError(RegcollectError):
    exit_code = EXIT_USAGE


class PolicyError(UsageError):
    pass


class ReferenceError_(UsageError):  # noqa: N801 - avoid shadowing the builtin ReferenceError
    pass


class ConfirmationRequired(UsageError):
    pass


class StateError(RegcollectError):
    """Finished, but what should hold afterwards does not (a kept tag that no longer resolves)."""

    exit_code = EXIT_STATE


class ConnectError(RegcollectError):
    exit_code = EXIT_CONNECT


class AuthError(RegcollectError):
    exit_code = EXIT_CONNECT


class RegistryError(RegcollectError):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class ChangedSincePlan(RegcollectError):
    """Raised by a backend when the target refused because things changed: the item is skipped."""


class DeleteDisabled(RegistryError):
    pass


class NotFound(RegistryError):
    pass


class EngineError(RegcollectError):
    pass


class Conflict(EngineError):
    """The engine refused with 409; `kind` says why (running, stopped, child, multiple)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind
