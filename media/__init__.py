"""Object storage (`media.storage`) and pure image functions (`media.images`).

No database and no imports from `marketplace` or `workers`: the catalog builds upload slots,
the confirm endpoint and the checking task on top of these two modules.
"""
