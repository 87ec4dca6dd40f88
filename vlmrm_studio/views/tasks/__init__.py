"""The Tasks page and its sections."""
