"""User errors, and the hook that prints them as one line at the end of a bundle command.

A *user error* is a problem with what the user gave — a file, a folder, a command-line argument, the
state of an output folder — that the user can fix. Its message names the file or argument, the problem
and what to do. Bugs are everything else and keep their traceback.

``python -m monai.bundle run ...`` wraps every exception raised inside a config expression in MONAI's
``RuntimeError("Failed to evaluate ...")``, so a user error would end a 50-80 line traceback with MONAI's
line instead of ours. The bundle configs call :func:`install_excepthook` first: an uncaught exception
whose cause chain holds a :class:`UserError` is then printed as ``error: <message>`` (the last line of
the output, exit status 1) without the traceback. Set ``MONAI_SCRIBBLE_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import TracebackType

__all__ = ["ArgumentError", "DEBUG_ENV_VAR", "DataError", "RunStateError", "UserError", "find_user_error", "install_excepthook"]

DEBUG_ENV_VAR = "MONAI_SCRIBBLE_DEBUG"
"""Set to ``1`` to get the full traceback of user errors too."""


class UserError(Exception):
    """A problem the user can fix; its message names the file or argument, the problem and what to do."""


class ArgumentError(UserError, ValueError):
    """An invalid command-line argument (bundle id): ``--<name>: <problem>[; <hint>]``.

    Args:
        name: the bundle id, as given on the command line without ``--``.
        problem: what is wrong, quoting the value.
        hint: what to do instead.
    """

    def __init__(self, name: str, problem: str, hint: str = "") -> None:
        self.name, self.problem, self.hint = name, problem, hint
        super().__init__(f"--{name}: {problem}" + (f"; {hint}" if hint else ""))

    def __reduce__(self):  # keep the arguments when raised in a worker process
        return (type(self), (self.name, self.problem, self.hint))


class DataError(UserError, ValueError):
    """Invalid or unreadable input data. The message always starts with the offending path.

    A :class:`UserError`: bundle commands print it as one line.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep (path, problem) when raised in a worker process
        return (type(self), (self.path, self.problem))


class RunStateError(UserError):
    """The output folder's state does not allow the requested run (e.g. a new run over a checkpoint)."""


def find_user_error(error: BaseException | None) -> UserError | None:
    """The first :class:`UserError` in ``error`` and its chain of causes / contexts, or ``None``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def install_excepthook() -> None:
    """Print uncaught user errors as one ``error: ...`` line (see the module docstring); idempotent."""
    if getattr(sys.excepthook, "monai_scribble", False):
        return
    previous: Callable = sys.excepthook

    def hook(exc_type: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
        user_error = find_user_error(error)
        if user_error is None or os.environ.get(DEBUG_ENV_VAR, "").strip().lower() in ("1", "true", "yes"):
            previous(exc_type, error, traceback)
            return
        sys.stdout.flush()
        message = " ".join(str(user_error).split())  # one line, whatever the message held
        print(f"error: {message}", file=sys.stderr, flush=True)

    hook.monai_scribble = True  # type: ignore[attr-defined]
    sys.excepthook = hook
