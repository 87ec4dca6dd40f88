"""Rewards: what a reward is (spec), its math, the CLIP reward model, reward files,
rewards fitted to labels (adaptation) and the order in which to ask for labels."""
