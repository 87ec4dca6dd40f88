"""Frames: create datasets (uploads, rollouts, sweeps, humanoid poses), browse and manage them.

A thin view: imports go through :mod:`vlmrm_core.services.dataset_import`, everything else through the
store. User strings (file, frame and dataset names) are escaped before any Markdown rendering.
"""

from __future__ import annotations

import math

import streamlit as st

from vlmrm_core.security import NotAllowedError, resolve_in_folder
from vlmrm_core.services.dataset_import import (
    COMMON_ENV_IDS,
    MAX_SWEEP_POINTS,
    SWEEP_LABELS,
    import_humanoid_poses,
    import_rollout,
    import_sweep,
    import_uploads,
)
from vlmrm_core.settings import get_settings
from vlmrm_core.sources import POSES
from vlmrm_core.store import DatasetSummary, dataset_frames, list_datasets, update_dataset
from vlmrm_core.store.tasks import delete_dataset_as, record_dataset_creator
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.frames.lerobot_import import (
    goal_prompt_buttons,
    lerobot_tab,
    reversed_copies_panel,
)
from vlmrm_studio.views.frames.ray_panel import embed_with_ray_panel
from vlmrm_studio.widgets.common import TRAINING_EVAL_KIND, engine
from vlmrm_studio.widgets.counts import frame_count_text
from vlmrm_studio.widgets.frame_display import frame_caption
from vlmrm_studio.widgets.frames import (
    CURRENT_DATASET,
    frame_image,
    notify,
    pick_default_dataset,
    run_import,
    show_import_report,
    show_notice,
    use_dataset,
)
from vlmrm_studio.widgets.text import md_escape
from vlmrm_studio.widgets.uploads import policy_files, policy_upload

# (Comments, not docstrings: Streamlit's "magic" would render bare strings on the page.)
PER_PAGE = 24  # thumbnails per page of the browser
GRID_COLUMNS = 6
NOTICE = "frames-notice"
SELECTED = "frames-dataset"
# Set after an import: the new dataset is selected on the next run (the picker exists by then).
SELECT_NEXT = "frames-select-next"
# Bumped after a successful upload so the uploader starts empty (no accidental re-import).
UPLOAD_NONCE = "frames-upload-nonce"
ENV_ID = "frames-rollout-env"
ENV_SUGGESTION = "frames-rollout-suggestion"
RANDOM_POLICY = "Random actions"
SB3_POLICY = "Saved stable-baselines3 model (.zip)"

db = engine()


def _save_settings(name: str) -> None:
    """Callback: store the labelling settings of a dataset (runs before the page re-renders)."""
    k = int(st.session_state[f"frames-k-{name}"])
    graded = bool(st.session_state[f"frames-graded-{name}"])
    try:
        update_dataset(db, name, labels_required=k, graded=graded)
    except (KeyError, ValueError) as exc:
        notify(NOTICE, "error", f"Could not save the settings: {exc}")
        return
    kind = "graded 0–1 labels" if graded else "success / failure labels"
    notify(NOTICE, "success", f"Saved: {name} needs {k} label(s) per frame, {kind}.")


def _delete(name: str) -> None:
    """Callback: delete a dataset; frames other datasets use stay (the store decides)."""
    try:
        removed = delete_dataset_as(db, current_identity().email, name)
    except (KeyError, PermissionError) as exc:
        notify(NOTICE, "error", f"Could not delete: {exc}")
        return
    st.session_state.pop(SELECTED, None)
    if st.session_state.get(CURRENT_DATASET) == name:
        del st.session_state[CURRENT_DATASET]
    notify(
        NOTICE,
        "success",
        f"Deleted dataset {name!r} and its labels; {removed} frame(s) no other dataset uses "
        "were removed, frames shared with other datasets were kept.",
    )


def _use_suggestion() -> None:
    """Callback: copy the clicked suggestion into the env id input, and clear the pills."""
    picked = st.session_state.get(ENV_SUGGESTION)
    if picked:
        st.session_state[ENV_ID] = picked
    st.session_state[ENV_SUGGESTION] = None


def _open_dataset(name: str) -> None:
    """Callback: browse ``name`` (an evaluation dataset picked in its run's group)."""
    st.session_state[SELECTED] = name


def _eval_run(name: str) -> str:
    """``run-2`` of ``run-2-eval-150`` (the whole name when it doesn't follow that pattern)."""
    head, sep, _ = name.rpartition("-eval-")
    return head if sep else name


