"""The Frames page and its sections."""
