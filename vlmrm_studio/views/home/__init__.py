"""The Home page and its sections."""