def _eval_step(name: str) -> int:
    """``150`` of ``run-2-eval-150`` (0 when the name doesn't end in a step)."""
    tail = name.rpartition("-eval-")[2]
    return int(tail) if tail.isdigit() else 0


def training_eval_groups(evals: list[DatasetSummary], current: str | None) -> None:
    """Training-evaluation datasets (``run-N-eval-STEP``) grouped under their run: one expander
    per run, one button per evaluation that opens it in the browser below."""
    by_run: dict[str, list[DatasetSummary]] = {}
    for d in sorted(evals, key=lambda d: (_eval_step(d.name), d.id)):
        by_run.setdefault(_eval_run(d.name), []).append(d)
    st.caption(
        f"Training evaluations: {len(evals)} dataset{'s' * (len(evals) != 1)} from "
        f"{len(by_run)} run{'s' * (len(by_run) != 1)}, grouped by run (kept out of the "
        "dataset list above)."
    )
    for run, members in sorted(by_run.items(), key=lambda item: item[0]):
        steps = ", ".join(str(_eval_step(d.name)) for d in members)
        label = f"{run}: {len(members)} evaluation{'s' * (len(members) != 1)} (steps {steps})"
        with st.expander(md_escape(label), expanded=current in {d.name for d in members}):
            for d in members:
                left, right = st.columns([3, 1], vertical_alignment="center")
                left.markdown(
                    md_escape(
                        f"{d.name} · step {_eval_step(d.name)} · "
                        f"{frame_count_text(d.n_frames, d.n_images)} · {d.n_labelled} labelled"
                    )
                )
                right.button(
                    "Browse",
                    key=f"frames-open-{d.name}",
                    on_click=_open_dataset,
                    args=(d.name,),
                    disabled=d.name == current,
                )


def browse_tab() -> None:
    """Pick a dataset: summary, thumbnail grid with paging, labelling settings, deletion."""
    every = list_datasets(db)
    evals = [d for d in every if str(d.kind) == TRAINING_EVAL_KIND]
    if not every:
        st.info(
            "No datasets yet: create one in the Upload, Rollout, Sweep, Humanoid or LeRobot tab."
        )
        return
    pending = st.session_state.pop(SELECT_NEXT, None)
    if pending in {d.name for d in every}:
        st.session_state[SELECTED] = pending
        record_dataset_creator(db, pending, current_identity().email)
    # The picker lists the user's datasets; an evaluation dataset joins it only while it is the
    # one being browsed (opened from its run's group below the picker).
    opened = st.session_state.get(SELECTED)
    datasets = {d.name: d for d in every if str(d.kind) != TRAINING_EVAL_KIND or d.name == opened}
    if not datasets:  # only evaluation datasets: start on the first
        datasets = {evals[0].name: evals[0]}
    pick_default_dataset(SELECTED, list(datasets))
    name = st.selectbox(
        "Dataset",
        list(datasets),
        key=SELECTED,
        format_func=lambda n: (
            f"{n} ({frame_count_text(datasets[n].n_frames, datasets[n].n_images)})"
        ),
    )
    if evals:
        training_eval_groups(evals, name)
    use_dataset(SELECTED, name)
    ds = datasets[name]
    cols = st.columns(5)
    cols[0].metric("Kind", ds.kind)
    cols[1].metric("Frames", ds.n_frames)
    if ds.n_images != ds.n_frames:
        cols[1].caption(frame_count_text(ds.n_frames, ds.n_images))
    cols[2].metric("Labelled frames", ds.n_labelled)
    cols[3].metric("Labels required (k)", ds.labels_required)
    cols[4].metric("Label type", "graded" if ds.graded else "binary")
    if ds.description:
        st.caption(md_escape(ds.description))
    goal_prompt_buttons(ds.meta, name, "browse")  # a LeRobot import's tasks

    with st.expander("Labelling settings"):
        narrow, _ = st.columns([1, 2])
        narrow.number_input(
            "Labels required per frame (k)",
            min_value=1,
            max_value=100,
            value=ds.labels_required,
            key=f"frames-k-{name}",
            help="A frame leaves everyone's labelling queue once k labelers have labelled it.",
        )
        st.toggle(
            "Graded labels (a 0–1 slider instead of success / failure)",
            value=ds.graded,
            key=f"frames-graded-{name}",
        )
        st.button(
            "Save settings", key="frames-save-settings", on_click=_save_settings, args=(name,)
        )

    # With sign-in only admins delete datasets: hidden for others (the service layer checks it).
    identity = current_identity()
    if not identity.signed_in or identity.role == "admin":
        with st.expander("Delete dataset"):
            st.caption(
                "Deletes the dataset and all its labels. "
                "Frames that other datasets also use are kept."
            )
            confirmed = st.checkbox(
                "I understand that this cannot be undone", key=f"frames-delete-confirm-{name}"
            )
            st.button(
                "Delete dataset",
                type="primary",
                key="frames-delete",
                disabled=not confirmed,
                on_click=_delete,
                args=(name,),
            )

    if ds.kind != "sweep":  # sweeps hold no episodes to play backwards
        reversed_copies_panel(db, ds, notice=NOTICE, select_key=SELECT_NEXT)
    embed_with_ray_panel(db, name)  # only when VLMRM_RAY_ADDRESS names a cluster

    if ds.n_frames == 0:
        st.info("This dataset has no frames.")
        return
    n_pages = max(1, math.ceil(ds.n_frames / PER_PAGE))
    pager, where = st.columns([1, 5], vertical_alignment="bottom")
    page = int(
        pager.number_input(
            "Page", min_value=1, max_value=n_pages, value=1, key=f"frames-page-{name}"
        )
    )
    first = (page - 1) * PER_PAGE
    infos = dataset_frames(db, name, offset=first, limit=PER_PAGE)
    where.caption(
        f"of {n_pages} · frames {first + 1}–{first + len(infos)} of "
        f"{frame_count_text(ds.n_frames, ds.n_images)}"
    )
    for row in range(0, len(infos), GRID_COLUMNS):
        for col, info in zip(
            st.columns(GRID_COLUMNS), infos[row : row + GRID_COLUMNS], strict=False
        ):
            caption = frame_caption(info)
            with col:  # an unreadable frame's one-line reason goes in its cell
                pixels = frame_image(info.hash, caption=caption)
            if pixels is not None:
                col.image(pixels, caption=md_escape(caption), width="stretch")


