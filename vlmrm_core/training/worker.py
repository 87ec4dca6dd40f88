"""The training worker: one process trains one run, reporting to the store.

Run as ``python -m vlmrm_core.training.worker RUN_ID`` (what :mod:`~vlmrm_core.training.jobs`
launches, detached) or ``vlmrm train run RUN_ID`` (foreground). The worker:

1. claims the run (status ``running``, its pid), marks runs of dead workers ``crashed``
   (:func:`~vlmrm_core.training.jobs.reconcile_runs`) and starts a heartbeat thread, which
   repeats that check while training, so a killed sibling worker is noticed within seconds;
2. builds the reward model, the vectorised envs with the CLIP reward, and the algorithm, or
   loads the newest checkpoint (``Algo.load(path, env=env)`` plus the replay buffer) so that
   ``num_timesteps`` keeps counting from where the run stopped;
3. trains with the callbacks of :mod:`~vlmrm_core.training.callbacks` (metrics, heartbeat,
   checkpoints, evaluations, cancellation);
4. marks the run ``finished``, ``cancelled`` or ``failed`` (traceback in ``error``), then
   reconciles again: dead workers' runs become ``crashed`` and the next queued runs start.

SIGTERM and SIGINT stop training like a cancellation: a checkpoint is saved first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure as configure_sb3_logger

from vlmrm_core.enums import RewardBatching
from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.base import Reward
from vlmrm_core.reward.model import RewardModel
from vlmrm_core.store import (
    BeatOutcome,
    Engine,
    NotFoundError,
    RunInfo,
    add_run_metrics,
    claim_run_for_worker,
    get_dataset,
    get_prompt_set,
    get_run,
    ingest_frames,
    init_db,
    record_heartbeat,
    update_run,
    utcnow,
)
from vlmrm_core.training.callbacks import (
    CancelCallback,
    CheckpointCallback,
    EvalCallback,
    Heartbeat,
    HeartbeatCallback,
    MetricsCallback,
)
from vlmrm_core.training.checkpoints import list_checkpoints
from vlmrm_core.training.config import (
    ConfigError,
    TrainConfig,
    register_model_config,
    with_prompt_set,
)
from vlmrm_core.training.envs import make_run_env, make_run_vec_env
from vlmrm_core.training.jobs import (
    LOG_NAME,
    RunStateError,
    checkpoint_dir,
    heartbeat_interval,
    reconcile_runs,
    run_dir,
    this_host,
    worker_alive,
)
from vlmrm_core.wrappers.sb3 import RolloutRewardCallback

log = logging.getLogger("vlmrm_core.training")

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "sac": SAC, "ppo": PPO}


def build_reward_model(config: TrainConfig, engine: Engine) -> Reward:
    """The run's reward, from its reward spec or (if not yet copied in) its prompt set.

    Everything downstream (the envs, evaluation) only scores frames with it, so any
    :class:`~vlmrm_core.reward.base.Reward` does: a CLIP
    :class:`~vlmrm_core.reward.model.RewardModel` for runs defined by prompts, or the reward a
    non-CLIP reward file builds (``config.reward_data``, e.g. a VLM judge), in the run's
    precision.

    Args:
        config: The run's configuration.
        engine: Store engine (to read the prompt set).

    Returns:
        The reward of ``N×H×W×3`` frames.
    """
    if config.reward_data is not None:  # another source's reward file (e.g. a VLM judge)
        from vlmrm_core.reward.file import reward_from_data

        return reward_from_data(
            config.reward_data,
            path=config.reward_file or "reward.json",
            device=config.reward_device,
            precision=config.model.precision.value,
        )
    if config.reward is None and config.prompt_set is not None:
        # Only for configs queued without start_run, which copies the prompt set in.
        config = with_prompt_set(config, get_prompt_set(engine, config.prompt_set))
    if config.reward is None:
        raise ConfigError("the run has no reward: give a prompt set or goal prompts")
    if config.model_config is not None:
        register_model_config(config.model_config)
    return RewardModel.from_ref(config.model, config.reward, device=config.reward_device)


def _claim(engine: Engine, run_id: int) -> RunInfo:
    """Mark the run as running in this process, refusing if another live worker has it."""
    return claim_run_for_worker(engine, run_id, os.getpid(), worker_alive, host=this_host())


def _reconcile(engine: Engine, when: str) -> None:
    """The worker's supervisor step: mark dead workers' runs crashed, launch queued runs.

    Never raises: a failed check must not fail this worker's run.
    """
    try:
        done = reconcile_runs(engine)
    except Exception:  # noqa: BLE001  (this worker's own run matters more)
        log.warning("could not check other runs %s", when, exc_info=True)
        return
    if done.crashed:
        log.warning("%s: marked runs %s crashed (their workers are gone)", when, done.crashed)
    if done.launched:
        log.info("%s: launched queued runs %s", when, done.launched)


class _LogSetup:
    """Send the training loggers to the run's log file (and to stderr when it is a terminal)."""

    def __init__(self, path: Path) -> None:
        self.logger = logging.getLogger("vlmrm_core")
        self.handlers: list[logging.Handler] = []
        self.previous_level = self.logger.level
        self.previous_propagate = self.logger.propagate
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        # A detached worker's stderr already is the log file: one handler, no doubled lines.
        if not _stderr_is(path):
            self.handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
        self.handlers.append(logging.StreamHandler(sys.stderr))
        for handler in self.handlers:
            handler.setFormatter(fmt)
            self.logger.addHandler(handler)
        self.logger.setLevel(logging.INFO)
        # Not also through the root logger, which a library may have configured.
        self.logger.propagate = False

    def close(self) -> None:
        for handler in self.handlers:
            self.logger.removeHandler(handler)
            handler.close()
        self.logger.setLevel(self.previous_level)
        self.logger.propagate = self.previous_propagate


