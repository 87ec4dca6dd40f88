"""Display helpers of the Frames and Label pages: cached thumbnails, import reports, notices.

Display only: the logic lives in :mod:`vlmrm_core.services.dataset_import`, :mod:`vlmrm_core.services.labeling`
and :mod:`vlmrm_studio.widgets.frame_display`. Every user-provided string shown as Markdown is escaped.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from vlmrm_core.errors import VlmrmError, is_user_error
from vlmrm_core.frames import ProgressCallback
from vlmrm_core.services.dataset_import import rejection_table, report_summary
from vlmrm_core.store import IngestReport, load_pixels, stored_image_bytes
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.frame_display import png_bytes, png_data_uri, thumbnail
from vlmrm_studio.widgets.text import md_escape

CURRENT_DATASET = "current-dataset"
"""Session-state key of the dataset in use: the one last picked on any page with a dataset picker
(Frames, Prompt Lab, Label, Evaluate); every such page opens on it. A plain key, not a widget key:
Streamlit drops widget state on other pages."""

THUMB_SIDE = 192
"""Longest side of grid thumbnails, in pixels."""


@st.cache_data(max_entries=4096, show_spinner=False)
def thumbnail_png(frame_hash: str, max_side: int = THUMB_SIDE) -> bytes:
    """A stored frame scaled down, as PNG, cached by pixel hash (the hash fixes the content).

    PNG bytes rather than arrays keep the cache small (a few kB per thumbnail).
    """
    return png_bytes(thumbnail(load_pixels(frame_hash), max_side))


@st.cache_data(max_entries=1024, show_spinner=False)
def _thumbnail_uri(frame_hash: str, max_side: int = 96) -> str:
    """A small PNG data URI of a stored frame, cached by pixel hash (see :func:`thumbnail_uri`)."""
    return png_data_uri(thumbnail(load_pixels(frame_hash), max_side))


def unreadable_frame_text(frame_hash: str, exc: OSError | VlmrmError) -> str:
    """Why a stored frame can't be shown, in one line that names the fix: a video-backed
    frame's error (its stored video missing or altered) says it itself; a frame whose PNG is
    gone gets a line of ours."""
    if isinstance(exc, VlmrmError):
        return str(exc)
    return (
        f"frame {frame_hash[:12]}: its image file is missing; run `vlmrm frames gc` (it moves in "
        "files a killed import left), and re-import its dataset if the file is still missing."
    )


def show_frame_problem(
    frame_hash: str, exc: OSError | VlmrmError, caption: str | None = None
) -> None:
    """A stored frame that can't be shown, as one escaped error line
    (:func:`unreadable_frame_text`), after the frame's caption when given (plain text)."""
    text = unreadable_frame_text(frame_hash, exc)
    st.error(md_escape(text if caption is None else f"{caption}: {text}"))


def frame_image(
    frame_hash: str, max_side: int = THUMB_SIDE, *, caption: str | None = None
) -> bytes | None:
    """The thumbnail as PNG, or None when it cannot be shown (its PNG deleted meanwhile, or its
    stored video missing or altered); then the reason is shown here as one line
    (:func:`show_frame_problem`, after ``caption``), so callers add no message of their own."""
    try:
        return thumbnail_png(frame_hash, max_side)
    except (VlmrmError, FileNotFoundError) as exc:
        show_frame_problem(frame_hash, exc, caption)
        return None


def full_frame(frame_hash: str, *, caption: str | None = None) -> bytes | None:
    """The frame as PNG bytes (its stored PNG as on disk; a video-backed frame is decoded and
    encoded), or None as :func:`frame_image` (the reason shown here)."""
    try:
        return stored_image_bytes(frame_hash)
    except (VlmrmError, FileNotFoundError) as exc:
        show_frame_problem(frame_hash, exc, caption)
        return None


def thumbnail_uri(frame_hash: str, max_side: int = 96) -> str | None:
    """A small PNG data URI of a stored frame, for image columns of tables; None (an empty
    cell) when the frame cannot be read. No message per cell: a damaged video would repeat it on
    every row, and the frame's own view says what is wrong."""
    try:
        return _thumbnail_uri(frame_hash, max_side)
    except (VlmrmError, FileNotFoundError):
        return None