def upload_tab() -> None:
    """Images, ZIP archives and videos, streamed into a dataset."""
    nonce = st.session_state.get(UPLOAD_NONCE, 0)
    files = st.file_uploader(
        "Upload images, ZIP archives or videos",
        accept_multiple_files=True,
        key=f"frames-upload-files-{nonce}",
        help="PNG, JPEG, WebP, BMP, GIF, ZIP archives of images, MP4/WebM/MOV/MKV/AVI videos. "
        "The content decides the type, not the file name.",
    )
    name = st.text_input(
        "Dataset name",
        key="frames-upload-name",
        placeholder="e.g. cartpole-screenshots",
        help="An existing dataset's name adds the frames to it.",
    )
    left, right = st.columns(2)
    every_k = left.number_input(
        "Videos: keep every k-th frame",
        min_value=1,
        max_value=10_000,
        value=1,
        key="frames-every-k",
    )
    cap = right.number_input(
        "Videos: at most this many frames each",
        min_value=1,
        max_value=100_000,
        value=300,
        key="frames-video-cap",
    )
    if st.button("Import", type="primary", key="frames-upload-import"):
        uploads = [(f.name, f) for f in files or []]
        run_import(
            f"Importing {len(uploads)} file(s)",
            lambda progress: import_uploads(
                db,
                name,
                uploads,
                every_k=int(every_k),
                max_video_frames=int(cap),
                progress=progress,
            ),
            report_key="frames-report-upload",
            select_key=SELECT_NEXT,
            on_success=lambda: st.session_state.update({UPLOAD_NONCE: nonce + 1}),
        )
    _last_report("upload")


