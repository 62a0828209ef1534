"""The TLS settings Dunwell's own HTTP requests verify servers with."""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def client_tls() -> ssl.SSLContext:
    """The certificates httpx trusts (certifi's), loaded once per process.

    Loading them is most of what making an ``httpx.Client`` costs (about
    18 ms, against 0.05 ms given a context made already), and one context
    may serve every thread's connections at once. Callers that make a
    client per request, so that no connection outlives the address they
    checked, pass this as ``verify``. ``trust_env=False`` as those clients
    are made: certificate files named in the environment are not read.
    """
    return httpx.create_ssl_context(trust_env=False)
