"""Provinces and communes of Vietnam (administrative version 2025-07)."""
