"""Persistent store: SQLAlchemy schema and engine, Alembic migrations, and the data APIs.

Typical use::

    from vlmrm_core.store import init_db, ingest_frames, label_queue

    engine = init_db()  # creates or upgrades the database named by the settings
    report = ingest_frames(engine, "my uploads", source_generator)
"""

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from vlmrm_core.errors import InvalidInputError, NotFoundError, RunStateError
from vlmrm_core.store.datasets import (
    DatasetSummary,
    FrameInfo,
    count_frames,
    dataset_frames,
    delete_dataset,
    frame_image_file,
    frame_path,
    frames_by_hash,
    get_dataset,
    iter_pixels,
    list_datasets,
    load_pixels,
    stored_image_bytes,
    update_dataset,
)
from vlmrm_core.store.db import (
    current_revision,
    dispose_engine,
    downgrade,
    get_engine,
    head_revision,
    init_db,
    session_scope,
    transact,
    upgrade,
)
from vlmrm_core.store.embeddings import delete_embeddings, get_embeddings, put_embeddings
from vlmrm_core.store.labels import (
    LabelProgress,
    LabelRecord,
    add_label,
    check_person_name,
    consensus_labels,
    current_labels,
    export_labels,
    get_or_create_labeler,
    label_history,
    label_progress,
    label_queue,
    undo_last_label,
)
from vlmrm_core.store.prompt_sets import (
    BuiltinPromptSetError,
    PromptSet,
    PromptSetExistsError,
    delete_prompt_set,
    get_prompt_set,
    is_builtin,
    list_prompt_sets,
    save_prompt_set,
)
from vlmrm_core.store.runs import (
    RESUMABLE,
    BeatOutcome,
    RunInfo,
    add_run_metrics,
    claim_next_queued,
    claim_run_for_worker,
    create_run,
    get_run,
    latest_metric,
    list_runs,
    mark_crashed,
    record_heartbeat,
    request_cancel,
    requeue_run,
    run_metrics,
    update_run,
)
from vlmrm_core.store.schema import utcnow

__all__ = [
    "RESUMABLE",
    "BeatOutcome",
    "Engine",
    "InvalidInputError",
    "RunStateError",
    "claim_next_queued",
    "claim_run_for_worker",
    "frames_by_hash",
    "latest_metric",
    "mark_crashed",
    "record_heartbeat",
    "request_cancel",
    "requeue_run",
    "utcnow",
    "DatasetSummary",
    "FrameInfo",
    "IngestReport",
    "LabelProgress",
    "LabelRecord",
    "NotFoundError",
    "BuiltinPromptSetError",
    "PromptSet",
    "PromptSetExistsError",
    "is_builtin",
    "RunInfo",
    "add_label",
    "add_run_metrics",
    "check_person_name",
    "consensus_labels",
    "count_frames",
    "create_run",
    "current_labels",
    "current_revision",
    "dataset_frames",
    "delete_dataset",
    "delete_embeddings",
    "delete_prompt_set",
    "dispose_engine",
    "downgrade",
    "export_labels",
    "frame_image_file",
    "frame_path",
    "get_dataset",
    "get_embeddings",
    "get_engine",
    "get_or_create_labeler",
    "get_prompt_set",
    "get_run",
    "head_revision",
    "ingest_frames",
    "init_db",
    "iter_pixels",
    "label_history",
    "label_progress",
    "label_queue",
    "list_datasets",
    "list_prompt_sets",
    "list_runs",
    "load_pixels",
    "stored_image_bytes",
    "put_embeddings",
    "run_metrics",
    "save_prompt_set",
    "session_scope",
    "transact",
    "undo_last_label",
    "update_dataset",
    "update_run",
    "upgrade",
]

if TYPE_CHECKING:  # resolved lazily at run time, see __getattr__
    from vlmrm_core.store.ingest import IngestReport, ingest_frames


def __getattr__(name: str) -> object:
    # Imports live in vlmrm_core.store.ingest (files + the order of writes), which builds on this
    # package; the names stay importable from here for existing callers.
    if name in ("IngestReport", "ingest_frames"):
        from vlmrm_core.store import ingest

        return getattr(ingest, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
