"""Istio config: the frozen model, its loader and its validator (pure: no I/O but reading text).

``loader`` turns YAML text (or plain mappings) into ``Resource`` objects with typed specs
(``model``), collecting schema ``Issue``s; ``validate.analyze`` adds semantic and
cross-reference findings, as ``istioctl analyze`` does.
"""

from mesh.config.issues import ConfigError, Issue

__all__ = ["ConfigError", "Issue"]
