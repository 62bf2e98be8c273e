"""Order3 Approvals: drafts of inventory work, decided by OPA, recorded in a signed audit log."""

__version__ = "0.1.0"
