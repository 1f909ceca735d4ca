"""Start, stop and inspect the detached daemon process."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from localresearch.config import Config
from localresearch.daemon.locate import url_for
from localresearch.daemon.logs import tail
from localresearch.daemon.pidfile import remove_pid_file, running_daemon
from localresearch.loopback import is_loopback_host
from localresearch.paths import Paths

START_TIMEOUT = 20.0


class DaemonError(Exception):
    """A lifecycle failure with everything the user needs to fix it."""


@dataclass(frozen=True)
class StartResult:
    pid: int
    url: str
    already_running: bool
    seconds: float


def check_bind(config: Config) -> None:
    bind = config.server.bind
    if not is_loopback_host(bind) and not config.server.allow_remote:
        raise DaemonError(
            f"server.bind = {bind!r} is not a loopback address. The API has no authentication by "
            "default; set server.allow_remote = true to bind it anyway "
            "(and consider api.key_env)."
        )


def port_in_use(bind: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _who_listens(port: int) -> str:
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN
            if conn.laddr and conn.laddr.port == port and listening and conn.pid:
                name = psutil.Process(conn.pid).name()
                return f" (by {name}, pid {conn.pid})"
    except (psutil.Error, OSError):
        pass
    return ""


def _health(url: str, timeout: float = 0.5) -> bool:
    from localresearch.client import Client

    return Client(url, timeout=timeout).health()


def start_daemon(config: Config, paths: Paths, *, port: int | None = None) -> StartResult:
    """Fork the server detached and return once /health answers; explain any failure."""
    began = time.monotonic()
    paths.ensure()
    running = running_daemon(paths.pid_file)
    if running is not None:
        return StartResult(int(running["pid"]), str(running["url"]), True, 0.0)
    check_bind(config)
    port = port or config.server.port
    if config.server.enabled and port_in_use(config.server.bind, port):
        raise DaemonError(
            f"Port {port} on {config.server.bind} is already in use{_who_listens(port)}. "
            "Choose another with --port N or `research config set server.port N`."
        )
    pid = _spawn(config, paths, port)
    url = url_for(config.server.bind, port)
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.01
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            raise DaemonError(_startup_failure(paths, f"the daemon exited with status {code}"))
        if config.server.enabled and _health(url):
            return StartResult(pid, url, False, time.monotonic() - began)
        if not config.server.enabled and running_daemon(paths.pid_file) is not None:
            return StartResult(pid, "", False, time.monotonic() - began)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    os.kill(pid, signal.SIGTERM)
    raise DaemonError(_startup_failure(paths, f"no answer on {url}/health in {START_TIMEOUT:.0f}s"))


def _spawn(config: Config, paths: Paths, port: int) -> int:
    """Fork the daemon: the child detaches (new session, stdio to daemon.out) and serves.

    Forking skips a second interpreter start-up and re-import, which is most of start-to-healthy.
    """
    out_file = paths.state_dir / "daemon.out"
    out_fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        os.close(out_fd)
        return pid
    code = 0
    try:
        os.setsid()
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.environ["LOCALRESEARCH_DETACHED"] = "1"
        from localresearch.daemon.serve import ServeError, serve_forever

        try:
            serve_forever(config, paths, port, foreground=False)
        except ServeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _startup_failure(paths: Paths, reason: str) -> str:
    lines = tail(paths.state_dir / "daemon.out", 15) or tail(paths.log_file, 15)
    detail = "\n".join(f"  {line}" for line in lines)
    message = f"The daemon failed to start: {reason}."
    if detail:
        message += f"\nLast lines of its output ({paths.log_file}):\n{detail}"
    return message


def stop_daemon(paths: Paths, *, timeout: float) -> dict[str, Any] | None:
    """SIGTERM, wait, then SIGKILL; returns the stopped daemon's record (None if none ran)."""
    import psutil

    info = running_daemon(paths.pid_file)
    if info is None:
        return None
    pid = int(info["pid"])
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        _gone, alive = psutil.wait_procs([process], timeout=timeout)
        if alive:
            process.kill()
            psutil.wait_procs([process], timeout=5)
            info["killed"] = True
    except psutil.NoSuchProcess:
        pass
    remove_pid_file(paths.pid_file, only_pid=pid)
    return info


def daemon_status(paths: Paths) -> dict[str, Any]:
    """Running or not; with pid, URL, version and uptime when it answers."""
    info = running_daemon(paths.pid_file)
    if info is None:
        return {"running": False, "pid": None, "url": None, "version": None, "uptime_seconds": None}
    result: dict[str, Any] = {
        "running": True,
        "pid": info["pid"],
        "url": info["url"],
        "version": info.get("version"),
        "uptime_seconds": None,
        "responding": False,
    }
    if not info.get("url"):
        result["http"] = False  # server.enabled = false: heartbeat and watcher only
        return result
    from localresearch.client import Client, ClientError

    try:
        status = Client(str(info["url"]), timeout=2.0).status()
    except ClientError:
        return result
    result.update(
        responding=True,
        version=status.get("version"),
        uptime_seconds=status.get("uptime_seconds"),
        model=status.get("model"),
        memory=status.get("memory"),
        heartbeat=status.get("heartbeat"),
    )
    return result


def ensure_running(config: Config, paths: Paths) -> tuple[str, bool]:
    """The daemon's URL, starting it first if needed; the flag says whether it was started."""
    result = start_daemon(config, paths)
    return result.url, not result.already_running
