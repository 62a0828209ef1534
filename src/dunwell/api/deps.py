"""Request dependencies: the app, a database connection and the calling site."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Connection

from dunwell.bootstrap import App
from dunwell.services.api_keys import Caller, Scope, authenticate


def get_app(request: Request) -> App:
    app: App = request.app.state.dunwell
    return app


def read_conn(app: Annotated[App, Depends(get_app)]) -> Iterator[Connection]:
    with app.connect() as conn:
        yield conn


#: Scope key of the callables a route's write transaction runs just before it
#: commits (the idempotency layer stores its response there, with the work).
BEFORE_COMMIT = "dunwell.before_commit"


def write_conn(request: Request, app: Annotated[App, Depends(get_app)]) -> Iterator[Connection]:
    with app.begin() as conn:
        yield conn
        for hook in request.scope.get(BEFORE_COMMIT, ()):
            hook(conn)


def bearer_key(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def caller(request: Request, conn: Annotated[Connection, Depends(read_conn)]) -> Caller:
    key = bearer_key(request.headers.get("authorization", ""))
    if key is None:
        raise HTTPException(401, "Missing API key", {"WWW-Authenticate": "Bearer"})
    found = authenticate(conn, key)
    if found is None:
        raise HTTPException(401, "Unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
    return found


def require(scope: Scope) -> Callable[[Caller], Caller]:
    def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if not who.scope.allows(scope):
            raise HTTPException(403, f"This key's scope is {who.scope.value}; {scope.value} needed")
        return who

    return check


Reader = Annotated[Caller, Depends(require(Scope.READ))]
Writer = Annotated[Caller, Depends(require(Scope.WRITE))]
Admin = Annotated[Caller, Depends(require(Scope.ADMIN))]
ReadConn = Annotated[Connection, Depends(read_conn)]
WriteConn = Annotated[Connection, Depends(write_conn)]
AppDep = Annotated[App, Depends(get_app)]
