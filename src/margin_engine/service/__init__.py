"""The margin service's foundations: storage, the hash-chained audit log, Merkle commitments, auth.

Layer ``service`` (DESIGN §8). The REST routes, the feeds and the WebSocket are built on top of
these modules and the live book; see ``docs/service.md``.
"""
