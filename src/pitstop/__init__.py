"""pitstop: take infrastructure devices out of service safely, and bring them back."""

__version__ = "0.1.0"
