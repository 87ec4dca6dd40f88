"""The Evaluate page and its sections."""
