"""The owner's own access without keys: a per-home credential file (mode 0600) that the CLI and
scripts read, and, for loopback connections, the peer socket's owner from /proc/net/tcp."""

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


def peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the other end of a loopback TCP connection (Linux), or None if unknown:
    the client's socket is the entry whose local address is our peer and whose remote address
    is us."""
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
