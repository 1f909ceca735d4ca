"""Where localresearch keeps its files: platformdirs, or one folder under LOCALRESEARCH_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "localresearch"
HOME_ENV = "LOCALRESEARCH_HOME"


@dataclass(frozen=True)
class Paths:
    """The directories and files of one installation; tests point them at a temp dir."""

    config_dir: Path
    data_dir: Path
    state_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def database(self) -> Path:
        return self.data_dir / "localresearch.db"

    @property
    def default_workspace(self) -> Path:
        return self.data_dir / "workspace"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "daemon.pid"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "daemon.lock"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "daemon.log"

    def problem(self) -> str | None:
        """Why these directories cannot be used (one of them, or a folder above it, is a file),
        or None. Commands check it first, so that it is told in one line."""
        for directory in (self.config_dir, self.data_dir, self.state_dir):
            for path in (directory, *directory.parents):
                if path.is_dir():
                    break
                if path.exists() or path.is_symlink():
                    home = os.environ.get(HOME_ENV)
                    where = f"{HOME_ENV}={home}: " if home else ""
                    inside = "" if path == directory else f" (files go in {directory})"
                    return f"{where}{path} is not a directory{inside}"
        return None

    def ensure(self) -> None:
        """Create the directories (private to the user) before first use."""
        for directory in (self.config_dir, self.data_dir, self.state_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def resolve_paths(env: dict[str, str] | None = None) -> Paths:
    """LOCALRESEARCH_HOME wins so that tests and scripts are isolated from the user's files."""
    environ = os.environ if env is None else env
    home = environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(config_dir=root, data_dir=root / "data", state_dir=root / "state")
    import platformdirs

    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
        state_dir=Path(platformdirs.user_state_dir(APP_NAME)),
    )
