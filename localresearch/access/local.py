"""The owner's own access without keys: a per-home credential file (mode 0600) that the CLI and
scripts read, and, for loopback connections, the peer socket's owner: asked of the kernel with
one sock_diag netlink query (~0.1 ms), else read from /proc/net/tcp{,6} (which walks every
socket of the machine: 2-25 ms here)."""

from __future__ import annotations

import os
import secrets
import socket
import struct
from pathlib import Path

CREDENTIAL_FILE = "credential"  # in the state directory, next to daemon.pid


def credential_path(state_dir: Path) -> Path:
    return state_dir / CREDENTIAL_FILE


def ensure_credential(path: Path) -> str:
    """The home's local credential, created once (0600, this user's only); a file that others
    could read or that another user owns is replaced."""
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077 == 0:
            token = path.read_text(encoding="ascii").strip()
            if len(token) >= 32:
                return token
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = "lrl_" + secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode("ascii") + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


def read_credential(path: Path) -> str | None:
    """The credential if this user can read it (the CLI and Client.from_environment)."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def _hex_address(host: str, port: int) -> tuple[str, str]:
    """An address as /proc/net/tcp{,6} writes it, and which of the two files lists it."""
    if ":" in host:
        raw = socket.inet_pton(socket.AF_INET6, host.split("%")[0])
        words = struct.unpack("<4I", raw)  # four host-order 32-bit words
        return "".join(f"{w:08X}" for w in words) + f":{port:04X}", "/proc/net/tcp6"
    (word,) = struct.unpack("<I", socket.inet_aton(host))
    return f"{word:08X}:{port:04X}", "/proc/net/tcp"


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NO_COOKIE = 0xFFFFFFFF


def _diag_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The owner of the client's socket (source = our peer, destination = us) by an exact
    sock_diag lookup; None if the kernel does not know it. OSError where netlink is missing."""
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET

    def address(host: str) -> bytes:
        return socket.inet_pton(family, host.split("%")[0]).ljust(16, b"\0")

    sockid = (
        struct.pack("!HH", peer[1], local[1])
        + address(peer[0])
        + address(local[0])
        + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
    )
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as link:
        link.settimeout(1.0)
        link.sendto(header + request, (0, 0))
        answer = link.recv(8192)
    if len(answer) < 16 or struct.unpack_from("=H", answer, 4)[0] == _NLMSG_ERROR:
        return None
    # inet_diag_msg: family, state, timer, retrans (4 bytes), the socket id (48), then
    # expires, rqueue, wqueue and uid (u32 each).
    if len(answer) < 16 + 4 + 48 + 16:
        return None
    return int(struct.unpack_from("=I", answer, 16 + 4 + 48 + 12)[0])


def peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the other end of a loopback TCP connection (Linux), or None if unknown."""
    try:
        return _diag_uid(peer, local)
    except (OSError, ValueError, struct.error):
        return _proc_uid(peer, local)


def _proc_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The same from /proc/net/tcp{,6}: the client's socket is the entry whose local address
    is our peer and whose remote address is us."""
    try:
        want_local, table = _hex_address(peer[0], peer[1])
        want_remote, _ = _hex_address(local[0], local[1])
    except (OSError, ValueError, struct.error):
        return None
    try:
        with open(table, encoding="ascii") as lines:
            next(lines, None)  # the header
            for line in lines:
                fields = line.split()
                if len(fields) > 7 and fields[1] == want_local and fields[2] == want_remote:
                    return int(fields[7])
    except (OSError, ValueError):
        return None
    return None
