"""Widgets and cached resources shared by the pages. Display only: no math here."""

from __future__ import annotations

import gc
from collections.abc import Callable

import streamlit as st

from vlmrm_core.clip.models import (
    NO_WEIGHTS_HELP,
    ClipModel,
    default_device,
    discover_models,
    load_model,
)
from vlmrm_core.errors import VlmrmError
from vlmrm_core.security import check_app_pretrained
from vlmrm_core.settings import get_settings
from vlmrm_core.store import Engine, init_db
from vlmrm_core.store.ingest import sweep_incoming
from vlmrm_studio.widgets.text import md_escape
from vlmrm_studio.widgets.uploads import checkpoint_upload

RANDOM_LABEL = "random init (untrained: rewards are meaningless)"
CUSTOM_LABEL = "other: architecture + pretrained tag…"
UNTRAINED_WARNING = (
    "Untrained weights: these rewards are meaningless. They only show how the interface works."
)


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> bool:
    """Move everything alive after start-up (torch, open_clip, plotly, ... ) out of the garbage
    collector's sight, once per server process.

    A full collection walks every tracked object: with the model libraries loaded that is
    ~0.5 million objects and ~0.3 s on a 2-core machine, during which the server answers no one
    (it holds the GIL). Those objects live as long as the process, so looking at them again is
    wasted work; frozen, a collection only walks what the app allocated since. See also
    ``runner.postScriptGC`` in ``.streamlit/config.toml``.
    """
    gc.collect()  # what is garbage now is not frozen
    gc.freeze()
    return True


@st.cache_resource(show_spinner="Opening the project database…")
def get_engine(url: str) -> Engine:
    """The project database, migrated to the latest schema (once per process and URL).

    Also finishes what killed imports left behind (staged frame files), so every stored frame
    has its file and every file its row before anyone imports again.
    """
    db = init_db(url)
    sweep_incoming(db)
    return db


def engine() -> Engine:
    """The engine for the current settings (``VLMRM_DATABASE_URL`` / ``VLMRM_DATA_DIR``)."""
    return get_engine(get_settings().database_url)


@st.cache_resource(show_spinner="Loading the CLIP model…", max_entries=3)
def get_model(name: str, pretrained: str, precision: str = "fp32") -> ClipModel:
    """A loaded model shared by all sessions (the three most recently used stay in memory).

    Only tags, random init and checkpoints inside the models folder (never another server path,
    never a TorchScript archive): ``check_app_pretrained`` raises for anything else.
    """
    pretrained = check_app_pretrained(pretrained, get_settings().models_dir)
    return load_model(
        name,
        pretrained or None,
        precision=precision,
        device=default_device(),
        allow_torchscript=False,
    )


def model_picker(key: str) -> tuple[str, str] | None:
    """Pick a model: the ones usable offline, random init, or any name + tag/path.

    Returns:
        ``(architecture, pretrained)`` (pretrained '' for random init), or None while the custom
        entry is incomplete.
    """
    choices = discover_models()
    labels = [c.label for c in choices] + [RANDOM_LABEL, CUSTOM_LABEL]
    picked = st.selectbox("Model", labels, key=f"{key}-model")
    if picked == RANDOM_LABEL:
        # One line under the picker (its label already says the rewards are meaningless): on a
        # machine without weights, the first thing a new user sees, the help and the warning in
        # full pushed Prompt Lab's chart below the fold. They are one click away.
        arch_key = f"{key}-arch"
        shown = str(st.session_state.get(arch_key, "ViT-B-32")).strip() or "?"
        with st.popover(
            # a button label renders Markdown: the typed architecture shows as typed
            md_escape(f"{shown}, untrained" + ("; no CLIP weights here" if not choices else "")),
            icon=":material/warning:",
            width="stretch",
            help="Which architecture the random weights have, and how to add real weights.",
        ):
            arch = st.text_input("Architecture", "ViT-B-32", key=arch_key)
            st.warning(UNTRAINED_WARNING, icon=":material/warning:")
            if not choices:
                st.markdown(NO_WEIGHTS_HELP.format(models_dir=get_settings().models_dir))
        return arch.strip(), ""
    if picked == CUSTOM_LABEL:
        arch = st.text_input("Architecture (open_clip name)", "ViT-B-32", key=f"{key}-custom-arch")
        pretrained = st.text_input(
            "Pretrained tag",
            "laion2b_s34b_b79k",
            key=f"{key}-custom-tag",
            help="An open_clip tag. Checkpoint files are offered in the list above once they "
            "are in the models folder (add one below).",
        )
        checkpoint_upload(f"{key}-ckpt-upload")
        if not arch.strip() or not pretrained.strip():
            st.info("Enter an architecture and a pretrained tag.")
            return None
        return arch.strip(), pretrained.strip()
    choice = choices[labels.index(picked)]
    return choice.name, choice.pretrained


def load_model_or_error(
    name: str, pretrained: str, precision: str = "fp32", *, warn_untrained: bool = True
) -> ClipModel | None:
    """Load through the cache; show the error (which names the fix) instead of a traceback.

    Args:
        name: architecture.
        pretrained: tag, checkpoint path, or '' for random init.
        precision: ``fp32`` or ``bf16``.
        warn_untrained: show the untrained-weights warning (pages that used ``model_picker``
            already show it beside the choice).
    """
    try:
        clip = get_model(name, pretrained, precision)
    except VlmrmError as exc:  # ModelError names the problem and the fix; bugs keep a traceback
        st.error(md_escape(f"Could not load {name} / {pretrained or 'random init'}: {exc}"))
        return None
    if clip.untrained and warn_untrained:
        st.warning(UNTRAINED_WARNING, icon=":material/warning:")
    return clip


def progress_bar(label: str) -> tuple[Callable[[int, int | None, str], None], Callable[[], None]]:
    """A Streamlit progress bar as a library ``ProgressCallback``, and a function to clear it.

    ``label`` and the library's messages are plain text (they name datasets, folders and
    files): they are escaped here, since the bar renders Markdown.
    """
    label = md_escape(label)
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int | None, message: str) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        bar.progress(fraction, text=f"{label}: {md_escape(message)}")

    return update, bar.empty


TRAINING_EVAL_KIND = "training-eval"


def hide_training_evals(datasets: list, key: str) -> list:
    """The datasets a picker offers: training-evaluation datasets (``run-N-eval-STEP``, one per
    evaluation of a training run) are hidden unless the user ticks a box to see them.

    Args:
        datasets: dataset summaries (with ``kind`` and ``name``).
        key: widget key of the checkbox (only drawn when there are such datasets).

    Returns:
        The datasets to offer, training evaluations last (grouped by run, in step order).
    """
    evals = [d for d in datasets if str(d.kind) == TRAINING_EVAL_KIND]
    others = [d for d in datasets if str(d.kind) != TRAINING_EVAL_KIND]
    if not evals:
        return others
    runs = len({_eval_run(d.name) for d in evals})
    shown = st.checkbox(
        f"Show training evaluations ({len(evals)} datasets from {runs} run{'s' * (runs != 1)})",
        key=key,
        help="Each evaluation of a training run stores its frames as a dataset "
        "(run-N-eval-STEP); they are hidden here unless you want to label or score them.",
    )
    if not shown:
        return others
    return others + sorted(evals, key=lambda d: (_eval_run(d.name), d.id))


def _eval_run(name: str) -> str:
    """``run-2`` of ``run-2-eval-150`` (the whole name when it doesn't follow that pattern)."""
    head, sep, _ = name.rpartition("-eval-")
    return head if sep else name
