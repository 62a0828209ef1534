"""Dunwell: self-hosted failed-payment recovery."""

__version__ = "0.1.0"
