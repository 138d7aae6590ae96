"""``gostack.Error`` and its subclasses, one per ``GS_E*`` code of include/gostack.h."""

from __future__ import annotations

from typing import Dict, Optional, Type

GS_OK = 0
GS_EINVAL = -1
GS_ENOMEM = -2
GS_ENOTGOROUTINE = -3
GS_ECLOSED = -4
GS_EDEADLOCK = -5
GS_ETIMEDOUT = -6
GS_EAGAIN = -7
GS_EBUSY = -8
GS_ESTATE = -9
GS_EPANIC = -10


class Error(Exception):
    """A gostack call failed; ``code`` is the ``GS_E*`` status (negative int)."""

    code: int = 0

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidArgument(Error, ValueError):
    code = GS_EINVAL


class OutOfMemory(Error, MemoryError):
    code = GS_ENOMEM


class NotInGoroutine(Error):
    """The call needs to run inside a goroutine (``yield_`` on a plain thread)."""

    code = GS_ENOTGOROUTINE


class ChannelClosed(Error):
    code = GS_ECLOSED


class Deadlock(Error):
    code = GS_EDEADLOCK


class Timeout(Error, TimeoutError):
    code = GS_ETIMEDOUT


class WouldBlock(Error):
    code = GS_EAGAIN


class Busy(Error):
    code = GS_EBUSY


class WrongState(Error):
    """Wrong runtime state, e.g. ``run()`` from inside a goroutine."""

    code = GS_ESTATE


class InternalError(Error):
    code = GS_EPANIC


class Unavailable(Error, NotImplementedError):
    """The loaded libgostack.so lacks the C functions this feature needs (not merged yet)."""


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (InvalidArgument, OutOfMemory, NotInGoroutine, ChannelClosed, Deadlock, Timeout, WouldBlock,
                Busy, WrongState, InternalError)
}


def error_for(code: int, what: str, strerror: str) -> Error:
    cls = _BY_CODE.get(code, Error)
    return cls(f"{what}: {strerror} ({code})", code)
