"""Which exceptions are the user's to fix (shown as one line) rather than bugs (tracebacks)."""

from __future__ import annotations


def is_user_error(exc: BaseException) -> bool:
    """True for errors caused by input: bad files, prompts, models, settings or arguments.

    Library modules raise ``ValueError`` subclasses (bad values), ``OSError`` (files),
    ``ModelError`` and the CLI's ``CliError`` with messages written for the user.
    """
    from vlmrm_core.cli import CliError
    from vlmrm_core.models import ModelError
    from vlmrm_core.store import NotFoundError

    user_types: tuple[type[BaseException], ...] = (
        CliError,
        ModelError,
        NotFoundError,
        ValueError,
        OSError,
    )
    try:
        import gymnasium.error

        user_types += (gymnasium.error.Error,)
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        pass
    return isinstance(exc, user_types)
