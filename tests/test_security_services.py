"""The service layer enforces what the pages only hide: the environment-id check on every entry
point, and the caller's role on every call that changes research state."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import PromptSet, create_run, get_run, init_db, list_runs, update_run
from vlmrm_core.store.prompt_sets import delete_prompt_set, get_prompt_set, save_prompt_set
from vlmrm_core.store.sweeps import create_sweep, get_sweep
from vlmrm_core.store.tasks import delete_dataset_as
from vlmrm_core.store.users import AccessError, ensure_admins, set_user_role
from vlmrm_core.training import grids, jobs
from vlmrm_core.training.config import ConfigError, TrainConfig

ADMIN, RESEARCHER, LABELLER = "admin@x.org", "res@x.org", "lab@x.org"


@pytest.fixture
def config() -> TrainConfig:
    """A run that passes validation (nothing trains: runs are only queued)."""
    return TrainConfig(
        env_id="CartPole-v1",
        algo="dqn",
        total_steps=100,
        model=ModelRef("ViT-S-32-alt", None),
        reward=RewardSpec(("a pole upright",), ("a pole",), alpha=0.5),
    )


@pytest.fixture
def evil_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module ``vlmrm_evil_env`` whose import creates the returned marker file."""
    marker = tmp_path / "imported"
    (tmp_path / "vlmrm_evil_env.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Env: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


# --------------------------------------------------------------------------- environment ids


def test_start_run_never_imports_a_module_env_id(
    data_dir: Path, config: TrainConfig, evil_module: Path
) -> None:
    for env_id in ("vlmrm_evil_env:Env", "vlmrm_evil_env:CartPole-v1"):
        with pytest.raises(ConfigError, match="module:Env"):
            jobs.start_run(config.replace(env_id=env_id), launch=False)
    assert not evil_module.exists()
    assert "vlmrm_evil_env" not in sys.modules
    assert list_runs(init_db()) == []


def test_the_cli_never_imports_a_module_env_id(
    data_dir: Path, evil_module: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.cli.main import main

    argv = ["train", "start", "--env", "vlmrm_evil_env:Env", "--algo", "dqn", "--steps", "100"]
    argv += ["--model", "ViT-S-32-alt", "--pretrained", "random", "--goal", "up", "--no-launch"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "module:Env" in err and "Traceback" not in err
    assert not evil_module.exists()
    assert "vlmrm_evil_env" not in sys.modules


def test_start_run_and_sweeps_honour_the_env_allowlist(
    data_dir: Path, config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLMRM_ENV_ALLOWLIST", "MountainCar-*")
    with pytest.raises(ConfigError, match="not allowed on this server"):
        jobs.start_run(config, launch=False)
    with pytest.raises(ConfigError, match="not allowed on this server"):
        grids.launch_sweep(config, engine_kind="local", seeds=2)
    assert list_runs(init_db()) == []
    monkeypatch.setenv("VLMRM_ENV_ALLOWLIST", "CartPole-*")
    run_id = jobs.start_run(config, launch=False)
    assert get_run(init_db(), run_id).status == "queued"


# --------------------------------------------------------------------------- roles


@pytest.fixture
def users(data_dir: Path) -> Engine:
    engine = init_db()
    ensure_admins(engine, [ADMIN])
    set_user_role(engine, RESEARCHER, "researcher", actor=ADMIN)
    set_user_role(engine, LABELLER, "labeller", actor=ADMIN)
    return engine


def _stopped_run(engine: Engine) -> int:
    run = create_run(engine, name="r", env_id="CartPole-v1", algo="dqn", config={}, total_steps=10)
    update_run(engine, run.id, status="cancelled")
    return run.id


def _prompt_set(created_by: str | None) -> PromptSet:
    return PromptSet(
        name="upright",
        model=ModelRef("ViT-S-32-alt", None),
        reward=RewardSpec(("a pole upright",), ("a pole",)),
        created_by=created_by,
    )


ROLE_CALLS: dict[str, Callable[[Engine, TrainConfig, str | None], Any]] = {
    "start run": lambda e, c, who: jobs.start_run(c, engine=e, launch=False, created_by=who),
    "cancel run": lambda e, c, who: jobs.cancel_run(
        create_run(e, name="q", env_id="CartPole-v1", algo="dqn", config={}, total_steps=1).id,
        engine=e,
        actor=who,
    ),
    "resume run": lambda e, c, who: jobs.resume_run(
        _stopped_run(e), engine=e, launch=False, actor=who
    ),
    "launch sweep": lambda e, c, who: grids.launch_sweep(
        c, engine_kind="local", seeds=1, engine=e, created_by=who, launch=False
    ),
    "cancel sweep": lambda e, c, who: grids.cancel_sweep(
        create_sweep(e, name="s", engine_kind="local", spec={"points": []}).id,
        engine=e,
        actor=who,
    ),
    "resume sweep": lambda e, c, who: grids.resume_sweep(_cancelled_sweep(e), engine=e, actor=who),
    "save prompt set": lambda e, c, who: save_prompt_set(e, _prompt_set(who)),
    "delete prompt set": lambda e, c, who: delete_prompt_set(
        e, save_prompt_set(e, _prompt_set(None)).name, actor=who
    ),
    "delete dataset": lambda e, c, who: delete_dataset_as(e, who, "no-such-dataset"),
}


def _cancelled_sweep(engine: Engine) -> int:
    sweep = create_sweep(engine, name="s", engine_kind="local", spec={"points": []})
    grids.cancel_sweep(sweep.id, engine=engine)
    return sweep.id


@pytest.mark.parametrize("call", list(ROLE_CALLS))
def test_a_labeller_is_refused_by_the_service(
    call: str, users: Engine, config: TrainConfig
) -> None:
    runs_before = len(list_runs(users))
    with pytest.raises(AccessError, match="labeller") as refused:
        ROLE_CALLS[call](users, config, LABELLER)
    assert isinstance(refused.value, VlmrmError)
    assert "\n" not in str(refused.value)
    # refused before anything was queued (the helpers' own setup rows aside)
    assert all(r.created_by != LABELLER for r in list_runs(users))
    assert len(list_runs(users)) <= runs_before + 1


@pytest.mark.parametrize("call", [c for c in ROLE_CALLS if c != "delete dataset"])
@pytest.mark.parametrize("who", [RESEARCHER, ADMIN, None])
def test_researchers_admins_and_the_local_user_are_allowed(
    call: str, who: str | None, users: Engine, config: TrainConfig
) -> None:
    ROLE_CALLS[call](users, config, who)


def test_an_unknown_signed_in_user_cannot_start_runs(users: Engine, config: TrainConfig) -> None:
    with pytest.raises(AccessError, match="no access"):
        jobs.start_run(config, engine=users, launch=False, created_by="stranger@x.org")


def test_only_the_creator_or_an_admin_overwrites_a_prompt_set(users: Engine) -> None:
    save_prompt_set(users, _prompt_set(RESEARCHER))
    set_user_role(users, "other@x.org", "researcher", actor=ADMIN)
    with pytest.raises(AccessError, match="belongs to"):
        save_prompt_set(users, _prompt_set("other@x.org"), overwrite=True)
    with pytest.raises(AccessError, match="belongs to"):
        delete_prompt_set(users, "upright", actor="other@x.org")
    save_prompt_set(users, _prompt_set(ADMIN), overwrite=True)
    assert get_prompt_set(users, "upright").created_by == RESEARCHER
    assert delete_prompt_set(users, "upright", actor=RESEARCHER)


def test_a_cancelled_sweep_refused_to_a_labeller_stays_cancelled(users: Engine) -> None:
    sweep_id = _cancelled_sweep(users)
    with pytest.raises(AccessError):
        grids.resume_sweep(sweep_id, engine=users, actor=LABELLER)
    assert get_sweep(users, sweep_id).status == "cancelled"
