"""Every error baton raises on purpose, in one tree, with the one mapping to exit codes and wire statuses.

    BatonError                  what went wrong and what to fix, in one line
    ├── ConfigError             a flag or config-file value
    ├── DataError               a data file: missing, unreadable, lacking what the task needs
    ├── ModelError              a base model or trained run that cannot be found or loaded
    ├── OutputDirError          an output directory whose state forbids the run
    ├── ExportError             the model cannot be exported
    │   └── GateError           a parity gate failed
    ├── BundleError             a bundle: missing, partial, tampered with, unknown schema
    ├── InputError              texts that do not fit the model                  INVALID_ARGUMENT  400
    └── RequestFailed           a call that got no answer (server and client)
        ├── InvalidRequest      the request as sent can never succeed (also an InputError)  INVALID_ARGUMENT  400
        │   └── RequestTooLarge   more texts than the queue can ever hold
        ├── Unauthenticated     no or a wrong bearer token                       UNAUTHENTICATED   401
        ├── NotFound            no such model                                    NOT_FOUND         404
        ├── WrongTask           the model is of another task                     FAILED_PRECONDITION 409
        ├── Refused             a repository load or unload not made (why)       FAILED_PRECONDITION 409
        ├── Overloaded          the queue is full: retry with backoff            RESOURCE_EXHAUSTED 429
        ├── Cancelled           the client left before its texts ran             CANCELLED         499
        ├── InternalError       the server failed on this request                INTERNAL          500
        │   ├── BatchFailed       this request's batch raised; other batches are unaffected
        │   ├── TokenizationFailed  the tokenizer raised on this request's texts
        │   └── WorkerCrashed     an inference worker died: the server stops
        ├── Unavailable         the server is down, unreachable or refusing      UNAVAILABLE       503
        │   └── ShuttingDown      the server is draining: try another replica
        └── DeadlineExceeded    the deadline passed before the texts ran         DEADLINE_EXCEEDED 504

The boundaries translate once: the CLI prints the message and exits with `exit_code` (no traceback without
`--debug`); the gRPC server aborts with `grpc_status` (the `Status` name is the grpc.StatusCode's), an HTTP front
answers `Status.value`; the Python client raises the class of the status it received (`from_status`). Anything
else that escapes is a bug, and its text never reaches a client.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

__all__ = [
    "EXIT_USAGE",
    "EXIT_WORKER_CRASHED",
    "BatchFailed",
    "BatonError",
    "BundleError",
    "Cancelled",
    "ConfigError",
    "DataError",
    "DeadlineExceeded",
    "ExportError",
    "GateError",
    "InputError",
    "InternalError",
    "InvalidRequest",
    "ModelError",
    "NotFound",
    "OutputDirError",
    "Overloaded",
    "Refused",
    "RequestFailed",
    "RequestTooLarge",
    "ShuttingDown",
    "Status",
    "TokenizationFailed",
    "Unauthenticated",
    "Unavailable",
    "WorkerCrashed",
    "WrongTask",
    "from_status",
    "status_of",
]

EXIT_USAGE = 2  # a BatonError reached the CLI: the message says what to fix
EXIT_WORKER_CRASHED = 3  # `baton serve` stopped because an inference worker died


class Status(Enum):
    """A wire status: its name is the gRPC status code's, its value the HTTP status an HTTP front answers."""

    INVALID_ARGUMENT = 400
    UNAUTHENTICATED = 401
    NOT_FOUND = 404
    FAILED_PRECONDITION = 409
    RESOURCE_EXHAUSTED = 429
    CANCELLED = 499
    INTERNAL = 500
    UNAVAILABLE = 503
    DEADLINE_EXCEEDED = 504


class BatonError(Exception):
    """An error caused by the user's input or environment, with a message that says what to fix."""

    status: ClassVar[Status] = Status.INTERNAL
    exit_code: ClassVar[int] = EXIT_USAGE


class ConfigError(BatonError):
    """A flag or config-file value is invalid."""


