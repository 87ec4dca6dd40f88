"""Prompt Lab: write goal and baseline prompts and watch the reward landscape of a dataset.

Images are embedded once (persistent cache + this session's memory); every prompt, α or kind
change re-scores the cached N×D matrix and redraws at once.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from vlmrm_core.clip.embedding import PromptError
from vlmrm_core.clip.models import ClipModel, discover_models
from vlmrm_core.enums import Aspect, RewardKind, choices
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services import landscape
from vlmrm_core.services.demo import DEMO_TASKS
from vlmrm_core.services.prompt_sets import (
    adapted_model_mismatch,
    free_prompt_set_name,
    guess_environment,
)
from vlmrm_core.store import (
    BuiltinPromptSetError,
    NotFoundError,
    PromptSet,
    PromptSetExistsError,
    get_prompt_set,
    list_datasets,
    list_prompt_sets,
    save_prompt_set,
)
from vlmrm_core.store.users import require_owner_or_admin
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.prompt_lab.episodes import EPISODE_VIEW, LAB_VIEWS, episode_section
from vlmrm_studio.views.prompt_lab.judge import JUDGE_SOURCE, LAB_SOURCES, judge_mode
from vlmrm_studio.views.prompt_lab.landscape import ALPHA_CHOICES, landscape_section
from vlmrm_studio.widgets import plots
from vlmrm_studio.widgets.common import (
    RANDOM_LABEL,
    engine,
    hide_training_evals,
    load_model_or_error,
    model_picker,
)
from vlmrm_studio.widgets.counts import frame_count_text
from vlmrm_studio.widgets.embeddings import dataset_embeddings
from vlmrm_studio.widgets.frames import pick_default_dataset, use_dataset
from vlmrm_studio.widgets.reward_download import reward_download_button
from vlmrm_studio.widgets.text import md_escape

ASPECTS = list(choices(Aspect))
# The adapted kind is fitted on Evaluate ("Adapt to labels"), not typed here.
REWARD_KINDS = [RewardKind.REGULARIZED.value, RewardKind.CONTRASTIVE.value]
# Initial widget values, set through Session State so that loading a prompt set can change
# them without Streamlit's "default value and Session State" warning. (Comments, not
# docstrings: Streamlit's magic would print a bare string on the page.)
DEFAULTS = {
    "lab-kind": "regularized",
    "lab-alpha": 0.5,
    "lab-negatives": "",
    "lab-tau-default": True,
    "lab-beta": 0.5,
    "lab-normalize": True,
    "lab-aspect": "squash",
}
KEEP = "session"  # the editor keeps its prompts when the user visits another page and returns

# The title shares its row with the reward-source switch: every pixel above the chart counts
# (the chart must be on screen at 1400×900, tests/studio/test_browser_no_weights.py).
_title_col, _source_col = st.columns([3, 2], vertical_alignment="bottom")
with _title_col:
    st.title("🧪 Prompt Lab")
st.caption(
    "Describe the goal in words and see which frames CLIP rewards. The goal-baseline "
    "regularized reward is Rocamonde et al.'s Def. 1; the contrastive one is Baumli et al.'s."
)

db = engine()


def _load_prompt_set(name: str) -> None:
    """Copy a saved prompt set into the editor's widgets (runs before the next script run)."""
    try:
        saved = get_prompt_set(db, name)
    except NotFoundError as exc:
        st.session_state["lab-flash"] = ("error", str(exc))
        return
    state = st.session_state
    reward, model = saved.reward, saved.model
    state["lab-goal"] = "\n".join(reward.goal_prompts)
    state["lab-baseline"] = "\n".join(reward.baseline_prompts)
    state["lab-negatives"] = "\n".join(reward.negatives)
    state["lab-alpha"] = reward.alpha
    # An adapted set is fitted on Evaluate, not edited here: its starting prompts are loaded
    # and its own reward is shown through "Compare two prompt sets" below.
    adapted = reward.kind is RewardKind.ADAPTED
    state["lab-kind"] = RewardKind.REGULARIZED.value if adapted else reward.kind.value
    state["lab-tau-default"] = reward.tau is None
    if reward.tau is not None:
        state["lab-tau"] = reward.tau
    state["lab-beta"] = reward.beta
    state["lab-aspect"] = model.aspect.value
    # The loaded name is not put in the save box: a later Save must not silently overwrite it.
    state["lab-loaded-name"] = saved.name
    state.pop("lab-pending-save", None)
    if saved.environment:
        state["lab-save-env"] = saved.environment
    if model.pretrained is None:
        state["lab-model"] = RANDOM_LABEL
        state["lab-arch"] = model.architecture
    else:
        labels = {(c.name, c.pretrained): c.label for c in discover_models()}
        label = labels.get((model.architecture, model.pretrained))
        if label is not None:
            state["lab-model"] = label
        else:
            st.session_state["lab-flash"] = (
                "warning",
                f"{model.label} is not available offline; the prompts "
                "were loaded, the model was left as it was.",
            )
            return
    if adapted:
        st.session_state["lab-flash"] = (
            "info",
            f"{name!r} is an adapted reward (fitted to labels on Evaluate): its starting prompts "
            "were loaded into the editor; pick it under Compare two prompt sets to see its "
            "own landscape.",
        )
        return
    st.session_state["lab-flash"] = ("success", f"Loaded prompt set {name!r}.")


