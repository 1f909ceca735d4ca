"""The Client keeps its connection alive between requests, and still copes when the daemon has
closed it: a restart, an idle timeout, or a connection dropped while a request was on it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from localresearch.client import Client, DaemonNotRunning

SSE = (
    b'data: {"type":"start","data":{},"timestamp":""}\n\n'
    b'data: {"type":"delta","data":{"text":"hi"},"timestamp":""}\n\n'
    b'data: {"type":"done","data":{"response":"hi"},"timestamp":""}\n\n'
)


class TinyDaemon:
    """An HTTP/1.1 server on loopback that keeps connections alive and records, per request,
    which connection carried it; `drop_on` makes it hang up on the n-th request of a
    connection without answering (as a daemon that closed an idle connection)."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.seen: list[tuple[int, str, bytes]] = []  # (connection number, request line, body)
        self.connections = 0
        self.drop_on: int | None = None
        self.first_reads: list[bytes] = []
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(sock)
            number = self.connections
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        buffer = b""
        count = 0
        with sock:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    if not buffer and count == 0:
                        self.first_reads.append(data)
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                count += 1
                if self.drop_on == count:
                    return  # hang up without answering
                self.seen.append((number, lines[0], body))
                if "/stream" in lines[0]:
                    sock.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                        + f"{len(SSE):x}\r\n".encode()
                        + SSE
                        + b"\r\n0\r\n\r\n"
                    )
                    continue
                payload = json.dumps({"status": "ok", "n": count}).encode()
                sock.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )

    def close(self) -> None:
        """Stop listening and close every open connection (a daemon going away)."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.listener.close()
        self._thread.join(5)
        for sock in self._open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def tiny() -> Iterator[TinyDaemon]:
    server = TinyDaemon()
    yield server
    server.close()


def test_requests_share_one_connection(tiny: TinyDaemon) -> None:
    with Client(f"http://127.0.0.1:{tiny.port}") as client:
        for _ in range(3):
            assert client.get("/health")["status"] == "ok"
        assert client.post("/api/x", {"a": 1})["status"] == "ok"
    assert tiny.connections == 1
    assert [number for number, _, _ in tiny.seen] == [1, 1, 1, 1]


def test_headers_and_body_go_out_in_one_write(tiny: TinyDaemon) -> None:
    client = Client(f"http://127.0.0.1:{tiny.port}")
    client.post("/api/x", {"message": "hello"})
    client.close()
    assert tiny.first_reads[0].endswith(b'{"message": "hello"}')


def test_a_fully_read_stream_leaves_the_connection_reusable(tiny: TinyDaemon) -> None:
    client = Client(f"http://127.0.0.1:{tiny.port}")
    events = list(client.stream("POST", "/api/chat/stream", json={"message": "q"}))
    assert [e.type for e in events] == ["start", "delta", "done"]
    assert events[1].data == {"text": "hi"}
    assert client.get("/health")["status"] == "ok"
    client.close()
    assert tiny.connections == 1


def test_a_stream_left_early_closes_its_connection(tiny: TinyDaemon) -> None:
    client = Client(f"http://127.0.0.1:{tiny.port}")
    events = client.stream("POST", "/api/chat/stream", json={"message": "q"})
    assert next(iter(events)).type == "start"
    events.close()  # type: ignore[attr-defined]
    assert client.get("/health")["status"] == "ok"
    client.close()
    assert tiny.connections == 2


def test_a_restarted_daemon_is_reached_on_a_new_connection() -> None:
    first = TinyDaemon()
    port = first.port
    client = Client(f"http://127.0.0.1:{port}")
    assert client.get("/health")["n"] == 1
    first.close()
    second = TinyDaemon(port)
    try:
        # The kept connection is dead (the old daemon closed it): a new one is opened.
        assert client.post("/api/x", {"after": "restart"})["n"] == 1
        assert second.connections == 1
    finally:
        client.close()
        second.close()


def test_a_stopped_daemon_is_reported_as_not_running() -> None:
    server = TinyDaemon()
    client = Client(f"http://127.0.0.1:{server.port}")
    client.get("/health")
    server.close()
    with pytest.raises(DaemonNotRunning):
        client.get("/health")


def test_a_read_dropped_on_a_kept_connection_is_sent_again(tiny: TinyDaemon) -> None:
    client = Client(f"http://127.0.0.1:{tiny.port}")
    client.get("/health")
    tiny.drop_on = 2  # the daemon hangs up on the kept connection's next request
    assert client.get("/health")["n"] == 1  # answered on a new connection
    client.close()
    assert tiny.connections == 2


def test_a_write_dropped_on_a_kept_connection_is_not_sent_twice(tiny: TinyDaemon) -> None:
    client = Client(f"http://127.0.0.1:{tiny.port}")
    client.get("/health")
    tiny.drop_on = 2
    # The request reached the daemon before the connection went: repeating it could act
    # twice (a chat answered and logged twice), so the failure is reported instead.
    with pytest.raises(DaemonNotRunning):
        client.post("/api/chat", {"message": "once"})
    client.close()
    assert not [line for _, line, _ in tiny.seen if "/api/chat" in line]
    assert tiny.connections == 1
