"""Train: launch RL runs on a CLIP reward and watch them. A thin view over vlmrm_core.training.

Runs execute in detached worker processes that write to the database, so this page only reads
and writes rows: closing the browser or restarting the app never stops training.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.security import check_app_pretrained, check_env_id_allowed
from vlmrm_core.settings import get_settings
from vlmrm_core.store import (
    NotFoundError,
    dataset_frames,
    get_run,
    list_datasets,
    list_prompt_sets,
    load_pixels,
    run_metrics,
)
from vlmrm_core.store.runs import finished_run_speed
from vlmrm_core.training import jobs
from vlmrm_core.training.config import ALGOS, ConfigError, TrainConfig, paper_defaults
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.train.forms import (
    ENV_CHOICES,
    STATUS_BADGES,
    algo_hyperparameters,
    default_log_every,
    format_duration,
    hyperparameter_texts,
    interval_warnings,
    parse_hyperparameters,
    prompt_lines,
    speed_estimate,
)
from vlmrm_studio.views.train.grids import sweeps_section
from vlmrm_studio.widgets.common import engine, model_picker
from vlmrm_studio.widgets.success import success_section
from vlmrm_studio.widgets.tables import fitting_width
from vlmrm_studio.widgets.text import md_escape
from vlmrm_studio.widgets.train_plots import losses_figure, training_curves_figure

OTHER_ENV = "other…"
LIVE_REFRESH_S = 2.0
K = "train-"  # prefix of this page's widget keys
FORM_OPEN = f"{K}form"
"""Whether the new-run form is open: a stateful expander, so the page can close it after Start."""
ADVANCED_OPEN = f"{K}advanced"
"""Whether the form's checkpoints / hyperparameters panel is open (kept across reruns, so the
"Scale these to the run" button can keep it open on the values it changed)."""

st.title("🏋️ Train")
st.caption(
    "Train an agent whose only reward is a CLIP score of the rendered frame. Runs continue in "
    "the background when you close the page; up to `VLMRM_MAX_RUNS` run at once, the rest queue."
)
db = engine()
# Mark runs whose worker died as crashed, then start queued runs if slots are free (e.g. runs
# queued with `vlmrm train start --no-launch`); workers do this too when they start and finish
# and while they train. The live table below only reads.
jobs.reconcile_runs(db)


# ----------------------------------------------------------------------------- launch form


def _form_defaults(config: TrainConfig) -> None:
    """Put a config's values into the form's widgets (before they are drawn)."""
    st.session_state[f"{K}steps"] = int(config.total_steps)
    st.session_state[f"{K}n_envs"] = int(config.n_envs)
    st.session_state[f"{K}episode_length"] = int(config.episode_length or 0)
    st.session_state[f"{K}textured"] = bool(config.textured)
    reward = config.reward
    st.session_state[f"{K}goal"] = "\n".join(reward.goal_prompts if reward else ())
    st.session_state[f"{K}baseline"] = "\n".join(reward.baseline_prompts if reward else ())
    st.session_state[f"{K}alpha"] = reward.alpha if reward else 0.0
    for name, text in hyperparameter_texts(config).items():
        st.session_state[f"{K}hp-{name}"] = text
    st.session_state[f"{K}ckpt"] = int(config.checkpoint_every)
    st.session_state[f"{K}eval"] = int(config.eval_every)
    st.session_state[f"{K}log-every"] = 0  # 0 = min(1000, total / 20)


def _selected_env() -> str:
    env = st.session_state.get(f"{K}env", ENV_CHOICES[0])
    if env == OTHER_ENV:
        return st.session_state.get(f"{K}env-other", "").strip()
    return env


def _apply_paper_defaults() -> None:
    env_id = _selected_env()
    algo = st.session_state.get(f"{K}algo", "dqn")
    _form_defaults(paper_defaults(env_id, algo))
    st.session_state[f"{K}notice"] = (
        f"Filled in the paper's settings for {env_id} / {algo.upper()}."
    )


def _log_every() -> int:
    """The form's metrics interval (0 in the form = min(1000, total / 20))."""
    chosen = int(st.session_state.get(f"{K}log-every") or 0)
    return chosen or default_log_every(int(st.session_state[f"{K}steps"]))


