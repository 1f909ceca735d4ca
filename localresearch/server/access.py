"""The access layer over HTTP: who is calling, may they call this operation, and how often.

Every request but the public ones (/health) resolves to a `Principal` (access/roles.py):

1. credentials in `Authorization: Bearer <secret>` or `X-API-Key: <secret>`: a key made with
   `research keys create` (stored as a hash), `[api] api_key` / `bearer_token` / `api_keys`,
   the variable named by `api.key_env`, or the home's local credential (the file
   `<state dir>/credential`, mode 0600, that the CLI and `Client.from_environment()` send).
   A valid bearer wins over a wrong X-API-Key; credentials that match nothing are 403;
2. then each resolver in `app[RESOLVERS]`, in order: a callable `(request) -> Principal | None`.
   Other credential sources plug in here without touching this module, e.g. a web page's
   HttpOnly session cookie issued by a one-time login link:

       def cookie_principal(request: web.Request) -> Principal | None:
           session = sessions.get(request.cookies.get("lr_session", ""))
           return session.principal if session else None

       app[RESOLVERS].append(cookie_principal)

3. with no keys configured: the daemon's own OS user, recognised by the loopback peer's socket
   owner (/proc/net/tcp, once per connection), so the owner's curl and scripts need nothing;
   `api.open_local = true` admits every local (loopback) caller instead (a warning is
   logged); remote callers always need a key;
4. otherwise 401.

The principal's role must hold the operation's permission (api/operations.py: its route
family), else 403. Rate limits count per key (per client address without one) and endpoint
class; the owner's own credential is not limited. `request[PRINCIPAL]` carries the principal
to the routes (ownership of sessions and jobs: `Principal.owns`).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch.access.keys import KeyStore
from localresearch.access.local import credential_path, ensure_credential, peer_uid
from localresearch.access.ratelimit import RateCounts, RateLimiter, Verdict
from localresearch.access.roles import ALL, OWNER_ROLE, Principal, permissions_of
from localresearch.loopback import is_loopback_host
from localresearch.server.errors import STATUS_BY_CODE, error_response

if TYPE_CHECKING:
    from localresearch.api.operations import Operation
    from localresearch.config import Config
    from localresearch.paths import Paths

log = logging.getLogger("localresearch.access")

Resolver = Callable[[web.Request], Principal | None]
PRINCIPAL = web.RequestKey("principal", Principal)
_VERDICT = web.RequestKey("ratelimit", Verdict)


class Access:
    """Built once from the config; `admit` runs on every request."""

    def __init__(
        self, config: Config, paths: Paths, keys: KeyStore, *, counts: RateCounts | None = None
    ) -> None:
        api = config.api
        self.keys = keys
        self.role_permissions = api.role_permissions
        self.configured: list[tuple[bytes, Principal, bool]] = []  # secret, who, bearer only
        if api.key_env and os.environ.get(api.key_env):
            self._add(os.environ[api.key_env], "config:key_env", "admin")
        if api.api_key:
            self._add(api.api_key, "config:api_key", "admin")
        if api.bearer_token:
            self._add(api.bearer_token, "config:bearer_token", "admin", bearer_only=True)
        for role, secret in api.api_keys.items():
            if secret:
                self._add(secret, f"config:api_keys.{role}", role)
        self.keys_configured = bool(self.configured)
        self.open_local = api.open_local and not self.keys_configured
        try:
            token = ensure_credential(credential_path(paths.state_dir))
        except OSError as exc:  # e.g. a read-only state directory: the peer check still works
            log.warning("cannot write the local credential (%s); the CLI will need a key", exc)
            token = secrets.token_urlsafe(32)
        self.local_token = token.encode()
        self.owner = Principal("owner", OWNER_ROLE, ALL, "local", limited=False)
        self.uid = os.getuid()
        # The rate limits' counts outlive this object: a new config builds a new one with them.
        self.rate_counts: RateCounts = {} if counts is None else counts
        self.limiter = (
            RateLimiter(
                api.rate_limit, api.rate_limits, window=api.rate_window, counts=self.rate_counts
            )
            if api.rate_limit > 0 or any(api.rate_limits.values())
            else None
        )
        self.resolvers: list[Resolver] = []
        self.policies: dict[web.AbstractRoute, Operation] = {}
        # Public before the operations are loaded (/health answers while the daemon starts).
        self.public_routes: set[web.AbstractRoute] = set()
        self._peers: weakref.WeakKeyDictionary[Any, int | None] = weakref.WeakKeyDictionary()
        if self.open_local:
            log.warning(
                "api.open_local = true: every local user may use this daemon (and read what "
                "it indexed); set it only on a single-user machine"
            )

    def _add(self, secret: str, name: str, role: str, *, bearer_only: bool = False) -> None:
        who = Principal(name, role, permissions_of(role, self.role_permissions), "config")
        self.configured.append((secret.encode("utf-8", "surrogatepass"), who, bearer_only))

    # -- who -------------------------------------------------------------------------------

    def _match(self, secret: str, *, bearer: bool) -> Principal | None:
        """The principal a secret stands for; the configured secrets are all compared, in
        constant time each, whatever matches first."""
        presented = secret.encode("utf-8", "surrogatepass")
        found: Principal | None = None
        if hmac.compare_digest(presented, self.local_token):
            found = self.owner
        for stored, who, bearer_only in self.configured:
            if hmac.compare_digest(presented, stored) and (bearer or not bearer_only):
                found = found or who
        if found is not None:
            return found
        record = self.keys.verify(secret)
        if record is None:
            return None
        permissions = permissions_of(record.role, self.role_permissions)
        return Principal(record.id, record.role, permissions, "key")

    def _owner_by_peer(self, request: web.Request) -> bool:
        transport = request.transport
        if transport is None:
            return False
        try:
            uid = self._peers[transport]
        except KeyError:
            peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
            uid = None
            if isinstance(peer, tuple) and isinstance(local, tuple):
                uid = peer_uid((peer[0], peer[1]), (local[0], local[1]))
            self._peers[transport] = uid
        return uid == self.uid

    def resolve(
        self, request: web.Request, op: Operation | None = None
    ) -> Principal | web.Response:
        headers = request.headers
        auth = headers.get("Authorization")
        bearer = auth[7:].strip() if auth and auth[:7].lower() == "bearer " else None
        api_key = headers.get("X-API-Key")
        if bearer or api_key:
            for secret, is_bearer in ((bearer, True), (api_key, False)):
                if secret:
                    who = self._match(secret, bearer=is_bearer)
                    if who is not None:
                        return who
            return refuse(op, "forbidden", "Wrong credentials (no such key, or revoked)")
        for resolver in self.resolvers:
            who = resolver(request)
            if who is not None:
                return who
        if not self.keys_configured:
            if self.open_local and is_loopback_host(request.remote or ""):
                return Principal("local", OWNER_ROLE, ALL, "open")
            if self._owner_by_peer(request):
                return Principal("owner", OWNER_ROLE, ALL, "peer", limited=False)
            return refuse(
                op,
                "unauthorized",
                "This daemon admits only its owner's user without credentials: send "
                "Authorization: Bearer <key> (a key from `research keys create`)",
            )
        return refuse(
            op,
            "unauthorized",
            "Credentials required: send Authorization: Bearer <key> or X-API-Key",
        )

    # -- may they, how often ---------------------------------------------------------------

    def admit(self, request: web.Request) -> web.Response | None:
        """None to let the request through, else the refusal (401, 403 or 429)."""
        route = request.match_info.route
        op = self.policies.get(route)
        if (op is not None and op.public) or route in self.public_routes:
            return None
        who = self.resolve(request, op)
        if isinstance(who, web.Response):
            return who
        request[PRINCIPAL] = who
        permission = op.permission if op is not None else None
        if not who.may(permission):
            return refuse(op, "forbidden", f"Role {who.role!r} lacks the {permission!r} permission")
        if self.limiter is None or not who.limited:
            return None
        client = who.id if who.source != "open" else f"addr:{request.remote}"
        verdict = self.limiter.check(client, op.rate_class if op is not None else None)
        if verdict is None:
            return None
        if not verdict.allowed:
            return refuse(
                op,
                "rate_limited",
                f"Rate limit reached ({verdict.limit} requests); retry after the window resets",
                headers=verdict.headers(),
            )
        request[_VERDICT] = verdict
        return None


ACCESS = web.AppKey("access", Access)


def refuse(
    op: Operation | None, code: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """A refusal in the envelope of the operation's surface (the daemon's by default)."""
    if op is None:
        return error_response(code, message, headers=headers)
    from localresearch.api.operations import daemon_envelope  # loaded with the operations

    if op.surface.envelope is daemon_envelope:
        return error_response(code, message, headers=headers)
    return web.json_response(
        op.surface.envelope(code, message), status=STATUS_BY_CODE[code], headers=headers
    )


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """X-RateLimit-* on every response a limit counted (on_response_prepare)."""
    verdict = request.get(_VERDICT)
    if verdict is not None:
        response.headers.update(verdict.headers())


def principal_of(request: web.Request) -> Principal | None:
    """Who made the request (None for public operations)."""
    return request.get(PRINCIPAL)
