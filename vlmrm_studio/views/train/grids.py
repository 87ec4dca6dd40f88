"""The Train page's sweeps: a form that launches a sweep, and a sweep view with the trials,
curves per arm (mean ± spread over seeds), and the ranking of rewards by final ground-truth
return next to their EPIC distance to human labels.

Computation lives in :mod:`vlmrm_core.training.grid_stats` and :mod:`vlmrm_core.training.grids`;
this module only draws.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from vlmrm_core.errors import VlmrmError
from vlmrm_core.training.config import ALGOS
from vlmrm_core.training.grid_stats import (
    CLIP_RETURN,
    GT_RETURN,
    MIN_ARMS_FOR_CORRELATION,
    ArmReward,
    TrialInfo,
    arm_rewards,
    epic_return_correlation,
    grouped_curves,
    matching_datasets,
    ranking,
    ranking_with_epic,
    trial_infos,
)
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.train.forms import ENV_CHOICES, default_log_every
from vlmrm_studio.widgets.common import get_model
from vlmrm_studio.widgets.embeddings import frame_embeddings, memo
from vlmrm_studio.widgets.tables import fitting_width
from vlmrm_studio.widgets.text import md_escape

K = "train-sweep-"
"""Prefix of this module's widget keys."""


def sweeps_section(db: Any) -> None:
    """The "New sweep" form, then a "Sweeps" expander (pick a sweep: trials, curves, ranking
    with EPIC), the latter only once a sweep exists."""
    from vlmrm_core.store.sweeps import list_sweeps

    launch_form(db)
    sweeps = list_sweeps(db)
    if sweeps:
        sweep_view(db, sweeps)


# ----------------------------------------------------------------------------- launch


def launch_form(db: Any) -> None:
    """A form that starts a sweep (prompt sets × α × seeds) with the same library call as
    ``vlmrm train sweep`` (:func:`vlmrm_core.training.grids.launch_sweep`)."""
    from vlmrm_core.scale.cluster import configured_address
    from vlmrm_core.store import list_prompt_sets

    with st.expander("➕ New sweep"):
        c1, c2, c3 = st.columns([2, 1, 1])
        env_id = c1.selectbox("Environment", ENV_CHOICES, key=f"{K}env")
        algo = c2.selectbox(
            "Algorithm", list(ALGOS), index=1, key=f"{K}algo", format_func=str.upper
        )
        steps = c3.number_input("Steps per trial", min_value=1, value=100_000, key=f"{K}steps")
        show_all = st.checkbox(
            "Show prompt sets written for other environments too", key=f"{K}all-sets"
        )
        sets = list_prompt_sets(db, environment=None if show_all else env_id)
        chosen = st.multiselect(
            "Prompt sets",
            [p.name for p in sets],
            key=f"{K}prompt-sets",
            help="Sets tagged for this environment and untagged sets; each trains with its "
            "own model and reward.",
        )
        c1, c2, c3, c4 = st.columns(4)
        alphas_text = c1.text_input(
            "α values",
            key=f"{K}alphas",
            placeholder="each set's own α",
            help="Comma-separated values in [0, 1]; empty keeps each prompt set's α.",
        )
        seeds = c2.number_input("Seeds per point", min_value=1, value=1, key=f"{K}seeds")
        address = configured_address()
        engines = ["local", "ray"] if address else ["local"]
        engine_kind = c3.selectbox(
            "Engine",
            engines,
            key=f"{K}engine",
            help="local: the run queue (VLMRM_MAX_RUNS at once); ray: Tune trials on "
            "VLMRM_RAY_ADDRESS (offered when it is set).",
        )
        max_concurrent = c4.number_input(
            "Max concurrent (0 = no limit)",
            min_value=0,
            value=0,
            key=f"{K}max-concurrent",
            disabled=engine_kind != "ray",
            help="Ray trials at once; the local engine runs VLMRM_MAX_RUNS at once.",
        )
        name = st.text_input("Sweep name (optional)", key=f"{K}name")
        st.caption(
            "Other settings are the paper's for this environment and algorithm (as "
            "*📄 Paper defaults* in the run form), with checkpoints, evaluations and metric rows "
            "scaled to the trial's length."
        )
        if not st.button("🚀 Start sweep", key=f"{K}start"):
            return
        try:
            sweep_id, n_trials = _launch(
                db,
                env_id=env_id,
                algo=algo,
                steps=int(steps),
                prompt_sets=chosen,
                alphas_text=alphas_text,
                seeds=int(seeds),
                engine_kind=engine_kind,
                address=address if engine_kind == "ray" else None,
                max_concurrent=int(max_concurrent) or None,
                name=name.strip() or None,
            )
        except VlmrmError as exc:
            st.error(md_escape(exc))
        else:
            st.session_state[f"{K}selected"] = sweep_id
            st.success(f"Sweep {sweep_id} started: {n_trials} trials ({engine_kind} engine).")


