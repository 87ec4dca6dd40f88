"""The Train page and its sections."""
