"""The Prompt Lab page and its sections."""