def _default_prompts(dataset: str) -> None:
    """Start a new session with the paper's prompts (and α = 0.5) when a demo dataset is open."""
    if "lab-goal" in st.session_state:
        return
    task = next((t for t in DEMO_TASKS if t.dataset == dataset), None)
    st.session_state["lab-goal"] = task.goal if task else ""
    st.session_state["lab-baseline"] = task.baseline if task else ""
    # Without a baseline prompt only α = 0 is defined: start there rather than at an error.
    st.session_state["lab-alpha"] = 0.5 if task else 0.0


# The view lives in the URL too (dataset, prompts, α, overlay), so a browser refresh or a shared
# link reproduces it: read once per session, before the widgets exist, then kept in step below.
URL_KEYS = {"dataset": "lab-dataset", "goal": "lab-goal", "baseline": "lab-baseline"}


def _restore_from_url() -> None:
    state, params = st.session_state, st.query_params
    if state.get("lab-url-read"):
        return
    state["lab-url-read"] = True
    for param, key in URL_KEYS.items():
        if param in params and key not in state:
            state[key] = params[param]
    try:
        if "alpha" in params and "lab-alpha" not in state:
            state["lab-alpha"] = min(1.0, max(0.0, float(params["alpha"])))
        if "alphas" in params and "lab-alphas" not in state:
            chosen = (float(v) for v in params["alphas"].split(",") if v)
            state["lab-alphas"] = [a for a in chosen if a in ALPHA_CHOICES]
    except ValueError:
        pass  # a hand-edited URL: keep the defaults


def _write_url(dataset: str) -> None:
    """Mirror the current view into the URL's query parameters."""
    state = st.session_state
    wanted = {
        "dataset": dataset,
        "goal": state.get("lab-goal", ""),
        "baseline": state.get("lab-baseline", ""),
        "alpha": f"{float(state.get('lab-alpha', 0.0)):g}",
        "alphas": ",".join(f"{a:g}" for a in state.get("lab-alphas", [])),
    }
    for param, value in wanted.items():
        if value and st.query_params.get(param) != value:
            st.query_params[param] = value
        elif not value and param in st.query_params:
            del st.query_params[param]


_restore_from_url()
for _key, _value in DEFAULTS.items():
    st.session_state.setdefault(_key, _value)

datasets = list_datasets(db)
if not datasets:
    st.info(
        "No datasets yet. Open **Home** to create the demo state sweeps, or add frames on **Frames**."
    )
    st.stop()

# The reward source: CLIP prompts (this page) or a VLM judge's yes/no question (judge.py).
with _source_col:
    source = st.radio(
        "Reward source",
        LAB_SOURCES,
        key="lab-source",
        horizontal=True,
        persist_state=KEEP,
        label_visibility="collapsed",
        help="CLIP prompts: goal and baseline sentences; VLM judge: a yes/no question.",
    )
if source == JUDGE_SOURCE:
    judge_mode(db, datasets)
    st.stop()

top_left, top_mid, top_right = st.columns([2, 2, 1])
with top_left:
    datasets = hide_training_evals(datasets, "lab-show-evals")
    by_name = {d.name: d for d in datasets}
    pick_default_dataset("lab-dataset", list(by_name))  # opens on the dataset in use
    dataset = st.selectbox(
        "Dataset",
        list(by_name),
        key="lab-dataset",
        format_func=lambda n: f"{n} ({frame_count_text(by_name[n].n_frames, by_name[n].n_images)})",
    )
    use_dataset("lab-dataset", dataset)
    saved_sets = list_prompt_sets(db, environment=dataset)
    if saved_sets:
        # in a popover: one button's height, so the chart fits above the fold at 1400×900
        with st.popover("📂 Load a saved prompt set", width="stretch"):
            to_load = st.selectbox(
                "Saved prompt set",
                [p.name for p in saved_sets],
                key="lab-load-name",
                help="Sets written for this dataset's environment first; sets tagged for "
                "other environments are not listed.",
            )
            st.button(
                "Load into the editor", key="lab-load", on_click=_load_prompt_set, args=(to_load,)
            )
