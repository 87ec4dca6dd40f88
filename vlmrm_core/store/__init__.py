"""Persistent store: SQLAlchemy schema and engine, Alembic migrations, and the data APIs.

Typical use::

    from vlmrm_core.store import init_db, ingest_frames, label_queue

    engine = init_db()  # creates or upgrades the database named by the settings
    report = ingest_frames(engine, "my uploads", source_generator)
"""

from vlmrm_core.store._sql import NotFoundError
from vlmrm_core.store.datasets import (
    DatasetSummary,
    FrameInfo,
    IngestReport,
    count_frames,
    dataset_frames,
    delete_dataset,
    frame_path,
    get_dataset,
    ingest_frames,
    iter_pixels,
    list_datasets,
    load_pixels,
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
    PromptSetSpec,
    delete_prompt_set,
    get_prompt_set,
    list_prompt_sets,
    save_prompt_set,
)
from vlmrm_core.store.runs import (
    RunInfo,
    add_run_metrics,
    create_run,
    get_run,
    list_runs,
    run_metrics,
    update_run,
)

__all__ = [
    "DatasetSummary",
    "FrameInfo",
    "IngestReport",
    "LabelProgress",
    "LabelRecord",
    "NotFoundError",
    "PromptSetSpec",
    "RunInfo",
    "add_label",
    "add_run_metrics",
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
