"""Validation of Istio config, as ``istioctl analyze`` and Istio's webhook do it.

``analyze(resources, topology)`` (``analyzer``) runs the per-resource checks of each kind
(``virtual_service``, ``destination_rule``, ``gateway``; shared value checks in ``values``)
and the cross-resource analyzers, and returns every ``Issue``.
"""

from mesh.config.validate.analyzer import RESOURCE_CHECKS, analyze

__all__ = ["RESOURCE_CHECKS", "analyze"]
