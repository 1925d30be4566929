"""The pure domain: queues (and later topics), knowing neither the wire nor the disk.

Nothing here imports a storage driver, an HTTP library or a server. Time and ids are injected
(`loosely.core.clock`, `loosely.core.ids`), and persistence is reached only through the abstract
interfaces in `loosely.core.ports`.
"""
