"""Bookinfo details service (see app.py)."""
