"""Which errors are the user's to fix (one line) and which are bugs (traceback)."""

from __future__ import annotations

import argparse
import errno
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import pytest

from vlmrm_core.cli import main as cli
from vlmrm_core.errors import (
    CliError,
    InvalidInputError,
    NotFoundError,
    RunStateError,
    VlmrmError,
    is_user_error,
)


def test_user_errors_keep_their_builtin_types() -> None:
    assert isinstance(InvalidInputError("x"), ValueError)
    assert isinstance(RunStateError("x"), ValueError)
    missing = NotFoundError("no dataset named 'a'")
    assert isinstance(missing, KeyError) and str(missing) == "no dataset named 'a'"  # no quotes
    for exc in (InvalidInputError("x"), RunStateError("x"), missing, CliError("x")):
        assert isinstance(exc, VlmrmError) and is_user_error(exc)


def test_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(OSError) as missing_file:
        (tmp_path / "missing.csv").read_text()
    assert is_user_error(missing_file.value)  # about a file the user named
    assert is_user_error(OSError(errno.ENOSPC, "No space left on device", str(tmp_path)))
    assert not is_user_error(OSError("socket closed"))  # no file to point at
    assert not is_user_error(ConnectionResetError(errno.ECONNRESET, "reset"))
    with pytest.raises(gym.error.Error) as unknown_env:
        gym.make("NoSuchEnvAtAll-v0")
    assert is_user_error(unknown_env.value)
    for bug in (ValueError("shape mismatch"), KeyError("k"), TypeError("t"), RuntimeError("r")):
        assert not is_user_error(bug)


def _cli_raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> Callable[[], int]:
    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="vlmrm")

        def handler(args: argparse.Namespace) -> int:
            raise exc

        parser.set_defaults(handler=handler)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)
    return lambda: cli.main([])


def test_cli_prints_user_errors_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _cli_raising(monkeypatch, RunStateError("run 3 is finished; nothing to run"))
    assert run() == 1
    assert capsys.readouterr().err == "vlmrm: error: run 3 is finished; nothing to run\n"


def test_cli_lets_bugs_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _cli_raising(monkeypatch, ValueError("operands could not be broadcast"))
    with pytest.raises(ValueError, match="broadcast"):
        run()
