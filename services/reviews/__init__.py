"""Bookinfo reviews service (see app.py)."""
