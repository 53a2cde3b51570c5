"""Livestream selling: sessions, pinned items, real-time events and orders from comments."""
