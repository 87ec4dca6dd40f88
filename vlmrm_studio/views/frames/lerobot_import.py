"""The Frames page's LeRobot import, its tasks as goal prompts, and time-reversed copies.

* :func:`lerobot_tab`: import one camera of a LeRobot dataset (layout v2.1 or v3.0) from a
  folder on the server, episode range and all, through
  :func:`vlmrm_core.services.dataset_import.import_lerobot`.
* :func:`goal_prompt_buttons`: the dataset's LeRobot tasks, each a button that opens Prompt Lab
  with it as the goal prompt (in the Episode view).
* :func:`reversed_copies_panel`: ReWiND's failure data, time-reversed copies of a dataset's
  successful episodes, through :func:`vlmrm_core.services.episodes.make_reversed_copies`.

The folder is a path on the server's disk; with sign-in configured only admins may type one
(it would otherwise let any user probe the server's files).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import streamlit as st

from vlmrm_core.errors import is_user_error
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.services.episodes import make_reversed_copies
from vlmrm_core.sources.lerobot import (
    LeRobotDatasetInfo,
    parse_episode_range,
    read_lerobot_dataset,
)
from vlmrm_core.store import DatasetSummary, Engine
from vlmrm_studio.auth import current_identity
from vlmrm_studio.widgets.frames import (
    CURRENT_DATASET,
    notify,
    run_import,
    show_import_report,
)
from vlmrm_studio.widgets.text import md_escape

__all__ = [
    "PROMPT_LAB_PAGE",
    "dataset_tasks",
    "goal_prompt_buttons",
    "lerobot_tab",
    "open_in_prompt_lab",
    "reversed_copies_panel",
]

PROMPT_LAB_PAGE = Path(__file__).parents[1] / "prompt_lab" / "page.py"
REPORT = "frames-report-lerobot"
PATH = "frames-lerobot-path"
NAME = "frames-lerobot-name"


def _one_line(exc: BaseException) -> str:
    """An error as one line (a message that spans lines is joined)."""
    return " ".join(str(exc).split())


def _read(path: str) -> LeRobotDatasetInfo | None:
    """The dataset's metadata, or None after a one-line error."""
    try:
        return read_lerobot_dataset(path)
    except Exception as exc:
        if not is_user_error(exc):
            raise  # a bug: keep its traceback
        st.error(md_escape(_one_line(exc)))
        return None


def lerobot_tab(db: Engine, *, select_key: str) -> None:
    """Import a LeRobot dataset from a folder: camera, episode range, dataset name, progress.

    Args:
        db: the project database.
        select_key: session-state key that receives the new dataset's name (the Browse tab
            opens it next).
    """
    identity = current_identity()
    if identity.signed_in and identity.role != "admin":
        st.info("Importing from a folder on the server is for admins; ask one to import it.")
        return
    path = st.text_input(
        "LeRobot dataset folder",
        key=PATH,
        placeholder="/data/lerobot/my_robot_dataset",
        help="The dataset's top folder on the server (holding meta/, data/ and videos/), in "
        "the LeRobotDataset layout v2.1 or v3.0.",
    ).strip()
    if not path:
        st.caption(
            "Frames keep their episode and frame index, so Prompt Lab's Episode view can draw "
            "a reward along each episode; the dataset's tasks are offered as goal prompts."
        )
        _last_report(db)
        return
    info = _read(path)
    if info is None:
        return
    tasks = ", ".join(repr(t) for t in info.tasks[:3]) + (" …" if len(info.tasks) > 3 else "")
    st.caption(
        md_escape(
            f"LeRobot {info.codebase_version} · {len(info.episodes)} episodes · "
            f"{info.total_frames:,} frames at {info.fps:g} fps · {len(info.cameras)} camera(s)"
            + (f" · tasks: {tasks}" if tasks else "")
        )
    )
    if not info.cameras:
        st.error(
            md_escape(
                f"{info.root.name} stores no videos (no feature of dtype 'video'): there is "
                "no camera to import."
            )
        )
        return
    left, mid, right = st.columns(3)
    camera = left.selectbox(
        "Camera", list(info.cameras), key="frames-lerobot-camera", help="One camera per import."
    )
    episodes = mid.text_input(
        "Episodes",
        key="frames-lerobot-episodes",
        placeholder="all, or A:B (e.g. 0:10)",
        help="A:B is half-open like a Python slice: 0:10 imports episodes 0 … 9.",
    ).strip()
    st.session_state.setdefault(NAME, info.root.name)
    name = right.text_input(
        "Dataset name", key=NAME, help="An existing dataset's name adds the frames to it."
    )
    try:
        chosen = parse_episode_range(episodes or None, list(info.episodes))
    except Exception as exc:
        if not is_user_error(exc):
            raise
        st.error(md_escape(_one_line(exc)))
        return
    n_frames = sum(info.episodes[e].length for e in chosen)
    st.caption(f"{len(chosen)} episode(s), {n_frames:,} frames to import.")
    if st.button("Import LeRobot dataset", type="primary", key="frames-lerobot-import"):
        run_import(
            f"Importing {camera} from {info.root.name}",
            lambda progress: import_lerobot(
                db,
                path,
                name,
                camera=camera,
                episodes=episodes or None,
                progress=progress,
                actor=identity.email,  # the service refuses non-admins too
            ),
            report_key=REPORT,
            select_key=select_key,
        )
    _last_report(db)


