"""Environments: the one ``make_env`` and the textured MountainCar / Humanoid renderers."""