with top_mid:
    picked = model_picker("lab")
with top_right:
    aspect = st.selectbox(
        "Frame fitting",
        ASPECTS,
        key="lab-aspect",
        persist_state=KEEP,
        help="squash: the whole frame resized to the model's square input (the paper's choice); "
        "center-crop: open_clip's stock preprocessing, which cuts the sides off.",
    )

flash = st.session_state.pop("lab-flash", None)
if flash:
    getattr(st, flash[0])(md_escape(flash[1]))  # names prompt sets: user text

if picked is None:
    st.stop()
clip = load_model_or_error(*picked, warn_untrained=False)  # the picker shows that warning
if clip is None:
    st.stop()
embedded = dataset_embeddings(db, clip, dataset, aspect)
if len(embedded) == 0:
    st.info(f"{md_escape(dataset)} has no frames yet: add some on **Frames**.")
    st.stop()


def _spec() -> RewardSpec | None:
    goals = landscape.parse_prompts(goal_text)
    if not goals:
        st.info("Enter at least one goal prompt (one per line) to see the reward landscape.")
        return None
    try:
        # α and β are set by the chart fragment's slider (_chart): α = 0 is always valid
        return RewardSpec(
            goal_prompts=tuple(goals),
            baseline_prompts=tuple(landscape.parse_prompts(baseline_text)),
            alpha=0.0,
            kind=kind,
            negatives=tuple(landscape.parse_prompts(negatives_text)),
            tau=tau,
        )
    except (PromptError, ValueError) as exc:
        st.error(str(exc))
        return None


def _store(
    name: str, environment: str, spec: RewardSpec, picked: tuple[str, str], overwrite: bool
) -> None:
    """Save (a button callback): success, a pending overwrite question, or an error, as flash."""
    state = st.session_state
    state.pop("lab-pending-save", None)
    try:
        if overwrite:  # with sign-in only the creator (or an admin) may replace a set
            require_owner_or_admin(
                db,
                current_identity().email,
                get_prompt_set(db, name).created_by,
                f"Prompt set {name!r}",
            )
        stored = save_prompt_set(
            db,
            PromptSet(
                name=name,
                model=ModelRef(picked[0], picked[1], aspect=aspect),
                reward=spec,
                environment=environment or None,
                created_by=current_identity().email,
            ),
            overwrite=overwrite,
        )
    except PromptSetExistsError:
        state["lab-pending-save"] = name
        return
    except BuiltinPromptSetError as exc:
        state["lab-save-flash"] = ("error", str(exc))
        state["lab-pending-builtin"] = name
        return
    except (VlmrmError, ValueError) as exc:
        state["lab-save-flash"] = ("error", str(exc))
        return
    state.pop("lab-pending-builtin", None)
    state["lab-save-name"] = stored.name
    state["lab-save-flash"] = (
        "success",
        f"Saved prompt set {stored.name!r} ({picked[0]} / {picked[1] or 'random init'}).",
    )
    # A button inside a fragment reruns only the fragment: the whole page must run again for
    # Compare (and Load) below to offer the new set at once.
    state["lab-saved"] = True


def _store_typed(spec: RewardSpec, picked: tuple[str, str]) -> None:
    """The Save button: the name and environment as typed when it was clicked."""
    state = st.session_state
    name = str(state.get("lab-save-name") or "").strip()
    environment = str(state.get("lab-save-env") or "").strip()
    _store(name, environment, spec, picked, overwrite=False)


def _save_as_new(name: str, environment: str, spec: RewardSpec, picked: tuple[str, str]) -> None:
    _store(free_prompt_set_name(db, name), environment, spec, picked, overwrite=False)


