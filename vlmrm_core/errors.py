"""The errors a user can fix, and how to tell them from bugs.

Every exception whose message is written for the user (it names the problem and the fix)
derives from :class:`VlmrmError`. The app shows such an error with ``st.error``; the CLI prints
it as one line (``vlmrm: error: …``, exit status 1). Anything else is a bug and keeps its
traceback.

Where existing callers catch a built-in type, the error mixes it in, so ``except ValueError``
(or ``KeyError``, ``RuntimeError``) keeps working:

* :class:`InvalidInputError` (``ValueError``): a value, file or setting the user gave is wrong.
* :class:`NotFoundError` (``KeyError``): a named dataset, prompt set, run or frame does not exist.
* :class:`RunStateError` (``ValueError``): a run is not in a state that allows the action.
* :class:`CliError`: a command-line mistake.

Other modules define their own subclasses next to the code that raises them (``ModelError``
in :mod:`vlmrm_core.clip.models`, ``PromptError`` in :mod:`vlmrm_core.clip.embedding`, ``ConfigError`` in
:mod:`vlmrm_core.training.config`, …).

This module is a leaf: it imports nothing from ``vlmrm_core``, so every module can import it.
"""

from __future__ import annotations

import sys

__all__ = [
    "CliError",
    "InvalidInputError",
    "NotFoundError",
    "RunStateError",
    "VlmrmError",
    "is_user_error",
]


class VlmrmError(Exception):
    """Base of every error the user can fix; the message names the problem and the fix."""


class InvalidInputError(VlmrmError, ValueError):
    """A value, file or setting given by the user is invalid (the message says why)."""


class NotFoundError(VlmrmError, KeyError):
    """A named dataset, prompt set, run or frame does not exist."""

    def __str__(self) -> str:
        # KeyError's default str() wraps the message in quotes.
        return str(self.args[0]) if self.args else "not found"


class RunStateError(VlmrmError, ValueError):
    """The training run is not in a state that allows the requested action."""


class CliError(VlmrmError):
    """A command-line mistake: printed as one line, exit status 1."""


def is_user_error(exc: BaseException) -> bool:
    """True for errors the user can fix, shown as one line rather than a traceback.

    These are:

    * every :class:`VlmrmError`;
    * gymnasium's own errors (``gymnasium.error.Error``: an unknown or misspelt environment
      id, a missing optional dependency such as box2d), which name the problem themselves.
      Checked only when gymnasium is already imported: otherwise it cannot have raised one;
    * operating-system errors about a named file (``OSError`` with ``filename`` set: a missing
      or unreadable file, a folder where a file was expected, a full disk while writing it).
      The message names the path, which is what the user has to fix. Other ``OSError``s
      (sockets, broken pipes, ``OSError("...")`` raised by hand) are not: they have no file
      to point at, and a raw one usually means a bug.

    Everything else, including plain ``ValueError``, is treated as a bug.
    """
    if isinstance(exc, VlmrmError):
        return True
    if isinstance(exc, OSError) and exc.filename is not None:
        return True
    gym_errors = sys.modules.get("gymnasium.error")
    return gym_errors is not None and isinstance(exc, gym_errors.Error)
