"""Sessions on disk: the recorder stores the input (raw packets, gaps, control events,
imported RR), never only the output; replay re-runs the pipeline over it.

The embedded default backend is SQLite (:mod:`vagus.store.sqlite`); callers use the
:class:`~vagus.store.base.Store` interface only, so a server store can be added later.
"""
