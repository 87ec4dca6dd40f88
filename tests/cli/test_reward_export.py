"""A reward exported from the studio gives, in a fresh process, the rewards the Prompt Lab shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.clip.models import load_model
from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.file import reward_file_text, with_checkpoint_hash
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.landscape import embed_dataset, reward_values, score
from vlmrm_core.store import PromptSet, frame_path, ingest_frames, init_db, save_prompt_set


@pytest.mark.slow
def test_exported_reward_matches_the_prompt_lab(data_dir: Path, tiny_checkpoint: Path) -> None:
    engine = init_db()
    rng = np.random.default_rng(3)
    frames = [
        FrameRecord(
            pixels=rng.integers(0, 256, (60 + 4 * i, 80, 3), dtype=np.uint8),
            source="upload",
            name=f"f{i}.png",
        )
        for i in range(6)
    ]
    ingest_frames(engine, "shots", frames, kind="upload")
    checkpoint = data_dir / "models" / tiny_checkpoint.name
    checkpoint.parent.mkdir(exist_ok=True)
    shutil.copy(tiny_checkpoint, checkpoint)
    saved = save_prompt_set(
        engine,
        PromptSet(
            name="upright",
            model=ModelRef("ViT-S-32-alt", str(checkpoint), aspect="center-crop"),
            reward=RewardSpec(
                ("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.5
            ),
        ),
    )

    # What the Prompt Lab shows: the dataset's cached embeddings, scored with the set's reward.
    clip = load_model("ViT-S-32-alt", str(checkpoint), device="cpu")
    embedded = embed_dataset(engine, clip, "shots", aspect=saved.model.aspect)
    scores, _ = score(clip, embedded.embeddings, saved.reward)
    lab_rewards = reward_values(scores)

    # What "Download reward file" writes, loaded in a fresh process on the stored frames.
    reward_path = data_dir / "upright.json"
    reward_path.write_text(reward_file_text(with_checkpoint_hash(saved.model), saved.reward))
    paths = [str(frame_path(f.hash)) for f in embedded.frames]
    code = (
        "import sys, numpy as np, vlmrm_core\n"
        "from PIL import Image\n"
        "rm = vlmrm_core.load_reward(sys.argv[1], device='cpu')\n"
        "rewards = [rm(np.asarray(Image.open(p).convert('RGB')))[0] for p in sys.argv[3:]]\n"
        "np.save(sys.argv[2], np.array(rewards))\n"
    )
    out = data_dir / "rewards.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(reward_path), str(out), *paths],
        check=True,
        capture_output=True,
    )
    np.testing.assert_allclose(np.load(out), lab_rewards, atol=1e-5)
