"""Istio config: the frozen model, its loader and its validator (pure: no I/O but reading text).

``loader`` turns YAML text (or plain mappings) into ``Resource`` objects with typed specs
(``model``, converted by ``convert``), collecting schema ``Issue``s; ``validate.analyze``
adds semantic and cross-reference findings against a ``Topology``, as ``istioctl analyze``
does. ``hosts`` holds host-name rules that validation and routing share.
"""

from mesh.config.issues import ConfigError, Issue

__all__ = ["ConfigError", "Issue"]
