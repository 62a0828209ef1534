"""One local HTTP server on 127.0.0.1, served from a background thread.

The fake providers (Stripe, Twilio, an LLM, a help desk) and the webhook
receiver all need the same thing: a ``ThreadingHTTPServer`` on a free port
of 127.0.0.1, a thread serving it, and a stop that ends the loop, closes
the socket and joins the thread. Each fake keeps its own handler and its
own public API on top of this.

    http = LocalHttpServer(Handler, Server, before_stop=wake_slow_replies)
    http.server.fake = fake           # what the handler reads as self.server.fake
    with http:
        ... http.url ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, TypeVar

S = TypeVar("S", bound=ThreadingHTTPServer)

#: How often the serving loop looks for a shutdown: stop() waits for it.
POLL_INTERVAL = 0.05


class LocalHttpServer(Generic[S]):
    """``server_class(("127.0.0.1", 0), handler)`` served from a daemon thread.

    ``before_stop`` runs first on :meth:`stop`, for a fake that must wake
    handlers still sleeping on a scripted delay. Handler threads are
    daemons, so a client that gave up never keeps the test process alive.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        server_class: type[S],
        *,
        before_stop: Callable[[], None] | None = None,
        join_timeout: float | None = None,
    ) -> None:
        self.server: S = server_class(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._before_stop = before_stop
        self._join_timeout = join_timeout
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalHttpServer[S]:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Run the hook, stop serving, close the listening socket and end the thread."""
        if self._before_stop is not None:
            self._before_stop()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(self._join_timeout)

    def __enter__(self) -> LocalHttpServer[S]:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
