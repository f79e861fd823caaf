"""The contract's lab fixture, from ``frr_lab`` (the FRR harness), for the whole directory."""

from frr_lab import frr_contract_lab

__all__ = ["frr_contract_lab"]
