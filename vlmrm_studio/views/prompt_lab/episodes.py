"""Prompt Lab's Episode view: the reward of one or several sources along one episode.

Pick an episode of the dataset (frames that keep an episode and a step: rollouts, videos,
LeRobot imports); the reward on screen, any saved prompt sets (adapted and windowed rewards
included) and saved VLM judges are drawn against the time step, with a frame scrubber synced to
the chart, the labelled frames marked, and each source's value-order correlation (VOC) on this
episode beside it.

Every source is scored over the episode in time order, so a windowed prompt set (window k) and
a judge shown several frames look back k frames as in training. Prompt sets are scored on the
dataset's cached embeddings (the landscape's path), restricted to the episode's rows, so an α
change re-scores a few hundred rows at most. Judges are slow: they run when asked, with a
progress bar, and their rewards are kept per (judge, dataset, episode) for the session. The
drawing is an inner fragment: moving the scrubber redraws the chart and the frame without
re-scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from vlmrm_core.clip.embedding import PromptError
from vlmrm_core.clip.models import ClipModel
from vlmrm_core.errors import VlmrmError
from vlmrm_core.metrics.classification import SUCCESS_THRESHOLD
from vlmrm_core.metrics.correlation import spearman
from vlmrm_core.reward.model import RewardScores, score_episode_embeddings
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services import landscape
from vlmrm_core.services.episodes import episode_rows, score_stored_episode
from vlmrm_core.services.prompt_sets import adapted_model_mismatch
from vlmrm_core.services.saved_judges import SavedJudge, list_saved_judges
from vlmrm_core.store import Engine, consensus_labels, list_prompt_sets
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.embeddings import memo, selected_frames
from vlmrm_studio.widgets.episode_plot import episode_figure
from vlmrm_studio.widgets.frames import frame_image
from vlmrm_studio.widgets.judges import get_judge, judge_reward
from vlmrm_studio.widgets.text import md_escape

__all__ = ["CHART_KEY", "EPISODE_VIEW", "LAB_VIEWS", "ON_SCREEN", "episode_section", "step_key"]

EPISODE_VIEW = "Episode"
LAB_VIEWS = ["Landscape", EPISODE_VIEW]
"""Prompt Lab's views of a reward: over the whole dataset, or along one episode."""

ON_SCREEN = "on screen"
"""Name of the curve of the reward in the editor (the saved sets go by their names)."""
CHART_KEY = "lab-episode-chart"
FRAME_PX = 320
"""Longest side of the frame shown beside the chart."""
CHART_LAYOUT = {"height": 340, "margin": {"l": 10, "r": 10, "t": 40, "b": 10}}
JUDGED = "_lab_episode_judged"
"""Session memo of judges' rewards along episodes: (judge, dataset, episode frames) -> rewards."""
JUDGE_BUTTON = "lab-episode-judge-run"


@dataclass(frozen=True)
class Episode:
    """One episode of a dataset: its rows in the dataset (step order), steps and frame names."""

    episode: int
    rows: np.ndarray
    steps: np.ndarray
    hashes: tuple[str, ...]
    names: tuple[str, ...]


def step_key(dataset: str, episode: int) -> str:
    """Session-state key of the scrubber of one episode (each episode keeps its own step)."""
    return f"lab-episode-step-{dataset}-{episode}"


def _episodes(embedded: landscape.DatasetEmbeddings) -> list[Episode]:
    """The dataset's episodes, kept per session (they depend on the frames, not the reward)."""
    frames = embedded.frames

    def build() -> list[Episode]:
        grouped, _ = episode_rows(frames)
        return [
            Episode(
                episode=int(frames[int(rows[0])].episode or 0),
                rows=rows,
                steps=np.array([frames[int(r)].step for r in rows], dtype=np.int64),
                hashes=tuple(frames[int(r)].hash for r in rows),
                names=tuple(landscape.frame_label(frames[int(r)]) for r in rows),
            )
            for rows in grouped
            if len(rows)
        ]

    key = (embedded.dataset, embedded.encoder_key, len(frames))
    return memo("_lab_episodes", key, build)


def _score(clip: ClipModel, x: np.ndarray, spec: RewardSpec) -> tuple[RewardScores, list[str]]:
    """One episode's rewards from its embeddings in time order (a windowed spec looks back its
    k frames), with the truncation warnings of the spec's prompts."""
    warnings = landscape.long_prompt_warnings(clip, landscape.spec_prompts(spec))
    return score_episode_embeddings(clip, x, spec), warnings


