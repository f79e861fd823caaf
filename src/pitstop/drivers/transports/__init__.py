"""Transports any driver may use to reach its device: ``command`` (one ``run`` method, local
or in a network namespace) and ``ssh`` (the same over SSH, importing asyncssh only there).

Not a driver: it registers nothing, and drivers share it without importing each other.
"""