def _form_interval_warnings() -> list:
    ss = st.session_state
    try:
        learning_starts = parse_hyperparameters(
            {"learning_starts": ss.get(f"{K}hp-learning_starts", "")}
        )["learning_starts"]
    except ConfigError:
        learning_starts = None  # reported when the run starts
    if ss.get(f"{K}algo") == "ppo":
        learning_starts = None  # on-policy: no warm-up
    return interval_warnings(
        int(ss[f"{K}steps"]),
        learning_starts=learning_starts,
        checkpoint_every=int(ss.get(f"{K}ckpt") or 1),
        eval_every=int(ss.get(f"{K}eval") or 0),
        log_every=_log_every(),
    )


_WARNING_KEYS = {
    "learning_starts": f"{K}hp-learning_starts",
    "checkpoint_every": f"{K}ckpt",
    "eval_every": f"{K}eval",
    "log_every": f"{K}log-every",
}


def _scale_to_run() -> None:
    """Replace every setting that exceeds the run by its suggested value, and open the panel
    that shows them (most are in it)."""
    for warning in _form_interval_warnings():
        key = _WARNING_KEYS[warning.field]
        suggested = 0 if warning.field == "log_every" else warning.suggested  # 0 = auto
        st.session_state[key] = str(suggested) if key.startswith(f"{K}hp-") else suggested
    st.session_state[f"{K}notice"] = "Scaled learning start, checkpoint, evaluation and metrics "
    st.session_state[f"{K}notice"] += "intervals to the run's length."
    st.session_state[ADVANCED_OPEN] = True


def _interval_warnings_and_scale() -> None:
    """Warn about settings a run of this length never reaches, with a button that fixes them."""
    warnings = _form_interval_warnings()
    if not warnings:
        return
    # the messages are built from numbers only: nothing user-typed to escape
    st.warning(
        "This run is too short for some settings:\n"
        + "\n".join(f"- {w.message} (suggested: {w.suggested:,})" for w in warnings)
    )
    st.button("↘️ Scale these to the run", key=f"{K}scale", on_click=_scale_to_run)


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


if f"{K}steps" not in st.session_state:
    _form_defaults(paper_defaults("CartPole-v1", "dqn").replace(total_steps=100_000))
if st.session_state.pop(f"{K}close-form", False):
    # A run was just started: close the form so its live view below is in sight.
    st.session_state[FORM_OPEN] = False
st.session_state.setdefault(FORM_OPEN, not jobs.list_runs_view(db))  # open on an empty page
st.session_state.setdefault(ADVANCED_OPEN, False)

