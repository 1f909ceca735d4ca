"""Start, stop and inspect the detached daemon process."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localresearch.daemon.locate import url_for
from localresearch.daemon.lock import HomeLock
from localresearch.daemon.pidfile import read_pid_file, remove_pid_file, running_daemon
from localresearch.paths import Paths

if TYPE_CHECKING:
    from localresearch.config import Config

START_TIMEOUT = 20.0


class DaemonError(Exception):
    """A lifecycle failure with everything the user needs to fix it."""


@dataclass(frozen=True)
class StartResult:
    """What `daemon start` reports: the pid and URL, and whether it was already running."""

    pid: int
    url: str
    already_running: bool
    seconds: float


def check_bind(config: Config) -> None:
    from localresearch.config.checks import bind_problem

    problem = bind_problem(config.server.bind, config.server.allow_remote)
    if problem:
        raise DaemonError(f"server.bind = {problem}.")


def port_in_use_message(host: str, port: int, *, by_another: bool = False) -> str:
    """What start says when the port is taken (naming the program that holds it, if known);
    `by_another`: what other commands say when it is not this home's daemon that holds it."""
    if by_another:
        return (
            f"Port {port} on {host} is already in use{_who_listens(port)}, not by the "
            "localresearch daemon. Choose another with `research daemon start --port N` or "
            "`research config set server.port N`."
        )
    return (
        f"Port {port} on {host} is already in use{_who_listens(port)}. "
        "Choose another with --port N or `research config set server.port N`."
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


@dataclass
class _Early:
    """A daemon forked before the CLI imported click (see fork_early), waiting for its config."""

    paths: Paths
    lock: HomeLock
    child: _Child
    began: float


_EARLY: list[_Early] = []


def fork_early(args: list[str]) -> None:
    """For `research daemon start ARGS`: take the home's lock and fork the daemon now, before
    the CLI imports click and its commands, so the child imports the server meanwhile.

    The CLI then parses the command as usual and start_daemon hands the child its config; a
    command that ends without doing so (a usage error) kills the child at exit. Nothing is forked
    when a pid file exists (a daemon may run: the ordinary start checks it) or the lock is
    taken (another starter, or a daemon)."""
    if {"--help", "-h", "--foreground"} & set(args):
        return
    from localresearch.paths import resolve_paths

    began = time.monotonic()
    paths = resolve_paths()
    lock = HomeLock(paths.lock_file)
    try:
        if paths.pid_file.exists():
            return
        paths.ensure()
        if not lock.try_acquire():
            return
    except OSError:
        return  # the ordinary start meets it again and reports it
    try:
        child = _fork_child(paths)
    except BaseException:
        lock.release()
        raise
    _EARLY.append(_Early(paths, lock, child, began))
    import atexit

    atexit.register(_abort_early)


def _abort_early() -> None:
    """Kill an early child that was never given its config (before it bound anything)."""
    while _EARLY:
        early = _EARLY.pop()
        early.child.abort()
        early.lock.release()


def start_daemon(
    paths: Paths, load_config: Callable[[], Config], *, port: int | None = None
) -> StartResult:
    """Fork the server detached and return once /health answers; explain any failure.

    The child imports the server while this process loads and checks the configuration (the
    two slowest parts of start-up overlap on two cores); it binds only once sent a good config.
    """
    early = next((e for e in _EARLY if e.paths == paths), None)
    if early is not None:
        _EARLY.remove(early)
        try:
            return _start_locked(paths, load_config, port, early.began, early.child)
        finally:
            early.lock.release()  # the daemon holds its own copy for its life
    began = time.monotonic()
    paths.ensure()
    lock = HomeLock(paths.lock_file)
    running = _wait_for_winner(paths, lock, began + START_TIMEOUT)
    if running is not None:
        return StartResult(int(running["pid"]), str(running["url"]), True, 0.0)
    try:
        return _start_locked(paths, load_config, port, began)
    finally:
        lock.release()  # the daemon holds its own copy for its life


def _wait_for_winner(paths: Paths, lock: HomeLock, deadline: float) -> dict[str, Any] | None:
    """The running daemon's record, waiting while another starter brings one up; None once
    this process holds the home's lock (and so is the one to start it)."""
    while True:
        # Only the lock's holder judges a pid file stale: a waiter that removed the record of a
        # daemon it misjudged would wait out the deadline for a daemon that already answers.
        running = read_pid_file(paths.pid_file)
        if running is not None and running.get("url") and _health(str(running["url"])):
            return running
        if running is not None and not running.get("url") and running_daemon(paths.pid_file):
            return running
        if lock.try_acquire():
            # A daemon holds the lock for its life: holding it means none runs here, so a
            # pid file left now is stale (e.g. a daemon without the lock, or a reused pid).
            return None
        if time.monotonic() > deadline:
            raise DaemonError(
                f"another daemon is starting in {paths.state_dir} (it holds "
                f"{paths.lock_file}) and did not answer within {START_TIMEOUT:.0f}s"
            )
        time.sleep(0.05)


def _start_locked(
    paths: Paths,
    load_config: Callable[[], Config],
    port: int | None,
    began: float,
    child: _Child | None = None,
) -> StartResult:
    if child is None:
        child = _fork_child(paths)
    port_option = port
    try:
        config = load_config()
        check_bind(config)
        port = port or config.server.port
        if config.server.enabled and port_in_use(config.server.bind, port):
            raise DaemonError(port_in_use_message(config.server.bind, port))
        child.go(config, port)
    except BaseException:
        child.abort()
        raise
    url = url_for(config.server.bind, port) if config.server.enabled else ""
    import localresearch.client  # noqa: F401  (for _health, while the child still starts)

    if not child.wait_ready(START_TIMEOUT):
        code = child.reap()
        if code is None:
            child.abort()
            reason = f"it did not report ready in {START_TIMEOUT:.0f}s"
        else:
            reason = f"the daemon exited with status {code}"
        raise DaemonError(_startup_failure(paths, reason))
    if url and not _health(url, timeout=START_TIMEOUT):
        child.abort()
        raise DaemonError(_startup_failure(paths, f"it listens on {url} but /health failed"))
    _remember_port_option(paths, port_option)
    return StartResult(child.pid, url, False, time.monotonic() - began)


def _port_option_file(paths: Paths) -> Path:
    return paths.state_dir / "daemon.port"


def _remember_port_option(paths: Paths, port: int | None) -> None:
    """Record the --port the daemon was started with (none: the config's), for `restart`."""
    with contextlib.suppress(OSError):
        if port is None:
            _port_option_file(paths).unlink(missing_ok=True)
        else:
            _port_option_file(paths).write_text(f"{port}\n", encoding="utf-8")


def restart_port(paths: Paths, stopped: dict[str, Any] | None) -> int | None:
    """The port `restart` starts on without --port: the one the stopped daemon was given with
    `start --port N`, else None (the config's, so a changed server.port applies)."""
    try:
        option = int(_port_option_file(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return option if stopped is not None and stopped.get("port") == option else None


_READY = b"1"


class _Child:
    """The forked daemon seen from the parent: one pipe sends it its config, one says it serves."""

    def __init__(self, pid: int, go_fd: int, ready_fd: int) -> None:
        self.pid = pid
        self.go_fd: int | None = go_fd
        self.ready_fd: int | None = ready_fd

    def go(self, config: Config, port: int) -> None:
        assert self.go_fd is not None
        fd, self.go_fd = self.go_fd, None
        with os.fdopen(fd, "wb") as pipe:
            pickle.dump((config, port), pipe)

    def wait_ready(self, timeout: float) -> bool:
        """True once the child reports it serves; False if it died first or time ran out."""
        assert self.ready_fd is not None
        fd, self.ready_fd = self.ready_fd, None
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            readable, _, _ = select.select([pipe], [], [], timeout)
            return bool(readable) and pipe.read(1) == _READY

    def reap(self) -> int | None:
        """The exit code of a child that died (waiting briefly for its exit); None if it runs."""
        deadline = time.monotonic() + 2.0
        while True:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

    def abort(self) -> None:
        """Kill the child (before `go` it has bound nothing) and reap it."""
        for fd in (self.go_fd, self.ready_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.go_fd = self.ready_fd = None
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def _fork_child(paths: Paths) -> _Child:
    """Fork the daemon: the child detaches (new session, stdio to daemon.out), imports the
    server, waits for its config and serves.

    Forking skips a second interpreter start-up; importing before the config arrives overlaps
    the child's imports with the parent's config checks.
    """
    out_file = paths.state_dir / "daemon.out"
    out_fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    go_read, go_write = os.pipe()
    ready_read, ready_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        for fd in (out_fd, go_read, ready_write):
            os.close(fd)
        return _Child(pid, go_write, ready_read)
    code = 0
    try:
        os.close(go_write)
        os.close(ready_read)
        os.setsid()
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.environ["LOCALRESEARCH_DETACHED"] = "1"
        from localresearch.daemon.serve import ServeError, preload, serve_forever

        preload()
        with os.fdopen(go_read, "rb") as pipe:
            message = pipe.read()
        if not message:  # the parent found a problem, and reports it
            os._exit(0)
        config, port = pickle.loads(message)

        def ready() -> None:
            os.write(ready_write, _READY)
            os.close(ready_write)

        try:
            # The home's lock came with the fork: this process holds it until it exits.
            serve_forever(config, paths, port, foreground=False, on_ready=ready, locked=True)
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
    from localresearch.daemon.logs import tail

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
    from localresearch.daemon.locate import api_key

    try:
        status = Client(str(info["url"]), timeout=2.0, api_key=api_key()).status()
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


def ensure_running(paths: Paths, load_config: Callable[[], Config]) -> tuple[str, bool]:
    """The daemon's URL, starting it first if needed; the flag says whether it was started."""
    result = start_daemon(paths, load_config)
    return result.url, not result.already_running