def _judge_key(saved: SavedJudge, dataset: str, episode: Episode) -> tuple[object, ...]:
    """What a judge's rewards along an episode depend on: the judge (model, revision,
    question, answers, mode, frames per question), the dataset and the episode's frames."""
    return (saved.request, saved.revision, dataset, episode.episode, episode.hashes)


def _judged(saved: SavedJudge, dataset: str, episode: Episode) -> np.ndarray | None:
    """A judge's rewards along the episode when they were computed in this session."""
    store = st.session_state.get(JUDGED)
    return None if store is None else store.get(_judge_key(saved, dataset, episode))


def _run_judges(judges: Sequence[SavedJudge], dataset: str, episode: Episode) -> None:
    """Score the episode with each judge, in time order (a judge of k frames sees the k frames
    up to each step), with a progress bar; failures are shown, the others kept."""
    for saved in judges:
        update, clear = progress_bar(f"Judging episode {episode.episode} with {saved.name}")
        try:
            reward = judge_reward(get_judge(saved.request.model), saved.request)
            values = score_stored_episode(reward, episode.hashes, progress=update)
        except (VlmrmError, OSError) as exc:  # a judge that can't load, a missing frame file
            st.error(md_escape(f"Judge {saved.name}: {exc}"))
            continue
        finally:
            clear()
        memo(JUDGED, _judge_key(saved, dataset, episode), lambda values=values: values)


def _judge_curves(dataset: str, episode: Episode, controls: Sequence) -> dict[str, np.ndarray]:
    """The saved-judge picker, a button running the chosen judges not yet run on this episode,
    and the curves of those that were."""
    saved = list_saved_judges(environment=dataset)
    if not saved:
        return {}
    by_name = {j.name: j for j in saved}
    with controls[1]:
        names = st.multiselect(
            "Also draw saved judges",
            list(by_name),
            key="lab-episode-judges",
            help="Saved VLM judges (Judge mode): slow, so they run when you ask, over the "
            "episode in time order; their rewards are kept for this session.",
        )
    chosen = [by_name[n] for n in names if n in by_name]
    missing = [j for j in chosen if _judged(j, dataset, episode) is None]
    if missing:
        label = f"Judge episode {episode.episode} ({len(episode.rows)} frames)"
        if st.button(label, key=JUDGE_BUTTON, type="primary"):
            _run_judges(missing, dataset, episode)
        else:
            st.caption(
                md_escape(
                    "Not judged yet on this episode: " + ", ".join(j.name for j in missing) + "."
                )
            )
    curves = {}
    for judge in chosen:
        values = _judged(judge, dataset, episode)
        if values is not None:
            curves[f"{judge.name} (judge)"] = values
    return curves


def episode_section(
    db: Engine,
    clip: ClipModel,
    embedded: landscape.DatasetEmbeddings,
    spec: RewardSpec | None,
    picked: tuple[str, str],
    controls: Sequence,
) -> None:
    """The Episode view: episode and source pickers, then the chart, scrubber, frame and VOC.

    Drawn by Prompt Lab's chart fragment, so an α / β change re-scores and redraws it alone.

    Args:
        db: the project database (saved prompt sets, labels).
        clip: the model the embeddings came from (it scores every source).
        embedded: the dataset's frames and cached embeddings.
        spec: the editor's reward with the slider's α / β; None when the editor holds no valid
            reward yet (saved sets can still be drawn).
        picked: ``(architecture, pretrained)`` of the page's model (adapted sets need theirs).
        controls: three columns beside the α slider, for the pickers.
    """
    episodes = _episodes(embedded)
    if not episodes:
        st.info(
            f"{md_escape(embedded.dataset)} has no episodes (no frame has an episode and a "
            "step). Record a rollout, upload a video or import a LeRobot dataset on **Frames**."
        )
        return
    by_id = {e.episode: e for e in episodes}
    with controls[0]:
        chosen_id = st.selectbox(
            "Episode",
            list(by_id),
            key=f"lab-episode-{embedded.dataset}",
            format_func=lambda e: f"episode {e} ({len(by_id[e].rows)} steps)",
        )
    saved = {p.name: p for p in list_prompt_sets(db)}
    with controls[1]:
        names = st.multiselect(
            "Also draw saved prompt sets",
            list(saved),
            key="lab-episode-sets",
            help="Scored with the model chosen above; an adapted reward only with its own model.",
        )
    with controls[2]:
        normalize = st.checkbox(
            "Scale each curve to [0, 1]",
            key="lab-episode-normalize",
            help="Sources can give rewards on different scales.",
        )
    episode = by_id[chosen_id]
    x = embedded.embeddings[episode.rows]
    curves: dict[str, np.ndarray] = {}
    if spec is not None:
        try:
            scores, warnings = _score(clip, x, spec)
        except (PromptError, ValueError) as exc:
            st.error(md_escape(exc))
        else:
            for message in warnings:
                st.warning(md_escape(message))
            knob = f"β = {spec.beta:g}" if spec.kind == "contrastive" else f"α = {spec.alpha:g}"
            curves[f"{ON_SCREEN} ({knob})"] = landscape.reward_values(scores)
    for name in names:
        prompt_set = saved.get(name)
        if prompt_set is None:  # deleted meanwhile
            continue
        if mismatch := adapted_model_mismatch(prompt_set, picked):
            st.warning(md_escape(mismatch))
            continue
        try:
            scores, _ = _score(clip, x, prompt_set.reward)
        except (VlmrmError, ValueError) as exc:
            st.error(md_escape(f"{name}: {exc}"))
            continue
        curves[name] = landscape.reward_values(scores)
    curves.update(_judge_curves(embedded.dataset, episode, controls))
    if not curves:
        st.info("Enter a goal prompt above or pick a saved prompt set or judge to draw its reward.")
        return
    consensus = consensus_labels(db, embedded.dataset)
    labels = {i: float(consensus[h]) for i, h in enumerate(episode.hashes) if h in consensus.index}
    _episode_view(embedded.dataset, episode, curves, labels, normalize)


