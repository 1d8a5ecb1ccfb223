"""The FastAPI dependencies that say who is calling: an API key (Bearer), an admin, or a viewer
(a key, else the web UI's session cookie). Shared by the server's route modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import Principal
from ..service import Service
from .guard import SESSION_COOKIE

_bearer = HTTPBearer(auto_error=False, description="An API key from `chulcheo keys create`.")


def _caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """An API key; without one, the user a trusted proxy's headers name (auth.trusted_header_*)."""
    service: Service = request.app.state.service
    if credentials is None and (who := _signed_in(service, request)) is not None:
        return who
    return service.authenticate(credentials.credentials if credentials else None)


def _admin(who: Annotated[Principal, Depends(_caller)]) -> Principal:
    who.require_admin("this route")
    return who


def _viewer(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """An API key, or else the web UI's session cookie: the UI's 원문 보기 loads pages and files
    with the login it already has (GET only; the cookie is SameSite=Strict)."""
    service: Service = request.app.state.service
    if credentials is None and (who := _signed_in(service, request)) is not None:
        return who
    if credentials is None and service.sessions is not None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return service.ui_principal(service.sessions.handle(cookie))
    return service.authenticate(credentials.credentials if credentials else None)


def _signed_in(service: Service, request: Request) -> Principal | None:
    return service.trusted(request.client.host if request.client else None, request.headers)


Caller = Annotated[Principal, Depends(_caller)]
Admin = Annotated[Principal, Depends(_admin)]
Viewer = Annotated[Principal, Depends(_viewer)]
