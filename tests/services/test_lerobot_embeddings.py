"""Embedding a LeRobot import, whose frames the store keeps by reference to a copy of their MP4:
the vectors equal those of the same pixels imported as PNG files, on every local path (the
embedding service the app and Prompt Lab use, and ``vlmrm embed --dataset``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests._lerobot_data import CAMERAS, LENGTHS, write_lerobot_dataset
from vlmrm_core.frames import pixel_hash
from vlmrm_core.services.dataset_import import import_lerobot
from vlmrm_core.services.landscape import embed_dataset
from vlmrm_core.settings import get_settings
from vlmrm_core.sources.lerobot import lerobot_frames
from vlmrm_core.sources.uploads import iter_paths
from vlmrm_core.store import (
    Engine,
    dataset_frames,
    dispose_engine,
    get_embeddings,
    ingest_frames,
    init_db,
)
from vlmrm_core.store.videos import VIDEO_DIR, video_frame_locations

TINY_MODEL = "ViT-S-32-alt"


def write_video_backed(root: Path, name: str = "robot") -> tuple[Engine, list[np.ndarray]]:
    """A textured v3.0 LeRobot dataset imported into the current project, checked to be stored
    by reference (no PNG per frame). Returns the engine and the frames' pixels in order."""
    folder = write_lerobot_dataset(root / "lerobot", "v3.0", textured=True)
    pixels = [r.pixels for r in lerobot_frames(folder, camera=CAMERAS[0])]
    engine = init_db()
    import_lerobot(engine, folder, name, camera=CAMERAS[0])
    frames_dir = get_settings().frames_dir
    hashes = [f.hash for f in dataset_frames(engine, name)]
    assert hashes == [pixel_hash(p) for p in pixels] and len(hashes) == sum(LENGTHS)
    assert set(video_frame_locations(engine, hashes)) == set(hashes)  # every frame in the video
    assert list(frames_dir.glob("??/*.png")) == [] and any((frames_dir / VIDEO_DIR).glob("*.mp4"))
    return engine, pixels


def png_reference(
    root: Path, pixels: list[np.ndarray], clip: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, np.ndarray]:
    """Embeddings of the same pixels imported as PNG files from a folder, into a project of
    its own (in one project they would be duplicates of the video-backed frames)."""
    folder = root / "pngs"
    folder.mkdir(parents=True)
    for i, frame in enumerate(pixels):
        Image.fromarray(frame).save(folder / f"f{i:03d}.png")
    with monkeypatch.context() as env:
        env.setenv("VLMRM_DATA_DIR", str(root / "png-project"))
        env.delenv("VLMRM_DATABASE_URL", raising=False)
        (root / "png-project").mkdir()
        settings = get_settings()
        engine = init_db()
        try:
            ingest_frames(engine, "pngs", iter_paths([folder]))
            assert not (settings.frames_dir / VIDEO_DIR).exists()
            assert len(list(settings.frames_dir.glob("??/*.png"))) == len(
                set(map(pixel_hash, pixels))
            )
            embedded = embed_dataset(engine, clip, "pngs", settings=settings)
        finally:
            dispose_engine(settings.database_url)
    return {f.hash: v for f, v in zip(embedded.frames, embedded.embeddings, strict=True)}


def test_the_embedding_service_embeds_video_backed_frames_like_pngs(
    data_dir: Path, tmp_path: Path, tiny_clip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, pixels = write_video_backed(tmp_path)
    expected = png_reference(tmp_path / "ref", pixels, tiny_clip, monkeypatch)
    embedded = embed_dataset(engine, tiny_clip, "robot", batch_size=8)
    assert [f.hash for f in embedded.frames] == [pixel_hash(p) for p in pixels]
    want = np.stack([expected[f.hash] for f in embedded.frames])
    np.testing.assert_allclose(embedded.embeddings, want, atol=1e-5)
    # The second time everything comes from the cache: the same vectors.
    again = embed_dataset(engine, tiny_clip, "robot")
    np.testing.assert_allclose(again.embeddings, want, atol=1e-5)


def test_vlmrm_embed_of_a_lerobot_dataset_caches_the_png_embeddings(
    data_dir: Path,
    tmp_path: Path,
    tiny_clip: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vlmrm_core.cli.main import main
    from vlmrm_core.scale.embed import EmbedModel

    engine, pixels = write_video_backed(tmp_path)
    expected = png_reference(tmp_path / "ref", pixels, tiny_clip, monkeypatch)
    argv = ["embed", "--dataset", "robot", "--model", TINY_MODEL, "--pretrained", "random"]
    assert main([*argv, "--batch-size", "8"]) == 0
    unique = len(expected)
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"embedded {unique} new, 0 already cached"
    )
    key = EmbedModel(TINY_MODEL, "random").encoder_key
    got = get_embeddings(engine, key, list(expected))
    assert set(got) == set(expected)
    for frame_hash, vector in expected.items():
        np.testing.assert_allclose(got[frame_hash], vector, atol=1e-5)
