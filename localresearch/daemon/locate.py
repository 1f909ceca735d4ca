"""Where the daemon of this installation listens, without importing the server."""

from __future__ import annotations

import os

from localresearch.paths import resolve_paths


def url_for(bind: str, port: int) -> str:
    host = "127.0.0.1" if bind in ("0.0.0.0", "") else ("[::1]" if bind == "::" else bind)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def daemon_url() -> str:
    """The URL from the pid file of a running daemon, else from the config."""
    from localresearch.daemon.pidfile import read_pid_file

    paths = resolve_paths()
    info = read_pid_file(paths.pid_file)
    if info is not None and info.get("url"):
        return str(info["url"])
    from localresearch.config import load_config

    config = load_config(paths.config_file)
    return url_for(config.server.bind, config.server.port)


def api_key() -> str | None:
    """The credential to send: the key in the variable `[api].key_env` names, if set, else the
    home's local credential (written by the daemon, mode 0600, readable by its user only)."""
    from localresearch.access.local import credential_path, read_credential
    from localresearch.config import ConfigError, load_config

    paths = resolve_paths()
    try:
        key_env = load_config(paths.config_file).api.key_env
    except ConfigError:  # the command that needs the config reports it; the owner's file works
        key_env = ""
    if key_env and os.environ.get(key_env):
        return os.environ[key_env]
    return read_credential(credential_path(paths.state_dir))
