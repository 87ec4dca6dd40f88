"""The Admin page and its sections."""