@st.fragment
def _save(spec: RewardSpec | None, picked: tuple[str, str], dataset: str) -> None:
    """Save the reward as a prompt set, or download it as a reward file.

    Drawn by the chart fragment, so every α / β change redraws it with the reward on screen;
    a fragment of its own, so typing a name doesn't re-score the landscape.

    Args:
        spec: the reward as shown (the slider's α / β); None: no valid reward yet.
        picked: ``(architecture, pretrained)`` of the page's model.
        dataset: the open dataset (its environment is the default tag).
    """
    state = st.session_state
    if state.pop("lab-saved", False):
        st.rerun()  # the whole page: Compare and Load list the new set (the flash waits)
    st.subheader("Save as a prompt set")
    state.setdefault("lab-save-env", guess_environment(dataset))
    left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    with left:
        name = st.text_input(
            "Prompt set name",
            key="lab-save-name",
            placeholder="e.g. cartpole v2",
            persist_state=KEEP,
        )
    with mid:
        environment = st.text_input(
            "Written for (environment or dataset)",
            key="lab-save-env",
            placeholder="e.g. CartPole",
            help="Evaluate and Train offer the set for matching environments and datasets.",
        )
    if spec is None:
        right.button("Save prompt set", key="lab-save", width="stretch", disabled=True)
        st.caption("Fix the reward above to save or download it.")
        return
    args = (name.strip(), environment.strip(), spec, picked)
    # Enabled even with an empty name box: a name typed just before the click is only committed
    # when the box loses focus, so the callback reads the boxes then (and an empty name is a
    # message, not a dead button).
    right.button(
        "Save prompt set",
        key="lab-save",
        width="stretch",
        on_click=_store_typed,
        args=(spec, picked),
    )
    reward_download_button(
        ModelRef(picked[0], picked[1], aspect=aspect),
        spec,
        name.strip() or "reward",
        key="lab-download-reward",
        help="This model and reward as one JSON file: load it in any training script with "
        "vlmrm_core.load_reward(path). Evaluate's download also records EPIC against labels.",
    )
    if flash := state.pop("lab-save-flash", None):
        getattr(st, flash[0])(md_escape(flash[1]))  # names a prompt set: user text
    if loaded := state.get("lab-loaded-name"):
        st.caption(
            md_escape(
                f"Loaded from {loaded!r}. Saving under an existing name asks first; "
                "the built-in paper: sets can't be changed."
            )
        )
    _pending_questions(name.strip(), args)


def _pending_questions(name: str, args: tuple) -> None:
    """After a Save refused for a taken or built-in name: overwrite it, or save as a new name."""
    state = st.session_state
    pending = state.get("lab-pending-save")
    if pending and pending == name:
        st.warning(md_escape(f"A prompt set named {pending!r} already exists."))
        c1, c2, _ = st.columns([1, 1, 2])
        c1.button(
            md_escape(f"Overwrite {pending!r}"),
            key="lab-overwrite",
            on_click=_store,
            args=(*args, True),
        )
        c2.button(
            md_escape(f"Save as new: {free_prompt_set_name(db, pending)!r}"),
            key="lab-save-new",
            on_click=_save_as_new,
            args=args,
        )
    builtin = state.get("lab-pending-builtin")
    if builtin and builtin == name:
        st.button(
            md_escape(f"Save as new: {free_prompt_set_name(db, builtin)!r}"),
            key="lab-save-new",
            on_click=_save_as_new,
            args=args,
        )


def _compare(clip: ClipModel, embedded: landscape.DatasetEmbeddings) -> None:
    st.subheader("Compare two prompt sets")
    sets = list_prompt_sets(db)
    if len(sets) < 2:
        st.caption("Save at least two prompt sets to compare them here.")
        return
    names = [p.name for p in sets]
    left, right = st.columns(2)
    name_a = left.selectbox("Prompt set A", names, key="lab-compare-a")
    name_b = right.selectbox("Prompt set B", names, index=1, key="lab-compare-b")
    st.caption(
        md_escape(
            f"Both are scored on {embedded.dataset} with the model chosen above "
            f"({clip.identity}), whatever model they were saved with."
        )
    )
    by_name = {p.name: p for p in sets}
    curves = {}
    for label, name in (("A", name_a), ("B", name_b)):
        if mismatch := adapted_model_mismatch(by_name[name], picked):
            st.error(md_escape(f"Prompt set {label}: {mismatch}"))
            return
        try:
            scores, _ = landscape.score(clip, embedded.embeddings, by_name[name].reward)
        except VlmrmError as exc:
            st.error(md_escape(f"Prompt set {label} ({name}): {exc}"))
            return
        curves[f"{label}: {name}"] = landscape.reward_values(scores)
    values_a, values_b = curves.values()
    agreement = landscape.reward_agreement(values_a, values_b)
    metrics = st.columns(2)
    metrics[0].metric(
        "Pearson r (A, B)", "undefined" if agreement.pearson is None else f"{agreement.pearson:.3f}"
    )
    metrics[1].metric(
        "Spearman ρ (A, B)",
        "undefined" if agreement.spearman is None else f"{agreement.spearman:.3f}",
    )
    axes = landscape.available_axes(embedded.frames)
    points, x_title = landscape.landscape_points(embedded.frames, axes[0], order_by=values_a)
    figure = plots.landscape_figure(points, curves, x_title=x_title, normalize=True)
    figure.update_layout(height=380)
    st.plotly_chart(figure, key="lab-compare-chart")


