"""Exit statuses of ``hauler get`` and ``hauler worker``, one per cause (as aria2c lists its own).

=====  ==========================================================================================
code   meaning
=====  ==========================================================================================
0      every file is complete and verified (a worker: every job it finished is done)
1      some files failed, for more than one cause (or a cause without a code of its own)
2      usage: a bad option, argument, configuration value or input; an unusable output directory
3      the job store cannot be reached (``--store`` / ``HAULER_STORE``)
4      every failure was not found or gone (404, 410)
5      every failure was refused access (401, 403) or a certificate that does not verify
6      every failure was the network: connection refused/reset, DNS, stalled, throttled, cut short
7      every failure was local: disk full, permission denied, read-only file system
8      every failure was the content: size or checksum mismatch, over the size limit, changed
9      every failure was a bad request: a URL or option the origin or hauler cannot use
130    interrupted (SIGINT, Ctrl-C); partial downloads are kept
143    terminated (SIGTERM); partial downloads are kept
=====  ==========================================================================================

When every failed file (or job) failed for causes of the same code, that code is the status;
failures of different codes give 1. ``worker`` applies it in the modes that end by themselves
(``drain``, ``once``); a ``forever`` worker stopped by a signal or ``hauler stop`` exits 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from hauler.errors import ErrorClass


class ExitCode(IntEnum):
    """The process exit statuses; see the module docstring for the table."""

    OK = 0
    FAILED = 1
    USAGE = 2
    STORE_UNAVAILABLE = 3
    NOT_FOUND = 4
    FORBIDDEN = 5
    NETWORK = 6
    LOCAL = 7
    CONTENT = 8
    BAD_REQUEST = 9
    INTERRUPTED = 130
    TERMINATED = 143


BY_CLASS: dict[ErrorClass, ExitCode] = {
    ErrorClass.NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorClass.GONE: ExitCode.NOT_FOUND,
    ErrorClass.FORBIDDEN: ExitCode.FORBIDDEN,
    ErrorClass.CERTIFICATE: ExitCode.FORBIDDEN,
    ErrorClass.TRANSIENT: ExitCode.NETWORK,
    ErrorClass.CONNECTION: ExitCode.NETWORK,
    ErrorClass.PROXY: ExitCode.NETWORK,
    ErrorClass.NO_RESOURCE: ExitCode.NETWORK,
    ErrorClass.STALLED: ExitCode.NETWORK,
    ErrorClass.THROTTLED: ExitCode.NETWORK,
    ErrorClass.BANNABLE: ExitCode.NETWORK,
    ErrorClass.BOT_CHECK: ExitCode.NETWORK,
    ErrorClass.STORE: ExitCode.STORE_UNAVAILABLE,
    ErrorClass.LOCAL: ExitCode.LOCAL,
    ErrorClass.CONTENT_MISMATCH: ExitCode.CONTENT,
    ErrorClass.CONTENT: ExitCode.CONTENT,
    ErrorClass.TOO_LARGE: ExitCode.CONTENT,
    ErrorClass.ORIGIN_CHANGED: ExitCode.CONTENT,
    ErrorClass.RANGE_IGNORED: ExitCode.CONTENT,
    ErrorClass.BAD_REQUEST: ExitCode.BAD_REQUEST,
}


def code_for_class(error_class: str) -> ExitCode:
    """The exit status of a run whose only failures are of ``error_class`` (an ErrorClass value;
    anything else, such as ``internal``, is 1)."""
    try:
        return BY_CLASS.get(ErrorClass(error_class), ExitCode.FAILED)
    except ValueError:
        return ExitCode.FAILED


def exit_status(failed_classes: Iterable[str]) -> ExitCode:
    """The exit status of a run whose failures had these classes (one entry per failure, or
    one per distinct class): 0 for none, the shared code when they agree, else 1."""
    codes = {code_for_class(error_class) for error_class in failed_classes}
    if not codes:
        return ExitCode.OK
    return codes.pop() if len(codes) == 1 else ExitCode.FAILED
