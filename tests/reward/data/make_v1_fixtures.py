"""How the version-1 reward files next to this script were made (kept as a record; do not rerun).

They were written by the reward-file writer of commit 71d2886 (format version 1, before reward
sources existed), and ``v1_rewards.json`` holds the rewards that commit's ``load_reward`` gave on
``frames.npy`` (and the contrastive reward's probabilities). ``tests/reward/test_file.py`` loads them with today's reader and expects the same
rewards: rerunning this script with a newer writer would only test the new code against itself.
To reproduce, run it from a checkout of that commit::

    .venv/bin/python tests/reward/data/make_v1_fixtures.py

The model is the tests' tiny checkpoint (``tiny_checkpoint`` in ``tests/conftest.py``: a
ViT-S-32-alt initialised with seed 1234); it is written next to the files while they are made,
then deleted, so the files name it relative to themselves and record its SHA-256 (a different
checkpoint at test time is refused rather than compared).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHECKPOINT = "ViT-S-32-alt-test.safetensors"


def write_tiny_checkpoint(path: Path) -> None:
    """The same weights as the ``tiny_checkpoint`` fixture."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = open_clip.create_model("ViT-S-32-alt", pretrained=None, pretrained_text=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def main() -> None:
    from vlmrm_core._torchvision_compat import install

    install()
    from vlmrm_core.clip.embedding import embedding_dim
    from vlmrm_core.reward.file import (
        Provenance,
        load_reward,
        save_reward,
        with_checkpoint_hash,
        write_reward_file,
    )
    from vlmrm_core.reward.model import RewardModel
    from vlmrm_core.reward.spec import ModelRef, RewardSpec

    os.chdir(HERE)  # the writer records the checkpoint path as given: relative to the files
    write_tiny_checkpoint(HERE / CHECKPOINT)
    try:
        frames = np.random.default_rng(17).integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
        frames[0] = 0  # a black and a white frame among the noise
        frames[1] = 255
        np.save(HERE / "frames.npy", frames)

        regularized = RewardSpec(
            goal_prompts=("pole vertically upright on top of the cart",),
            baseline_prompts=("pole and cart",),
            alpha=0.5,
        )
        rm = RewardModel.from_spec(
            regularized, model="ViT-S-32-alt", pretrained=CHECKPOINT, device="cpu"
        )
        save_reward(
            "v1_regularized.json",
            rm,
            Provenance(
                dataset="cp9",
                labels="majority of alice, bob",
                n_labels=40,
                epic_distance=0.3,
                epic_ci=(0.2, 0.4),
                average_precision=0.8,
                roc_auc=0.85,
                evaluated_at="2026-01-01T00:00:00+00:00",
            ),
        )

        contrastive = RewardSpec(
            goal_prompts=("a humanoid robot kneeling", "a robot on its knees"),
            kind="contrastive",
            negatives=("a humanoid robot standing", "a humanoid robot lying down"),
            tau=0.05,
            beta=0.31,  # the probabilities here are 0.29 to 0.33: rewards 1, 0, 1, 1
        )
        save_reward("v1_contrastive.json", RewardModel(rm.clip, contrastive, resize="paper"))

        dim = embedding_dim(rm.clip)
        weights = np.round(np.random.default_rng(3).standard_normal(dim) / np.sqrt(dim), 5)
        adapted = regularized.replace(
            kind="adapted", weights=tuple(float(w) for w in weights), bias=0.125
        )
        ref = ModelRef("ViT-S-32-alt", CHECKPOINT, aspect="center-crop")
        # As `vlmrm adapt` writes it (without the long cross-validation table).
        write_reward_file(
            "v1_adapted.json",
            with_checkpoint_hash(ref),
            adapted,
            Provenance(dataset="cp9", n_labels=40, extra={"adaptation": {"folds": 5}}),
        )

        # Random weights are seeded by load_model, so this one needs no checkpoint at all.
        save_reward(
            "v1_random_init.json",
            RewardModel.from_spec(
                RewardSpec(goal_prompts=("a car at the flag",)),
                model="ViT-S-32-alt",
                pretrained=None,
                aspect="center-crop",
                device="cpu",
            ),
        )

        expected = {}
        names = ("v1_regularized.json", "v1_contrastive.json", "v1_adapted.json")
        for name in (*names, "v1_random_init.json"):
            text = (HERE / name).read_text()
            # The writer resolves checkpoint paths to absolute ones; keep the files portable.
            (HERE / name).write_text(text.replace(str(HERE) + os.sep, ""))
            loaded = load_reward(HERE / name, device="cpu")
            expected[name] = [float(r) for r in loaded(frames)]
        # The contrastive reward is binary: its probabilities show any drift below the threshold.
        loaded = load_reward(HERE / "v1_contrastive.json", device="cpu")
        probability = loaded.score_embeddings(loaded.embed(frames)).probability
        expected["v1_contrastive.json probability"] = [float(p) for p in probability]
        (HERE / "v1_rewards.json").write_text(json.dumps(expected, indent=2) + "\n")
    finally:
        (HERE / CHECKPOINT).unlink()


if __name__ == "__main__":
    main()