# ---- the reward definition and its landscape --------------------------------------------------
# Three nested fragments. The outer one (editor, chart, saving) reruns alone on a prompt or reward
# kind change: not the dataset and model pickers, the model and embedding loading, or the
# comparison below. The middle one (_chart: the α / β slider, the chart controls, the chart and
# what is drawn from its values, and saving) reruns alone on an α, β, axis, overlay or selection
# change, so the chart redraws as fast as re-scoring and a lean figure allow (see the README's
# latency), and Save and Download hold the reward on screen. The inner one (_save) reruns alone
# while a name is typed.


@st.fragment
def _chart(spec: RewardSpec | None, kind: str) -> None:
    """The α (or β) slider and the landscape drawn from it; reruns alone when they change.

    Args:
        spec: the editor's reward (its α / β are replaced by the slider's); None: the editor's
            prompts don't make a reward yet (the slider is still drawn).
        kind: the reward kind picked in the editor.
    """
    # The view switch sits in the slider's row (not a row of its own): the chart stays on screen.
    view_col, *controls = st.columns([1.2, 3, 2, 3, 2], vertical_alignment="bottom")
    with view_col:
        view = st.radio("View", LAB_VIEWS, key="lab-view", persist_state=KEEP)
    with controls[0]:
        if kind == "regularized":
            alpha = st.slider(
                "α (goal-baseline regularization)",
                0.0,
                1.0,
                step=0.05,
                key="lab-alpha",
                persist_state=KEEP,
                help="0: cosine similarity to the goal; 1: only the direction from baseline "
                "to goal counts.",
            )
            knob = {"alpha": float(alpha)}
        else:
            beta = st.slider(
                "β (success threshold on p)",
                0.0,
                1.0,
                step=0.01,
                key="lab-beta",
                persist_state=KEEP,
                help="The reward is 1 when p(goal | frame) > β, else 0.",
            )
            knob = {"beta": float(beta)}
    if spec is not None:
        try:
            spec = dataclasses.replace(spec, **knob)
        except (PromptError, ValueError) as exc:
            st.error(md_escape(exc))
            spec = None
    if view == EPISODE_VIEW:  # the reward along one episode (views/prompt_lab/episodes.py)
        episode_section(db, clip, embedded, spec, picked, controls[1:])
    elif spec is not None:
        landscape_section(clip, embedded, spec, controls[1:])
    _save(spec, picked, dataset)
    _write_url(dataset)  # after the chart: its messages reach the browser first


@st.fragment
def _lab() -> None:
    """The editor, the landscape and saving; reruns alone when any of its widgets changes."""
    global goal_text, baseline_text, kind, negatives_text, tau
    # ---- the reward definition -------------------------------------------------------------------
    _default_prompts(dataset)
    # goal, baseline and the reward's knobs side by side: the chart starts higher on the page
    edit_goal, edit_baseline, edit_right = st.columns(3)
    with edit_goal:
        goal_text = st.text_area(
            "Goal prompts (one per line)",
            key="lab-goal",
            height=100,
            persist_state=KEEP,
            help="Describe the goal state. Several prompts are averaged (each normalised first).",
        )
    with edit_baseline:
        baseline_text = st.text_area(
            "Baseline prompts (one per line)",
            key="lab-baseline",
            height=100,
            persist_state=KEEP,
            help="Describe the environment in general; the reward then focuses on what the goal "
            "adds to it (needed when α > 0).",
        )
    with edit_right:
        kind = st.radio(
            "Reward kind", REWARD_KINDS, key="lab-kind", horizontal=True, persist_state=KEEP
        )
        negatives_text, tau = "", None
        if kind != "regularized":
            negatives_text = st.text_area(
                "Negative prompts (one per line)",
                key="lab-negatives",
                height=80,
                persist_state=KEEP,
                help="Other task descriptions the goal competes with in the softmax.",
            )
            default_tau = 1.0 / clip.logit_scale
            use_default = st.checkbox(
                f"Use the model's τ = 1/logit_scale = {default_tau:.4g}",
                key="lab-tau-default",
                persist_state=KEEP,
            )
            if not use_default:
                st.session_state.setdefault("lab-tau", float(round(default_tau, 4)))
                tau = st.number_input(
                    "τ (temperature)",
                    min_value=1e-4,
                    max_value=10.0,
                    step=0.005,
                    format="%.4f",
                    key="lab-tau",
                    persist_state=KEEP,
                )
    spec = _spec()
    _chart(spec, kind)


_lab()
_compare(clip, embedded)