def _last_report(db: Engine) -> None:
    """The last LeRobot import's figures and the dataset's tasks as goal prompts."""
    report = st.session_state.get(REPORT)
    if report is None:
        return
    st.divider()
    st.subheader("Last import")
    show_import_report(report)
    from vlmrm_core.store import get_dataset

    with contextlib.suppress(KeyError, LookupError):  # deleted meanwhile
        goal_prompt_buttons(get_dataset(db, report.dataset).meta, report.dataset, "import")


def dataset_tasks(meta: dict | None) -> list[str]:
    """The LeRobot tasks an import recorded in a dataset's ``meta`` (empty for other datasets)."""
    lerobot = (meta or {}).get("lerobot")
    tasks = lerobot.get("tasks") if isinstance(lerobot, dict) else None
    if not isinstance(tasks, list):
        return []
    return list(dict.fromkeys(str(t).strip() for t in tasks if str(t).strip()))


def open_in_prompt_lab(dataset: str, goal: str) -> None:
    """Point Prompt Lab at ``dataset`` with ``goal`` as its only prompt, in the Episode view, and
    go there (under the app's navigation; a page run on its own can't switch pages)."""
    state = st.session_state
    state[CURRENT_DATASET] = dataset
    state["lab-goal"] = goal
    state["lab-baseline"] = ""
    state["lab-alpha"] = 0.0  # without a baseline prompt only α = 0 is defined
    state["lab-kind"] = "regularized"
    state["lab-view"] = "Episode"
    with contextlib.suppress(st.errors.StreamlitAPIException):
        st.switch_page(PROMPT_LAB_PAGE)


def goal_prompt_buttons(meta: dict | None, dataset: str, where: str) -> None:
    """The dataset's LeRobot tasks as suggested goal prompts, each opening Prompt Lab.

    Args:
        meta: the dataset's ``meta``.
        dataset: its name.
        where: part of the buttons' keys (the same dataset can be shown in two tabs).
    """
    tasks = dataset_tasks(meta)
    if not tasks:
        return
    st.markdown("**Suggested goal prompts** (the dataset's LeRobot tasks)")
    for i, task in enumerate(tasks[:20]):
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.markdown(md_escape(task))
        if right.button("Open in Prompt Lab", key=f"frames-goal-{where}-{i}"):
            open_in_prompt_lab(dataset, task)
    if len(tasks) > 20:
        st.caption(f"… and {len(tasks) - 20} more tasks.")


def _make_reversed(db: Engine, dataset: str, notice: str, select_key: str) -> None:
    """Callback: store the reversed copies; the outcome is a notice, the copy is opened."""
    state = st.session_state
    target = str(state.get(f"frames-reverse-name-{dataset}") or "").strip()
    every = bool(state.get(f"frames-reverse-all-{dataset}"))
    try:
        added = make_reversed_copies(db, dataset, target, demonstrations=every)
    except Exception as exc:
        if not is_user_error(exc):
            raise
        notify(notice, "error", _one_line(exc))
        return
    which = "every episode" if every else "the successful episodes"
    notify(
        notice,
        "success",
        f"Made {target!r}: {added} frames, {which} of {dataset!r} played backwards "
        "(failure data for ReWiND-style training and Evaluate's VOC gap).",
    )
    state[select_key] = target


def reversed_copies_panel(db: Engine, ds: DatasetSummary, *, notice: str, select_key: str) -> None:
    """An expander that makes time-reversed copies of a dataset's episodes as a new dataset.

    Args:
        db: the project database.
        ds: the dataset browsed.
        notice: session-state key of the page's notice (the outcome is shown there).
        select_key: session-state key that receives the new dataset's name.
    """
    with st.expander("Make reversed copies (failure data)"):
        st.caption(
            "ReWiND: successful episodes played backwards look like failures (progress undone). "
            "The copies reuse the same frames (nothing is decoded or stored twice); each frame "
            "keeps its episode and gets its step in the reversed episode. Needs frames with an "
            "episode and a step (rollouts, videos, LeRobot imports)."
        )
        key_name = f"frames-reverse-name-{ds.name}"
        st.session_state.setdefault(key_name, f"{ds.name}-reversed")
        left, right = st.columns([2, 3], vertical_alignment="bottom")
        left.text_input("New dataset name", key=key_name)
        right.checkbox(
            "Copy every episode (the dataset holds demonstrations)",
            key=f"frames-reverse-all-{ds.name}",
            value=ds.kind == "lerobot",
            help="Off: only the episodes whose last labelled frame is a success.",
        )
        st.button(
            "Make reversed copies",
            key="frames-reverse",
            on_click=_make_reversed,
            args=(db, ds.name, notice, select_key),
        )