def _launch(
    db: Any,
    *,
    env_id: str,
    algo: str,
    steps: int,
    prompt_sets: list[str],
    alphas_text: str,
    seeds: int,
    engine_kind: str,
    address: str | None,
    max_concurrent: int | None,
    name: str | None,
) -> tuple[int, int]:
    """Start the sweep the form describes; returns its id and number of trials."""
    from vlmrm_core.errors import InvalidInputError
    from vlmrm_core.security import check_env_id_allowed
    from vlmrm_core.services.evaluation import parse_alphas
    from vlmrm_core.store.sweeps import get_sweep
    from vlmrm_core.training.config import paper_defaults
    from vlmrm_core.training.grids import launch_sweep

    if not prompt_sets:
        raise InvalidInputError("choose at least one prompt set to sweep over")
    alphas = parse_alphas(alphas_text) if alphas_text.strip() else []
    base = paper_defaults(check_env_id_allowed(env_id), algo)
    base = base.replace(
        total_steps=steps,
        checkpoint_every=min(base.checkpoint_every, steps),
        eval_every=min(base.eval_every, steps),
        log_every=default_log_every(steps),
    )
    sweep_id = launch_sweep(
        base,
        engine_kind=engine_kind,
        prompt_sets=prompt_sets,
        alphas=alphas,
        seeds=seeds,
        name=name,
        address=address,
        max_concurrent=max_concurrent,
        created_by=current_identity().email,  # per-user run quota with sign-in
        engine=db,
    )
    return sweep_id, len(get_sweep(db, sweep_id).spec["points"])


# ----------------------------------------------------------------------------- view


def sweep_view(db: Any, sweeps: list[Any]) -> None:
    """A "Sweeps" expander: pick a sweep, see its trials, curves and ranking with EPIC."""
    from vlmrm_core.store import get_run, run_metrics
    from vlmrm_core.store.sweeps import sweep_run_ids

    with st.expander(f"Sweeps ({len(sweeps)})"):
        labels = {s.id: f"#{s.id} · {s.name} · {s.status} · {s.engine}" for s in sweeps}
        if st.session_state.get(f"{K}selected") not in labels:
            st.session_state[f"{K}selected"] = next(iter(labels))
        chosen = st.selectbox(
            "Sweep", list(labels), format_func=lambda i: labels[i], key=f"{K}selected"
        )
        sweep = next(s for s in sweeps if s.id == chosen)
        runs = [get_run(db, r) for r in sweep_run_ids(db, sweep.id)]
        if sweep.error:
            st.error(md_escape(sweep.error))
        if not runs:
            st.info("No trial has started yet.")
            return
        trials = trial_infos(runs)
        st.dataframe(
            [
                {
                    "run": r.id,
                    "trial": r.name,
                    "reward": t.group,
                    "α": t.alpha,
                    "seed": t.seed,
                    "status": r.status,
                    "steps": f"{r.steps_done:,} / {r.total_steps:,}",
                }
                for r, t in zip(runs, trials, strict=True)
            ],
            hide_index=True,
            # Trial names and prompt-set names are long: columns wide enough to show them whole.
            column_config={
                "trial": st.column_config.TextColumn(
                    "trial", width=fitting_width(r.name for r in runs)
                ),
                "reward": st.column_config.TextColumn(
                    "reward", width=fitting_width(t.group for t in trials)
                ),
            },
        )
        metrics = {r.id: run_metrics(db, r.id) for r in runs}
        for column, title in ((GT_RETURN, "Ground-truth return"), (CLIP_RETURN, "CLIP return")):
            curves = grouped_curves(trials, metrics, column)
            if not curves.empty:
                st.plotly_chart(_band_figure(curves, title), key=f"{K}{sweep.id}-{column}")
        table = ranking(trials, metrics)
        if not table.empty:
            _ranking_with_epic(db, table, trials, runs)


