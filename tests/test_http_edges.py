"""What the HTTP parser refuses is answered in the envelope, and slow clients are cut off: raw
sockets against a real daemon process."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.daemon_fixture import DaemonHandle, daemon_env  # noqa: F401


@pytest.fixture
def daemon(daemon_env: DaemonHandle) -> Iterator[DaemonHandle]:  # noqa: F811
    daemon_env.env.update(
        LOCALRESEARCH_SERVER__IDLE_TIMEOUT="2", LOCALRESEARCH_SERVER__BODY_TIMEOUT="2"
    )
    daemon_env.start()
    yield daemon_env
    daemon_env.stop()


def _exchange(daemon: DaemonHandle, raw: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:  # type: ignore[type-arg]
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    return status, headers, body


def _envelope(status: int, headers: dict, body: bytes, want: int) -> str:  # type: ignore[type-arg]
    assert status == want, body
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    return str(error["message"])


@pytest.mark.slow
def test_parser_refusals_are_in_the_envelope(daemon: DaemonHandle) -> None:
    host = f"Host: 127.0.0.1:{daemon.port}\r\n"
    long_url = b"GET /api/memory/search?q=" + b"a" * 9000 + b" HTTP/1.1\r\n" + host.encode()
    message = _envelope(*_exchange(daemon, long_url + b"\r\n"), want=414)
    assert "POST /api/memory/search" in message
    big_header = b"GET /health HTTP/1.1\r\n" + host.encode() + b"X-Big: " + b"b" * 9000
    _envelope(*_exchange(daemon, big_header + b"\r\n\r\n"), want=414)
    _envelope(*_exchange(daemon, b"G(T / HTTP/1.1\r\n" + host.encode() + b"\r\n"), want=400)
    _envelope(*_exchange(daemon, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), 400)
    broken = b"POST /api/chat HTTP/1.1\r\n" + host.encode()
    broken += b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    _envelope(*_exchange(daemon, broken), want=400)
    # a method the parser does not know is a 400; a known one the route lacks, a 405
    _envelope(*_exchange(daemon, b"FOO /health HTTP/1.1\r\n" + host.encode() + b"\r\n"), 400)
    _envelope(
        *_exchange(
            daemon, b"PATCH /health HTTP/1.1\r\n" + host.encode() + b"Connection: close\r\n\r\n"
        ),
        405,
    )
    # the daemon is fine afterwards
    status, _, body = _exchange(
        daemon, b"GET /health HTTP/1.1\r\n" + host.encode() + b"Connection: close\r\n\r\n"
    )
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.slow
def test_slow_headers_idle_connections_and_slow_bodies_are_cut_off(daemon: DaemonHandle) -> None:
    # slowloris: a header line every half second never completes the request
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    sock.sendall(b"GET /health HTTP/1.1\r\n")
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 8:
        try:
            sock.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.5)
            if sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                closed = True
                break
        except BlockingIOError:
            continue
        except OSError:
            closed = True
            break
    sock.close()
    assert closed and time.monotonic() - start < 5, "a slow-header connection stayed open"

    # an idle connection that never sends anything
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as idle:
        start = time.monotonic()
        assert idle.recv(1) == b""
        assert time.monotonic() - start < 5

    # a body promised but trickled: 408 in the envelope
    host = f"Host: 127.0.0.1:{daemon.port}\r\n".encode()
    head = b"POST /api/chat HTTP/1.1\r\n" + host
    head += b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    message = _envelope(*_exchange(daemon, head, timeout=15), want=408)
    assert "body_timeout" in message


@pytest.mark.slow
def test_cli_sends_a_long_search_by_post(daemon: DaemonHandle) -> None:
    query = "homocysteine " * 800  # ~10 KB: as a URL it would be refused
    result = daemon.cli("memory", "search", query, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["query"] == query
    assert "Got more than" not in result.stdout + result.stderr
