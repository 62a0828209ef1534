"""The merchant dashboard: server-rendered pages under ``/dashboard``."""
