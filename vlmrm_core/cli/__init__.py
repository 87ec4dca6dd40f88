"""The ``vlmrm`` console script: one module per command group."""
