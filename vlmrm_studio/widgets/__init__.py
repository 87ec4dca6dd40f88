"""Pieces of the studio's pages used by more than one page."""