with st.expander("➕ New training run", key=FORM_OPEN, on_change="rerun"):
    c1, c2, c3 = st.columns([2, 1, 1])
    env_choice = c1.selectbox("Environment", [*ENV_CHOICES, OTHER_ENV], key=f"{K}env")
    if env_choice == OTHER_ENV:
        c1.text_input("Gymnasium env id", key=f"{K}env-other", placeholder="e.g. LunarLander-v3")
    c2.selectbox(
        "Algorithm",
        list(ALGOS),
        index=1,
        key=f"{K}algo",
        format_func=str.upper,
        help="DQN needs discrete actions, SAC continuous ones; PPO takes either.",
    )
    c3.button(
        "📄 Paper defaults",
        on_click=_apply_paper_defaults,
        key=f"{K}paper",
        help="Rocamonde et al. (2023): prompts, episode length and hyperparameters.",
    )
    if notice := st.session_state.pop(f"{K}notice", None):
        st.info(notice)

    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Total steps", min_value=1, step=1000, key=f"{K}steps")
    c2.number_input("Parallel envs", min_value=1, max_value=256, key=f"{K}n_envs")
    c3.number_input("Episode length (0 = env default)", min_value=0, key=f"{K}episode_length")
    c4.checkbox("Textured rendering", key=f"{K}textured", help="MountainCar: realistic scene.")

    source = st.radio(
        "Reward", ["Inline prompts", "Saved prompt set"], horizontal=True, key=f"{K}source"
    )
    prompt_set = None
    model: tuple[str, str] | None = None
    reward_architecture: str | None = None
    if source == "Saved prompt set":
        env_for_sets = _selected_env()
        show_all_sets = st.checkbox(
            "Show prompt sets written for other environments too",
            key=f"{K}all-sets",
            help="By default only sets tagged with this environment (and untagged ones) show.",
        )
        sets = list_prompt_sets(db, environment=None if show_all_sets else env_for_sets or None)
        names = [p.name for p in sets]
        if names:
            prompt_set = st.selectbox("Prompt set", names, key=f"{K}prompt-set")
            chosen = next(p for p in sets if p.name == prompt_set)
            reward_architecture = chosen.model.architecture
            st.caption(
                md_escape(
                    f"Reward model: {chosen.model.architecture} · "
                    f"{chosen.model.pretrained or 'random weights (meaningless rewards)'} · "
                    f"aspect {chosen.model.aspect} · resize {chosen.model.resize}"
                    + (f" · written for {chosen.environment}" if chosen.environment else "")
                )
            )
        else:
            st.warning(
                "No saved prompt sets for this environment yet: save one in the Prompt Lab, "
                "tick 'other environments', or use inline prompts."
            )
    else:
        model = model_picker(f"{K}model")
        reward_architecture = model[0] if model else None
        c1, c2 = st.columns(2)
        c1.text_area("Goal prompts (one per line)", key=f"{K}goal", height=90)
        c2.text_area("Baseline prompts (one per line)", key=f"{K}baseline", height=90)
        st.slider("α (goal-baseline regularisation)", 0.0, 1.0, step=0.05, key=f"{K}alpha")

    with st.expander(
        "Checkpoints, evaluation and learning hyperparameters", key=ADVANCED_OPEN, on_change="rerun"
    ):
        c1, c2, c3, c4, c5 = st.columns(5)
        checkpoint_every = c1.number_input("Checkpoint every", 1, key=f"{K}ckpt")
        eval_every = c2.number_input("Evaluate every (0 = never)", 0, key=f"{K}eval")
        eval_episodes = c3.number_input("Eval episodes", 1, value=2, key=f"{K}eval-episodes")
        eval_steps = c4.number_input("Eval steps / episode", 1, value=200, key=f"{K}eval-steps")
        seed = c5.number_input("Seed", 0, value=0, key=f"{K}seed")
        st.number_input(
            "Log metrics every (0 = auto)",
            0,
            key=f"{K}log-every",
            help="Environment steps between rows of curves and steps/s; auto = "
            "min(1000, total steps / 20), so short runs get live curves too.",
        )
        st.caption("Empty fields keep stable-baselines3's default for the algorithm.")
        columns = st.columns(4)
        for i, name in enumerate(algo_hyperparameters(st.session_state[f"{K}algo"])):
            columns[i % 4].text_input(name, key=f"{K}hp-{name}", placeholder="default")

    _interval_warnings_and_scale()
    if reward_architecture:
        env_id, algo = _selected_env(), st.session_state[f"{K}algo"]
        measured = finished_run_speed(
            db, env_id=env_id, algo=algo, architecture=reward_architecture
        )
        st.caption(
            md_escape(  # the env id may be typed by the user
                "Estimated speed: "
                + speed_estimate(
                    reward_architecture,
                    int(st.session_state[f"{K}steps"]),
                    on_gpu=_has_gpu(),
                    measured=measured,
                    runs_of=f"{env_id} / {algo.upper()}",
                )
            )
        )

    run_name = st.text_input("Run name (optional)", key=f"{K}name")
    if st.button("🚀 Start training", type="primary", key=f"{K}start"):
        try:
            env_id = _selected_env()
            if not env_id:
                raise ConfigError("enter a Gymnasium environment id")
            # Registered ids only (no module:Env imports), narrowed by VLMRM_ENV_ALLOWLIST.
            env_id = check_env_id_allowed(env_id)
            if source == "Saved prompt set" and prompt_set is None:
                raise ConfigError("choose a prompt set")
            if source == "Inline prompts" and model is None:
                raise ConfigError("choose a model")
            ss = st.session_state
            config = TrainConfig(
                env_id=env_id,
                algo=ss[f"{K}algo"],
                total_steps=int(ss[f"{K}steps"]),
                n_envs=int(ss[f"{K}n_envs"]),
                episode_length=int(ss[f"{K}episode_length"]) or None,
                textured=bool(ss[f"{K}textured"]),
                seed=int(seed),
                checkpoint_every=int(checkpoint_every),
                eval_every=int(eval_every),
                log_every=_log_every(),
                eval_episodes=int(eval_episodes),
                eval_steps=int(eval_steps),
                **parse_hyperparameters(
                    {n: ss.get(f"{K}hp-{n}", "") for n in algo_hyperparameters(ss[f"{K}algo"])}
                ),
            )
            if prompt_set is not None:
                config = config.replace(prompt_set=prompt_set)
            else:
                assert model is not None
                pretrained = check_app_pretrained(model[1], get_settings().models_dir)
                config = config.replace(
                    # The run's default precision (auto) stays: only the weights are picked.
                    model=config.model.replace(architecture=model[0], pretrained=pretrained),
                    reward=RewardSpec(
                        goal_prompts=tuple(prompt_lines(ss[f"{K}goal"])),
                        baseline_prompts=tuple(prompt_lines(ss[f"{K}baseline"])),
                        alpha=float(ss[f"{K}alpha"]),
                    ),
                )
            run_id = jobs.start_run(
                config,
                engine=db,
                name=run_name.strip() or None,
                created_by=current_identity().email,  # per-user quota with sign-in
            )
        except VlmrmError as exc:
            st.error(md_escape(exc))
        else:
            st.session_state[f"{K}selected"] = run_id
            status = next((r.status for r in jobs.list_runs_view(db) if r.id == run_id), None)
            # the worker may have picked it up already: say what the table below says
            st.session_state[f"{K}started"] = (
                f"Run {run_id} started ({status or 'queued'}): follow it below."
            )
            st.session_state[f"{K}close-form"] = True
            st.rerun()  # draw the form closed, with the new run's live view in sight

