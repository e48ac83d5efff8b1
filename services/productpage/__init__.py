"""Bookinfo productpage service (see app.py)."""
