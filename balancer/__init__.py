"""A DRS-style load balancer for VMware vSphere clusters.

The pipeline: a *source* (the embedded simulated cluster or vCenter) produces a
cluster *snapshot*; the *engine* turns the snapshot into a *plan*; an *executor*
carries the plan out; *reports* and *metrics* show what was decided.
"""

__version__ = "0.1.0"