if started := st.session_state.pop(f"{K}started", None):
    st.success(started)  # outside the form, which is closed now


# ----------------------------------------------------------------------------- runs table


@st.fragment(run_every=LIVE_REFRESH_S)
def runs_table() -> None:
    """All runs with status, progress and liveness; refreshes itself."""
    runs = jobs.list_runs_view(db)
    if not runs:
        st.info("No training runs yet. Start one above.")
        return
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "status": STATUS_BADGES.get(r.status, r.status)
            + (" (cancelling)" if r.cancel_requested and r.status == "running" else ""),
            "progress": r.progress,
            "steps": f"{r.steps_done:,} / {r.total_steps:,}",
            "steps/s": None if r.steps_per_s is None else round(r.steps_per_s, 1),
            "ETA": format_duration(r.eta_s),
            # Liveness matters only while a worker should be alive.
            "last heartbeat": f"{format_duration(r.heartbeat_age_s)} ago"
            if r.status == "running" and r.heartbeat_age_s is not None
            else "–",
            "env": r.env_id,
            "algo": r.algo.upper(),
        }
        for r in runs
    ]
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
            # sweep trials have long names ("CartPole-v1 DQN · set α=0.5 seed 1"): in full
            "name": st.column_config.TextColumn("name", width=fitting_width(r.name for r in runs)),
        },
    )


st.subheader("Runs")
runs_table()
sweeps_section(db)  # trials of sweeps (`vlmrm train sweep`), grouped by reward

runs = jobs.list_runs_view(db)
if not runs:
    st.stop()

ids = [r.id for r in runs]
if st.session_state.get(f"{K}selected") not in ids:
    st.session_state[f"{K}selected"] = ids[0]
labels = {r.id: f"#{r.id} · {r.name}" for r in runs}
selected = st.selectbox("Run", ids, format_func=lambda i: labels.get(i, str(i)), key=f"{K}selected")
try:
    run = get_run(db, selected)
except NotFoundError:
    st.stop()

# ----------------------------------------------------------------------------- one run


def _curves(run_id: int) -> None:
    metrics = run_metrics(db, run_id)
    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key=f"{K}smoothing")
    st.plotly_chart(training_curves_figure(metrics, smoothing=smoothing), key=f"{K}curves-{run_id}")
    if any(str(c).startswith("train/") for c in metrics.columns):
        with st.expander("Losses"):
            st.plotly_chart(losses_figure(metrics, smoothing=smoothing), key=f"{K}losses-{run_id}")


ACTIVE = ("queued", "running")


