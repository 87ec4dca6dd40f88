"""The studio's pages: one folder per page, ``page.py`` its entry, the rest its sections."""
