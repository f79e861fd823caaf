"""The ``pitstop`` command: an HTTP client of the API, plus ``serve``, ``demo`` and ``db``."""