def _ranking_with_epic(
    db: Any, table: pd.DataFrame, trials: list[TrialInfo], runs: list[Any]
) -> None:
    """The ranking by final ground-truth return, each reward's EPIC distance to the labels of a
    chosen dataset, and their rank correlation (does a lower EPIC give a better agent?)."""
    from vlmrm_core.store import list_datasets

    st.caption("Rewards ranked by final ground-truth return (mean over seeds)")
    labelled = [d.name for d in list_datasets(db) if d.n_labelled > 0]
    if not labelled:
        st.dataframe(table, hide_index=True, column_config=_name_columns(table))
        st.caption(
            "Label frames of this environment (Label page) to see each reward's EPIC "
            "distance to the labels here."
        )
        return
    dataset = st.selectbox(
        "EPIC against the labels of",
        matching_datasets(runs[0].env_id, labelled),
        key=f"{K}epic-dataset",
        help="Datasets named after this sweep's environment come first.",
    )
    epics, problems = _arm_epics(db, dataset, arm_rewards(trials, runs))
    ranked = ranking_with_epic(table, epics)
    st.dataframe(ranked, hide_index=True, column_config=_name_columns(ranked))
    for problem in problems:
        st.warning(md_escape(problem))
    rho = epic_return_correlation(ranked)
    if rho is None:
        st.caption(
            f"The rank correlation between EPIC and final return needs at least "
            f"{MIN_ARMS_FOR_CORRELATION} rewards with both."
        )
        return
    st.metric("Spearman ρ (EPIC vs final return)", f"{rho:+.2f}")
    st.caption(
        "Negative: the rewards closer to the labels (lower EPIC) trained better agents; "
        "near 0: EPIC did not predict the agents' returns here."
    )


def _name_columns(table: pd.DataFrame) -> dict[str, Any]:
    """Column configs that show a ranking's arm and reward names whole."""
    return {
        column: st.column_config.TextColumn(column, width=fitting_width(table[column]))
        for column in ("arm", "group")
        if column in table.columns
    }


def _arm_epics(
    db: Any, dataset: str, rewards: dict[str, ArmReward]
) -> tuple[dict[str, float | None], list[str]]:
    """EPIC distance of each arm's reward to the dataset's labels (remembered per session)."""
    from vlmrm_core.metrics import check_labels
    from vlmrm_core.services.evaluation import evaluate_reward, labelled_frames

    labelled = labelled_frames(db, dataset)
    try:
        check_labels(labelled.labels)
    except ValueError as exc:
        return {}, [f"No EPIC on {dataset}: {exc}"]
    epics: dict[str, float | None] = {}
    problems: list[str] = []
    for arm, reward in rewards.items():
        key = (dataset, labelled.hashes, tuple(labelled.labels), reward.model, reward.reward)

        def compute(reward: ArmReward = reward) -> float | None | str:
            model = reward.model
            try:
                clip = get_model(model.architecture, model.pretrained or "", str(model.precision))
                x = frame_embeddings(db, clip, labelled.hashes, str(model.aspect))
                result = evaluate_reward(
                    clip, x, labelled.labels, reward.reward, prompt_set=reward.arm, n_boot=0
                )
            except (VlmrmError, ValueError) as exc:
                return f"{reward.arm}: {exc}"
            return result.metrics.epic_distance

        value = memo("_sweep_epic", key, compute)
        if isinstance(value, str):
            problems.append(value)
            epics[arm] = None
        else:
            epics[arm] = value
    return epics, problems


def _band_figure(curves: pd.DataFrame, title: str) -> go.Figure:
    figure = go.Figure()
    for arm, part in curves.groupby("arm", sort=False):
        upper, lower = part["mean"] + part["std"], part["mean"] - part["std"]
        figure.add_trace(
            go.Scatter(
                x=list(part["step"]) + list(part["step"])[::-1],
                y=list(upper) + list(lower)[::-1],
                fill="toself",
                opacity=0.2,
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                name=str(arm),
            )
        )
        figure.add_trace(go.Scatter(x=part["step"], y=part["mean"], mode="lines", name=str(arm)))
    figure.update_layout(title=title, xaxis_title="environment step", yaxis_title="return")
    return figure