def rollout_tab() -> None:
    """Frames of a random or saved policy in any gymnasium environment that renders images."""
    # A text input (any registered id works) with the common ids one click away.
    st.session_state.setdefault(ENV_ID, COMMON_ENV_IDS[0])
    env_id = st.text_input(
        "Environment id",
        key=ENV_ID,
        help="Any registered gymnasium id whose environment renders rgb_array frames.",
    )
    st.pills(
        "Common environments",
        COMMON_ENV_IDS,
        key=ENV_SUGGESTION,
        on_change=_use_suggestion,
        label_visibility="collapsed",
    )
    cols = st.columns(3)
    episodes = cols[0].number_input("Episodes", 1, 1_000, 1, key="frames-rollout-episodes")
    steps = cols[1].number_input("Steps per episode", 0, 100_000, 50, key="frames-rollout-steps")
    seed = cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="frames-rollout-seed")
    policy_kind = st.radio(
        "Policy", [RANDOM_POLICY, SB3_POLICY], horizontal=True, key="frames-rollout-policy"
    )
    # Policies only from the models folder (a picker, never a typed path): loaded weights-only.
    models_dir = get_settings().models_dir
    policies = policy_files()
    policy_path = st.selectbox(
        "Saved model",
        policies,
        key="frames-rollout-policy-file",
        disabled=policy_kind == RANDOM_POLICY,
        format_func=lambda p: str(p.relative_to(models_dir.resolve())),
        help="stable-baselines3 zips (PPO, A2C, DQN, SAC, TD3, DDPG) in the models folder, "
        "loaded weights-only (nothing in the zip is unpickled).",
    )
    if policy_kind == SB3_POLICY:
        if not policies:
            st.info(md_escape(f"No saved models in {models_dir}: add one below."))
        policy_upload("frames-rollout-policy-upload")
    textured = st.checkbox(
        "Textured rendering (MountainCar and Humanoid only)", key="frames-rollout-textured"
    )
    name = st.text_input(
        "Dataset name", key="frames-rollout-name", placeholder="e.g. cartpole-random"
    )
    if st.button("Record rollout", type="primary", key="frames-rollout-run"):
        policy = "random"
        if policy_kind == SB3_POLICY:
            try:
                policy = str(resolve_in_folder(models_dir, policy_path or ""))
            except NotAllowedError as exc:
                st.error(md_escape(exc))
                return
        run_import(
            f"Rolling out {env_id}",
            lambda progress: import_rollout(
                db,
                name,
                env_id,
                episodes=int(episodes),
                steps=int(steps),
                policy=policy,
                seed=int(seed),
                textured=textured,
                progress=progress,
            ),
            report_key="frames-report-rollout",
            select_key=SELECT_NEXT,
        )
    _last_report("rollout")


def sweep_tab() -> None:
    """The paper's state sweeps: one state variable moved across its range."""
    sweep = st.selectbox(
        "Sweep", list(SWEEP_LABELS), format_func=SWEEP_LABELS.__getitem__, key="frames-sweep-kind"
    )
    points = st.number_input(
        "Points", 1, MAX_SWEEP_POINTS, 41, key="frames-sweep-points", help="Evenly spaced states."
    )
    textured = st.checkbox(
        "Textured MountainCar", key="frames-sweep-textured", disabled=sweep != "mountaincar"
    )
    name = st.text_input("Dataset name", key="frames-sweep-name", placeholder="e.g. cartpole-sweep")
    if st.button("Render sweep", type="primary", key="frames-sweep-run"):
        run_import(
            "Rendering the sweep",
            lambda progress: import_sweep(
                db,
                name,
                sweep,
                points=int(points),
                textured=textured and sweep == "mountaincar",
                progress=progress,
            ),
            report_key="frames-report-sweep",
            select_key=SELECT_NEXT,
        )
    _last_report("sweep")


def humanoid_tab() -> None:
    """The humanoid held in named poses, in the paper's scene and camera."""
    poses = st.multiselect("Poses", list(POSES), default=list(POSES), key="frames-humanoid-poses")
    textured = st.checkbox(
        "Textured scene (as in the paper)", value=True, key="frames-humanoid-textured"
    )
    name = st.text_input(
        "Dataset name", key="frames-humanoid-name", placeholder="e.g. humanoid-poses"
    )
    st.caption("For Humanoid rollouts use the Rollout tab with Humanoid-v5.")
    if st.button("Render poses", type="primary", key="frames-humanoid-run"):
        run_import(
            "Rendering humanoid poses",
            lambda progress: import_humanoid_poses(
                db, name, poses, textured=textured, progress=progress
            ),
            report_key="frames-report-humanoid",
            select_key=SELECT_NEXT,
        )
    _last_report("humanoid")


def _last_report(tab: str) -> None:
    report = st.session_state.get(f"frames-report-{tab}")
    if report is not None:
        st.divider()
        st.subheader("Last import")
        show_import_report(report)


st.title("🖼️ Frames")
show_notice(NOTICE)
# Keyed and tracked: without it, editing a field in any tab but the first reran the page and
# the browser showed Browse again.
browse, upload, rollout, sweep, humanoid, lerobot = st.tabs(
    ["Browse", "Upload", "Rollout", "Sweep", "Humanoid poses", "LeRobot"],
    key="frames-tab",
    on_change="rerun",
)
with browse:
    browse_tab()
with upload:
    upload_tab()
with rollout:
    rollout_tab()
with sweep:
    sweep_tab()
with humanoid:
    humanoid_tab()
with lerobot:
    lerobot_tab(db, select_key=SELECT_NEXT)
