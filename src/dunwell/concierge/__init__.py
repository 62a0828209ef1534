"""The SMS concierge: understanding a text, the dialogue, and its actions.

Everything in this package is pure (no database, no clock, no network),
except the optional LLM adapter, which is handed its HTTP transport.
"""