def _stderr_is(path: Path) -> bool:
    try:
        return path.exists() and os.path.samestat(os.fstat(sys.stderr.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError):
        return False


class _StopSignals:
    """SIGTERM/SIGINT set a flag (training stops after a checkpoint) instead of killing."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.event.is_set():  # a second signal: stop now
            raise KeyboardInterrupt
        log.warning("received %s: stopping after a checkpoint", signal.Signals(signum).name)
        self.event.set()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_worker(run_id: int, *, engine: Engine | None = None) -> str:
    """Train run ``run_id`` to completion (or cancellation) in this process.

    Args:
        run_id: The run (queued, or claimed for this process by the launcher).
        engine: Store engine (default: the settings' database).

    Returns:
        The final status: ``'finished'``, ``'cancelled'`` or ``'failed'``; or ``'lost'`` when
        the run was taken over by another worker meanwhile (see :class:`Ownership`).

    Raises:
        NotFoundError: No such run.
        RunStateError: The run is finished, or another live worker is running it.
    """
    engine = engine or init_db()
    run = get_run(engine, run_id)
    folder = run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    logs = _LogSetup(folder / LOG_NAME)
    try:
        run = _claim(engine, run_id)
        _reconcile(engine, "at worker start")
        status = _run_claimed(engine, run, folder)
        _reconcile(engine, "at worker exit")
    finally:
        logs.close()
    return status


def _run_claimed(engine: Engine, run: RunInfo, folder: Path) -> str:
    log.info("worker %d starts run %d (%s)", os.getpid(), run.id, run.name)
    ownership = Ownership(engine, run.id, supervise_every_s=2.0 * heartbeat_interval())
    heartbeat = Heartbeat(ownership.beat, interval_s=heartbeat_interval())
    heartbeat.steps = run.steps_done
    heartbeat.start()
    signals = _StopSignals()
    try:
        status = _train(engine, run, folder, heartbeat, signals.event, ownership.lost)
    except BaseException as exc:  # noqa: BLE001  (every failure must reach the run's row)
        trace = traceback.format_exc()
        log.error("run %d failed:\n%s", run.id, trace)
        heartbeat.stop()
        if not ownership.lost.is_set():
            update_run(
                engine,
                run.id,
                status="failed",
                error=trace,
                finished_at=utcnow(),
                steps_done=heartbeat.steps,
            )
        if not isinstance(exc, Exception):
            raise
        return "failed"
    finally:
        signals.restore()
    heartbeat.stop()
    if ownership.lost.is_set():
        log.warning("run %d is no longer this worker's; stopped without updating it", run.id)
        return "lost"
    update_run(
        engine,
        run.id,
        status=status,
        finished_at=utcnow(),
        steps_done=heartbeat.steps,
        cancel_requested=False,
    )
    log.info("run %d %s at step %d", run.id, status, heartbeat.steps)
    return status


class Ownership:
    """This worker's hold on its run's row, renewed by every heartbeat.

    A heartbeat writes ``heartbeat_at`` and ``steps_done`` only while the row still names this
    process (:func:`~vlmrm_core.store.record_heartbeat`). Two situations are handled:

    - The row says ``crashed`` but names this process: another process judged the worker dead
      because its heartbeat was held up (e.g. a long import elsewhere held SQLite's write lock).
      The worker is alive, so the heartbeat takes the run back (``running``, error cleared).
    - The row names another process or has ended (the user resumed a "crashed" run and a new
      worker took it): :attr:`lost` is set and the worker stops without writing anything more,
      so two workers never train the same run.

    With ``supervise_every_s`` set, the heartbeat also runs the supervisor step
    (:func:`~vlmrm_core.training.jobs.reconcile_runs`) at most that often: a sibling worker
    that was killed is marked crashed, and its slot goes to the next queued run, without
    anyone opening the app.

    Args:
        engine: Store engine.
        run_id: The run this worker claimed.
        supervise_every_s: Seconds between supervisor steps; None for none.
    """

    def __init__(
        self, engine: Engine, run_id: int, *, supervise_every_s: float | None = None
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.pid = os.getpid()
        self.host = this_host()  # pids repeat across machines: the row must name both
        self.lost = threading.Event()
        """Set once the run belongs to someone else; training must stop."""
        self.supervise_every_s = supervise_every_s
        self._next_supervision = (
            None if supervise_every_s is None else time.monotonic() + supervise_every_s
        )

    def beat(self, steps: int) -> None:
        """Heartbeat: record liveness and progress if the run is still ours."""
        if self.lost.is_set():
            return
        outcome = record_heartbeat(self.engine, self.run_id, self.pid, steps, host=self.host)
        if outcome is BeatOutcome.LOST:
            log.warning("run %d was taken over or ended elsewhere; stopping", self.run_id)
            self.lost.set()
            return
        if outcome is BeatOutcome.RECLAIMED:
            log.warning(
                "run %d had been marked crashed while this worker was alive (a delayed "
                "heartbeat); it is running again",
                self.run_id,
            )
        if self._next_supervision is not None and time.monotonic() >= self._next_supervision:
            assert self.supervise_every_s is not None
            self._next_supervision = time.monotonic() + self.supervise_every_s
            _reconcile(self.engine, "heartbeat check")


class _StopWhenLost(BaseCallback):
    """Stop training at once (no checkpoint: the run's folder may be another worker's now)."""

    def __init__(self, lost: threading.Event) -> None:
        super().__init__()
        self.lost = lost

    def _on_step(self) -> bool:
        return not self.lost.is_set()


def _train(
    engine: Engine,
    run: RunInfo,
    folder: Path,
    heartbeat: Heartbeat,
    stop: threading.Event,
    lost: threading.Event,
) -> str:
    config = TrainConfig.from_dict(run.config)
    log.info("config: %s", config.to_dict())
    reward_model = build_reward_model(config, engine)
    log.info("reward: %s (%s)", reward_model.description, reward_model.identity)
    if isinstance(reward_model, RewardModel):
        clip = reward_model.clip
        log.info("reward model: %s (%s on %s)", clip.identity, clip.precision, clip.device)
    venv = make_run_vec_env(config, reward_model)
    if isinstance(venv.reward_fn, Reward) and venv.reward_fn is not reward_model:
        log.info("training on: %s", venv.reward_fn.description)  # progress shaping
    model: BaseAlgorithm | None = None
    try:
        model = _build_or_resume(config, venv, checkpoint_dir(run), bool(run.config.get("_resume")))
        heartbeat.steps = int(model.num_timesteps)
        # CSV of SB3's own logger output, beside the store's metrics (handy for debugging).
        model.set_logger(configure_sb3_logger(str(folder / "sb3"), ["csv"]))
        checkpointer = CheckpointCallback(checkpoint_dir(run), config.checkpoint_every)

        def should_cancel() -> bool:
            return stop.is_set() or get_run(engine, run.id).cancel_requested

        cancel = CancelCallback(
            should_cancel, checkpointer, check_interval_s=min(1.0, heartbeat_interval())
        )

        def metrics_sink(rows: list[dict[str, Any]]) -> None:
            add_run_metrics(engine, run.id, rows)

        callbacks: list[BaseCallback] = [
            _StopWhenLost(lost),
            HeartbeatCallback(heartbeat),
            MetricsCallback(metrics_sink, config.log_every),
            checkpointer,
        ]
        evaluator = None
        if config.eval_every > 0:
            evaluator = EvalCallback(
                partial(make_run_env, config),
                reward_model,
                config.eval_every,
                episodes=config.eval_episodes,
                max_steps=config.eval_steps,
                video_dir=folder / "eval",
                frame_sink=_eval_dataset_sink(engine, run.id),
                metrics_sink=metrics_sink,
                env_id=config.env_id,
                run_id=run.id,
                seed=config.seed + 10_000,
            )
            callbacks.append(evaluator)
        callbacks.append(cancel)
        if config.reward_batching == RewardBatching.ROLLOUT:
            # First: a stopped rollout's last rewards then still reach the metrics' last row.
            callbacks.insert(0, RolloutRewardCallback())

        remaining = config.total_steps - int(model.num_timesteps)
        if remaining > 0:
            log.info("training from step %d to %d", model.num_timesteps, config.total_steps)
            model.learn(
                total_timesteps=remaining,
                callback=CallbackList(callbacks),
                # Resumed models keep counting: learn() then adds num_timesteps to the target.
                reset_num_timesteps=model.num_timesteps == 0,
            )
        heartbeat.steps = int(model.num_timesteps)
        if lost.is_set():
            return "lost"
        if cancel.cancelled:
            return "cancelled"
        checkpointer.model = model
        checkpointer.save()
        # A last evaluation of the final policy, unless one already ran at the target step
        # (SB3 may overshoot total_steps by up to n_envs × train_freq steps).
        if evaluator is not None and evaluator.last_step < config.total_steps:
            evaluator.model = model
            evaluator.run_eval()
        return "finished"
    finally:
        if model is not None:
            model.logger.close()
        venv.close()


def _build_or_resume(
    config: TrainConfig, venv: Any, ckpt_dir: Path, resume_requested: bool
) -> BaseAlgorithm:
    algo_cls = ALGORITHMS[config.algo]
    # Small MLP policies are faster on the CPU; SB3 itself warns against PPO MLPs on a GPU.
    device = "cpu" if config.algo == "ppo" else "auto"
    checkpoints = list_checkpoints(ckpt_dir)
    if checkpoints:
        latest = checkpoints[-1]
        model = algo_cls.load(latest.model_path, env=venv, device=device)
        if latest.replay_buffer_path is not None and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(latest.replay_buffer_path)
        log.info(
            "resumed from %s at step %d%s",
            latest.model_path.name,
            model.num_timesteps,
            " with its replay buffer" if latest.replay_buffer_path else "",
        )
        return model
    if resume_requested:
        log.warning("no checkpoint to resume from: training starts from scratch")
    kwargs, ignored = config.algo_kwargs()
    if ignored:
        log.info("ignored for %s: %s", config.algo, ", ".join(ignored))
    return algo_cls("MlpPolicy", venv, seed=config.seed, device=device, verbose=0, **kwargs)


def _eval_dataset_sink(engine: Engine, run_id: int) -> Callable[[int, Iterable[FrameRecord]], Any]:
    """Store each evaluation's frames as dataset ``run-<id>-eval-<step>`` and link the newest."""

    def sink(step: int, records: Iterable[FrameRecord]) -> Any:
        name = f"run-{run_id}-eval-{step}"
        suffix = 1
        # A resumed run can evaluate at a step again; its frames get their own dataset.
        while _dataset_exists(engine, name):
            suffix += 1
            name = f"run-{run_id}-eval-{step}-{suffix}"
        report = ingest_frames(engine, name, records, kind="training-eval")
        update_run(engine, run_id, eval_dataset_id=get_dataset(engine, name).id)
        log.info("evaluation frames stored as dataset %r (%d frames)", name, report.added)
        return report

    return sink


def _dataset_exists(engine: Engine, name: str) -> bool:
    try:
        get_dataset(engine, name)
    except NotFoundError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vlmrm_core.training.worker RUN_ID``: exit 0 unless the run failed."""
    parser = argparse.ArgumentParser(description="Train one VLM-RM Studio run in this process.")
    parser.add_argument("run_id", type=int)
    args = parser.parse_args(argv)
    from vlmrm_core.headless import use_headless_rendering

    use_headless_rendering()  # a worker renders frames off-screen
    try:
        status = run_worker(args.run_id)
    except (NotFoundError, RunStateError) as exc:
        print(f"vlmrm worker: error: {exc}", file=sys.stderr)
        return 1
    return 1 if status in ("failed", "lost") else 0


if __name__ == "__main__":
    sys.exit(main())
