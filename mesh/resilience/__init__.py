"""Resilience primitives, pure: time and randomness are passed in.

``fault`` rolls fault injection, ``retry`` decides whether an outcome is retried and how long
to back off, ``outlier`` is the per-host ejection state machine of Envoy's outlier detection.
"""
