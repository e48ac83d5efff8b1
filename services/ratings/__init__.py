"""Bookinfo ratings service (see app.py)."""
