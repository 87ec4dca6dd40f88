"""Scale out on Ray: embed large frame sets and run training sweeps on a cluster.

Ray is imported lazily (only by the functions that need it), so importing this package, or the
rest of ``vlmrm_core``, never requires Ray nor starts anything.

- :mod:`vlmrm_core.scale.cluster`: join an existing cluster or start a local one for one command.
- :mod:`vlmrm_core.scale.embed`: fill the embedding cache with a Ray Data actor pool (or locally).
"""
