"""Fetching what the server reads from outside itself: git catalog sources (checked out under the data dir).

Why an I/O package of its own: it is neither the database (`store/`) nor a Docker engine (`runtime/`); it runs the
git CLI against URLs API callers name, so it sits beside them in the I/O layer, below the server that calls it.
"""