def _shown_key(widget_key: str) -> str:
    """Session-state key of the dataset a picker showed at the end of its page's last run."""
    return f"{widget_key}-shown"


def pick_default_dataset(widget_key: str, names: list[str]) -> None:
    """Before a dataset picker is created: start it on the dataset in use (:data:`CURRENT_DATASET`).

    A picker whose value changed since its page's last run (the user picked another dataset, an
    import or a link set it) keeps that value: :func:`use_dataset` then makes it the dataset in
    use. Otherwise the picker follows the dataset in use, which another page may have changed.
    A picked dataset that no longer exists (deleted in another tab or session) is cleared.
    """
    state = st.session_state
    value = state.get(widget_key)
    if value in names and value != state.get(_shown_key(widget_key)):
        return
    current = state.get(CURRENT_DATASET)
    if current in names:
        state[widget_key] = current
    elif value not in names:
        state.pop(widget_key, None)


def use_dataset(widget_key: str, dataset: str | None) -> None:
    """After a dataset picker: ``dataset`` is the dataset in use, on every page (see
    :func:`pick_default_dataset`)."""
    if dataset is None:
        return
    st.session_state[CURRENT_DATASET] = dataset
    st.session_state[_shown_key(widget_key)] = dataset


def notify(key: str, kind: str, text: str) -> None:
    """Remember a notice to show on the next run (after ``st.rerun`` or a callback).

    Args:
        key: Session-state key of the notice.
        kind: ``'success'``, ``'info'``, ``'warning'`` or ``'error'``.
        text: Plain text; it is escaped when shown.
    """
    st.session_state[key] = (kind, text)


def show_notice(key: str) -> None:
    """Show (once) the notice remembered under ``key``, if any."""
    notice = st.session_state.pop(key, None)
    if notice is not None:
        kind, text = notice
        getattr(st, kind)(md_escape(text))


def show_import_report(report: IngestReport) -> None:
    """Counts of an import as metrics, and the rejected inputs with their reasons as a table."""
    st.success(md_escape(report_summary(report)))
    cols = st.columns(4)
    cols[0].metric("Imported (new frames)", report.imported)
    cols[1].metric(
        "Already stored",
        report.duplicates,
        help="Images whose pixels the project already had (from another dataset, an earlier "
        "import or twice in this one): stored once, and listed in this dataset without a copy.",
    )
    cols[2].metric("Rejected", len(report.rejected))
    cols[3].metric("Added to dataset", report.added)
    if report.rejected:
        st.caption("Rejected inputs")
        # a static table wraps long reasons instead of cutting them off; its cells are
        # Markdown, so file names and reasons are escaped
        table = rejection_table(report)
        for column in ("input", "reason"):
            table[column] = [md_escape(str(v)) for v in table[column]]
        st.table(table.set_index("input"))


def run_import(
    label: str,
    start: Callable[[ProgressCallback], IngestReport],
    *,
    report_key: str,
    select_key: str,
    on_success: Callable[[], None] | None = None,
) -> None:
    """Run an import with a progress bar; on success remember its report and rerun the page.

    Errors the user can fix (:func:`~vlmrm_core.errors.is_user_error`: a ``VlmrmError``, an
    unreadable file) are shown as an error; anything else is a bug and keeps its traceback.
    The store rolls a failed import back completely, so there is nothing to clean up.

    Args:
        label: Text of the progress bar.
        start: Runs the import, given a progress callback.
        report_key: Session-state key the report is kept under (shown by the page).
        select_key: Session-state key receiving the dataset name, for the dataset picker.
        on_success: Called after a successful import, before the rerun.
    """
    update, clear = progress_bar(label)
    try:
        report = start(update)
    except Exception as exc:
        clear()
        if not is_user_error(exc):
            raise  # a bug: keep its traceback
        st.error(md_escape(str(exc)))
        return
    clear()
    st.session_state[report_key] = report
    st.session_state[select_key] = report.dataset
    if on_success is not None:
        on_success()
    st.rerun()
