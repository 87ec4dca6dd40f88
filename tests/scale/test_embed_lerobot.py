"""Embedding a LeRobot import (frames stored by reference to their MP4) on a real local Ray
cluster: the driver decodes each frame and ships it, and the vectors equal those of the same
pixels imported as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.services.test_lerobot_embeddings import TINY_MODEL, png_reference, write_video_backed

pytestmark = pytest.mark.slow


def test_ray_embeds_video_backed_frames_like_pngs(
    data_dir: Path,
    tmp_path: Path,
    ray_cluster: Any,
    tiny_clip: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vlmrm_core.scale.embed import EmbedModel, embed_with_ray, iter_stored_items
    from vlmrm_core.store import get_embeddings

    engine, pixels = write_video_backed(tmp_path)
    expected = png_reference(tmp_path / "ref", pixels, tiny_clip, monkeypatch)
    model = EmbedModel(TINY_MODEL, None)
    assert model.encoder_key == f"{tiny_clip.identity}|squash"
    report = embed_with_ray(
        engine, iter_stored_items(engine, "robot"), model, batch_size=8, num_actors=1
    )
    assert (report.new, report.cached) == (len(expected), 0)
    got = get_embeddings(engine, model.encoder_key, list(expected))
    assert set(got) == set(expected)
    for frame_hash, vector in expected.items():
        np.testing.assert_allclose(got[frame_hash], vector, atol=1e-5)