class DataError(BatonError):
    """A data file is missing, unreadable, or lacks what the task needs."""


class ModelError(BatonError):
    """A base model or trained run cannot be found or loaded."""


class OutputDirError(BatonError):
    """The output directory is in a state that forbids the requested run."""


class ExportError(BatonError):
    """The model cannot be exported."""


class GateError(ExportError):
    """A parity gate failed: the exported model does not match its reference."""


class BundleError(BatonError):
    """A bundle is missing, partial, tampered with, or of an unknown schema version."""


class InputError(BatonError):
    """Texts given to a model do not match the inputs its manifest declares (e.g. a pair model without pairs)."""

    status = Status.INVALID_ARGUMENT


class RequestFailed(BatonError):
    """A call that got no answer. The server raises it before or instead of the work, and its status goes to the
    client; a client raises the class of the status it received. `code` is the grpc.StatusCode (needs grpc)."""

    @property
    def code(self) -> Any:
        import grpc

        return grpc.StatusCode[self.status.name]


class InvalidRequest(RequestFailed, InputError):
    """The request as sent can never succeed: fix it, do not retry."""

    status = Status.INVALID_ARGUMENT


class RequestTooLarge(InvalidRequest):
    """The request alone holds more texts than the queue ever can."""


class Unauthenticated(RequestFailed):
    status = Status.UNAUTHENTICATED


class NotFound(RequestFailed):
    status = Status.NOT_FOUND


class WrongTask(RequestFailed):
    """The server's model is of another task: the message names the call that answers."""

    status = Status.FAILED_PRECONDITION


class Refused(RequestFailed):
    """A model repository change that was not made: busy, over the budget, model control off, or the bundle failed
    to load (the serving version is untouched). The message says which."""

    status = Status.FAILED_PRECONDITION


class Overloaded(RequestFailed):
    """The queue is full: retry with backoff."""

    status = Status.RESOURCE_EXHAUSTED


class Cancelled(RequestFailed):
    """The request was cancelled before its texts ran."""

    status = Status.CANCELLED


class InternalError(RequestFailed):
    """The server failed on this request; the message is the server's own, never an exception's text."""

    status = Status.INTERNAL


class BatchFailed(InternalError):
    """This item's batch raised in collate, run or postprocess; other batches are unaffected."""


class TokenizationFailed(InternalError):
    """The tokenizer raised on this request's texts; other requests are unaffected."""


class WorkerCrashed(InternalError):
    """A worker thread died: the server goes NOT_SERVING and stops with `EXIT_WORKER_CRASHED`."""


class Unavailable(RequestFailed):
    """The server is down, unreachable, or refusing calls."""

    status = Status.UNAVAILABLE


class ShuttingDown(Unavailable):
    """The server no longer accepts work: it is draining."""


class DeadlineExceeded(RequestFailed):
    """The request's deadline passed before its texts ran."""

    status = Status.DEADLINE_EXCEEDED


# What a client raises for each status it receives: the most general class of that status.
_BY_STATUS: dict[Status, type[RequestFailed]] = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        Unauthenticated,
        NotFound,
        WrongTask,
        Overloaded,
        Cancelled,
        InternalError,
        Unavailable,
        DeadlineExceeded,
    )
}
_ALSO = {"PERMISSION_DENIED": Status.UNAUTHENTICATED, "OUT_OF_RANGE": Status.INVALID_ARGUMENT}


def from_status(name: str, message: str) -> RequestFailed:
    """The error a client raises for a status it received (a gRPC code name); unknown codes are InternalError.
    The message is kept as the server sent it, after the status name."""
    status = Status.__members__.get(name) or _ALSO.get(name, Status.INTERNAL)
    return _BY_STATUS[status](f"{name}: {message}")


def status_of(exc: BaseException) -> Status:
    """The wire status of an error a server answers with: its class's, INTERNAL for anything else."""
    return exc.status if isinstance(exc, BatonError) else Status.INTERNAL
