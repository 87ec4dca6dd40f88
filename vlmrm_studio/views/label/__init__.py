"""The Label page and its sections."""