def _set_step_from_click(dataset: str, episode: Episode) -> None:
    """The chart's click callback: move the scrubber to the clicked frame's step."""
    event = st.session_state.get(CHART_KEY)
    rows = selected_frames(event, None)
    if not rows:
        return
    where = np.flatnonzero(episode.rows == rows[0])
    if where.size:
        st.session_state[step_key(dataset, episode.episode)] = int(episode.steps[int(where[0])])


@st.fragment
def _episode_view(
    dataset: str,
    episode: Episode,
    curves: dict[str, np.ndarray],
    labels: dict[int, float],
    normalize: bool,
) -> None:
    """The chart with the scrubber under it, and the frame and VOC beside it; reruns alone when
    the scrubber moves (or a point is clicked)."""
    steps = [int(s) for s in episode.steps]
    key = step_key(dataset, episode.episode)
    if st.session_state.get(key) not in steps:
        st.session_state[key] = steps[0]
    left, right = st.columns([3, 1])
    chart_slot = left.container()
    with left:
        if len(steps) > 1:
            step = st.select_slider(
                "Step (frame scrubber)",
                steps,
                key=key,
                help="Moves the marker on the chart and shows that frame; clicking a point on "
                "the chart moves it too.",
            )
        else:
            step = steps[0]
            st.caption(f"One step: {step}.")
    position = steps.index(int(step))
    figure = episode_figure(
        episode.steps,
        curves,
        rows=episode.rows,
        names=episode.names,
        labels=labels,
        current_step=int(step),
        normalize=normalize,
        layout=CHART_LAYOUT,
    )
    with chart_slot:
        st.plotly_chart(
            figure,
            key=CHART_KEY,
            on_select=lambda: _set_step_from_click(dataset, episode),
            selection_mode="points",
        )
        n_success = sum(v >= SUCCESS_THRESHOLD for v in labels.values())
        st.caption(
            f"{len(labels)} labelled frame(s) in this episode ({n_success} success, "
            f"{len(labels) - n_success} failure): triangles along the bottom."
            if labels
            else "No frame of this episode is labelled yet (label frames on **Label**)."
        )
    with right:
        caption = f"step {step} · {episode.names[position]}"
        image = frame_image(episode.hashes[position], FRAME_PX, caption=caption)
        if image is not None:  # None: frame_image said why, in one line
            st.image(image, caption=md_escape(caption), width="stretch")
        st.markdown(_voc_lines(episode, curves, position))


def _voc_lines(episode: Episode, curves: dict[str, np.ndarray], position: int) -> str:
    """Markdown: each source's reward at the scrubber's step and its VOC on this episode (one
    element, not a table: it is redrawn on every step and α change)."""
    lines = ["**VOC on this episode** (Spearman ρ of reward and step)"]
    for name, values in curves.items():
        rho = spearman(values, episode.steps)
        shown = "undefined (constant reward)" if rho is None else f"**{rho:+.3f}**"
        lines.append(f"- {md_escape(name)}: {shown} · here {float(values[position]):.4f}")
    return "\n".join(lines)
