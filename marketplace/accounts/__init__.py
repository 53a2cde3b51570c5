"""Accounts, roles, bearer tokens, login throttling and the guards every route declares."""
