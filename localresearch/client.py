"""The one client of the daemon's HTTP API: used by the CLI, and a public Python API for scripts.

from localresearch.client import Client
client = Client.from_environment()
print(client.status()["version"])
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

from localresearch.events import Event


class ClientError(Exception):
    """Base of the errors this client raises."""


class DaemonNotRunning(ClientError):
    """Nothing answers at the daemon's address."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"The localresearch daemon is not running at {url}. "
            "Start it with: research daemon start"
        )
        self.url = url


class APIRequestError(ClientError):
    """The daemon answered with the error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class Client:
    """Blocking HTTP client (stdlib only, so the CLI starts fast)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, api_key: str | None = None) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.api_key = api_key

    @classmethod
    def from_environment(cls, *, timeout: float = 30.0) -> Client:
        """The daemon of this installation (config file + LOCALRESEARCH_* environment)."""
        from localresearch.daemon.locate import api_key, daemon_url

        return cls(daemon_url(), timeout=timeout, api_key=api_key())

    # -- transport -------------------------------------------------------------------------

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "localresearch-client"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if extra:
            headers.update(extra)
        return headers

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = -1.0,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        if params:
            clean = {k: v for k, v in params.items() if v is not None}
            path = f"{path}?{urlencode(clean, doseq=True)}"
        body = None
        hdrs = self._headers(headers)
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        conn = self._connection(self.timeout if timeout == -1.0 else timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            response = conn.getresponse()
        except (ConnectionRefusedError, socket.gaierror, FileNotFoundError) as exc:
            conn.close()
            raise DaemonNotRunning(self.base_url) from exc
        except OSError as exc:
            conn.close()
            if isinstance(exc, ConnectionError):
                raise DaemonNotRunning(self.base_url) from exc
            raise
        return conn, response

    @staticmethod
    def _raise_for(response: http.client.HTTPResponse, raw: bytes) -> None:
        if response.status < 400:
            return
        try:
            error = json.loads(raw)["error"]
            raise APIRequestError(response.status, str(error["code"]), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            text = raw.decode(errors="replace").strip()[:300]
            raise APIRequestError(response.status, "http_error", text or response.reason) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        """One JSON request; returns the decoded body (None for 204)."""
        conn, response = self._open(method, path, params=params, json_body=json, timeout=timeout)
        try:
            raw = response.read()
        finally:
            conn.close()
        self._raise_for(response, raw)
        if response.status == 204 or not raw:
            return None
        return _json_loads(raw)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, *, timeout: float | None = -1.0) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, timeout=timeout)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Server-Sent Events as Event objects (ids kept, keep-alive comments skipped)."""
        hdrs = {"Accept": "text/event-stream"}
        hdrs.update(headers or {})
        conn, response = self._open(
            method, path, params=params, json_body=json, headers=hdrs, timeout=None
        )
        try:
            if response.status >= 400:
                self._raise_for(response, response.read())
            yield from parse_sse(response)
        finally:
            conn.close()

    # -- status ----------------------------------------------------------------------------

    def health(self) -> bool:
        try:
            return bool(self.get("/health").get("status") == "ok")
        except ClientError:
            return False

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/status")
        return result

    # --- memory ---

    # --- chat ---

    # --- research ---

    # --- heartbeat ---


def _json_loads(raw: bytes) -> Any:
    return json.loads(raw)


def parse_sse(lines: Any) -> Iterator[Event]:
    """Parse an SSE byte stream (an iterable of lines) into Events."""
    data: list[str] = []
    event_id: int | None = None
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n") if isinstance(raw, bytes) else raw.rstrip("\r\n")
        if not line:
            if data:
                payload = json.loads("\n".join(data))
                yield Event.from_dict(payload, id=event_id)
            data, event_id = [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            try:
                event_id = int(value)
            except ValueError:
                event_id = None
    if data:
        yield Event.from_dict(json.loads("\n".join(data)), id=event_id)