def _run_panel(run_id: int) -> None:
    """Header, buttons, curves and tabs of one run. A fragment that refreshes itself while the
    run is queued or running, so a cancel, a new checkpoint or the end of the run shows without
    a reload; when the run ends, the whole page reruns once (table, polling stops)."""
    try:
        run = get_run(db, run_id)
    except NotFoundError:
        st.info("This run no longer exists.")
        return
    seen = st.session_state.get(f"{K}panel-status")
    st.session_state[f"{K}panel-status"] = (run_id, run.status)
    if seen is not None and seen[0] == run_id and seen[1] in ACTIVE and run.status not in ACTIVE:
        st.rerun()  # the run just ended: refresh the whole page (table, polling)
    c1, c2, c3 = st.columns([3, 1, 1])
    badge = STATUS_BADGES.get(run.status, run.status)
    c1.markdown(f"**{badge}** · {run.env_id} · {run.algo.upper()}")
    can_cancel = run.status in ("queued", "running") and not run.cancel_requested
    if c2.button("⏹️ Cancel", key=f"{K}cancel", disabled=not can_cancel):
        try:
            jobs.cancel_run(run.id, engine=db, actor=current_identity().email)
        except jobs.RunStateError as exc:  # it ended meanwhile
            st.error(str(exc))
        else:
            st.rerun()
    if c3.button("▶️ Resume", key=f"{K}resume", disabled=run.status not in jobs.RESUMABLE):
        try:
            jobs.resume_run(run.id, engine=db, actor=current_identity().email)
        except jobs.RunStateError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    if run.cancel_requested and run.status == "running":
        st.info("Cancellation requested: the worker stops after saving a checkpoint.")
    if run.error:
        with st.expander("Error", expanded=run.status in ("failed", "crashed")):
            st.code(run.error, language=None)

    st.subheader("Curves")
    _curves(run.id)

    # Keyed and tracked: the panel refreshes itself every few seconds, and the tab the user
    # opened must stay open through those reruns.
    tab_eval, tab_ckpt, tab_success, tab_config, tab_log = st.tabs(
        ["Latest evaluation", "Checkpoints", "Success rate", "Config", "Log"],
        key="train-run-tab",
        on_change="rerun",
    )
    with tab_success:  # labelled success per evaluation vs CLIP / ground-truth return
        success_section(db, run.id)
    with tab_eval:
        videos = jobs.eval_videos(run)
        if videos:
            step, video = videos[-1]
            st.caption(f"Deterministic rollouts of the policy at step {step:,}.")
            video_column, _ = st.columns([3, 2])
            video_column.video(str(video))
        frames: list[Any] = []
        if run.eval_dataset_id is not None:
            dataset = next((d for d in list_datasets(db) if d.id == run.eval_dataset_id), None)
            if dataset is not None:
                frames = dataset_frames(db, dataset.name, limit=8)
                st.caption(
                    f"Frames stored as dataset **{dataset.name}** ({dataset.n_frames} frames): "
                    "label them on the Label page (tick *Show training evaluations*) to measure "
                    "the reward's EPIC distance."
                )
        if frames:
            columns = st.columns(4)
            for i, frame in enumerate(frames):
                reward = (frame.extra or {}).get("clip_reward")
                clip = f" · CLIP {reward:.3f}" if reward is not None else ""
                caption = f"t={frame.step}{clip}"
                columns[i % 4].image(load_pixels(frame.hash), caption=caption)
        if not videos and not frames:
            st.info("No evaluation yet.")
    with tab_ckpt:
        checkpoints = jobs.run_checkpoints(run)
        if checkpoints:
            st.dataframe(
                [
                    {
                        "step": c.steps,
                        "model": c.model_path.name,
                        "size (MB)": round(c.model_path.stat().st_size / 1e6, 2),
                        "replay buffer": c.replay_buffer_path.name if c.replay_buffer_path else "",
                    }
                    for c in reversed(checkpoints)
                ],
                hide_index=True,
            )
            st.caption(md_escape(f"In {jobs.checkpoint_dir(run)}"))
        else:
            st.info("No checkpoint yet.")
    with tab_config:
        st.json({k: v for k, v in run.config.items() if not k.startswith("_")})
    with tab_log:
        st.code(jobs.log_tail(jobs.log_path(run), lines=60) or "(empty)", language=None)


_live = LIVE_REFRESH_S if run.status in ACTIVE else None
st.fragment(run_every=_live)(_run_panel)(run.id)
