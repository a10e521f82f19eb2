"""Time-versioned infrastructure topology (design §6).

Readers turn a source into a :class:`~.model.Topology` (nodes and edges keyed by
URN): :mod:`.terraform` from state files, :mod:`.ansible` from an Ansible
project. :mod:`.diff` records one observation of a source into ``topo_edge_time``.
"""
