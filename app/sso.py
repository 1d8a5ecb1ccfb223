"""Single sign-on behind the company's proxy: a user and groups in request headers set by a
trusted reverse proxy (oauth2-proxy, Keycloak Gatekeeper and the like), off by default.

    sso = TrustedHeaders(AuthSettings(trusted_header_user="X-Forwarded-User",
                                      trusted_header_groups="X-Forwarded-Groups",
                                      trusted_proxies=["10.0.0.5"], group_map={"인사팀": "hr"}))
    sso.principal("10.0.0.5", {"x-forwarded-user": "kim", "x-forwarded-groups": "인사팀"})
    -> Principal(name="kim", role="user", groups=frozenset({"hr"}), key_id="sso:kim")

Headers are believed only from the addresses in `trusted_proxies` (the proxy that sets them
and strips what clients send); from any other address they are ignored and logged, so a
client that sends them itself gets no further than without them. Header groups map to
document groups through `group_map` (a group not in the map gives nothing; "*" = every
group); members of `admin_groups` are admins. An API key, when sent, always wins.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from pydantic import BaseModel, Field, field_validator

from .auth import ALL_GROUPS, Principal, parse_groups

log = logging.getLogger(__name__)


class AuthSettings(BaseModel):
    """`[auth]`: trusted proxy headers (single sign-on); empty header names = off."""

    trusted_header_user: str = Field("", max_length=100)
    trusted_header_groups: str = Field("", max_length=100)
    # addresses or networks ("10.0.0.5", "10.0.0.0/24") whose requests may carry the headers
    trusted_proxies: list[str] = []
    # header group -> document group ("*": every group)
    group_map: dict[str, str] = {}
    # header groups whose members are admins (of their mapped groups)
    admin_groups: list[str] = []
    # document groups every signed-in user has besides the mapped ones
    default_groups: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for p in proxies:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError as exc:
                raise ValueError(f"auth.trusted_proxies: {p!r} is not an address or network ({exc})") from exc
        return proxies

    @field_validator("group_map")
    @classmethod
    def _groups(cls, mapping: dict[str, str]) -> dict[str, str]:
        for group in mapping.values():
            parse_groups([group])  # raises ValueError naming a bad group
        return mapping


class TrustedHeaders:
    """The principal a trusted proxy's headers name (see the module docstring)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._nets = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self._warned: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.trusted_header_user and self._nets)

    def trusted(self, host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in net for net in self._nets)

    def principal(self, host: str | None, headers: Mapping[str, str]) -> Principal | None:
        """The signed-in user of a request from a trusted proxy, else None."""
        s = self.settings
        if not s.trusted_header_user:
            return None
        user = _utf8(headers.get(s.trusted_header_user.lower()) or "").strip()
        if not user:
            return None
        if not self.trusted(host):
            self._warn(host, user)
            return None
        if len(user) > 200 or not user.isprintable():
            log.warning("trusted header %s: a user name that is too long or not printable was refused",
                        s.trusted_header_user)
            return None
        raw = _utf8(headers.get(s.trusted_header_groups.lower()) or "") if s.trusted_header_groups else ""
        names = {g.strip() for g in raw.replace(";", ",").split(",") if g.strip()}
        mapped = {s.group_map[g] for g in names if g in s.group_map} | set(s.default_groups)
        groups = None if ALL_GROUPS in mapped else frozenset(mapped)
        role = "admin" if names & set(s.admin_groups) else "user"
        return Principal(name=user, role=role, groups=groups, key_id="sso:" + user)

    def _warn(self, host: str | None, user: str) -> None:
        """Log an ignored header once a minute per address (a client may send it on every request)."""
        now = time.monotonic()
        with self._lock:
            last = self._warned.get(host or "")
            if last is not None and now - last < 60:
                return
            self._warned[host or ""] = now
            while len(self._warned) > 1000:
                self._warned.popitem(last=False)
        log.warning("ignored %s header (user %r) from %s: not one of auth.trusted_proxies",
                    self.settings.trusted_header_user, user[:64], host)


def _utf8(value: str) -> str:
    """A header value as sent: servers decode header bytes as Latin-1, proxies send UTF-8
    ("인사팀" arrives as "ì\x9d¸ì\x82¬í\x8c\x80")."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def sso_handle(p: Principal) -> str:
    """The web UI's handle for a signed-in user (its sessions and conversations are keyed by it)."""
    return "sso:" + hashlib.sha256(f"{p.name}\0{p.role}\0{p.groups_text}".encode()).hexdigest()[:32]
