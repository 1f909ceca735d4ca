"""Walking a source folder: supported files only; hidden and ignored ones skipped with reasons."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pathspec

from localresearch.memory.extract import SUPPORTED_SUFFIXES, suffix_of

MAX_FILE_BYTES = 50 * 1024 * 1024


class Found(NamedTuple):
    """A file to index: where it is and what its cheap change signature is (a named tuple and a
    string path: the walk makes one per file, and a Path costs more than the stat)."""

    path: str
    root: Path
    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out of the index, and why (shown by `reindex` and the API)."""

    path: str
    reason: str


_Rules = list[tuple[str, pathspec.GitIgnoreSpec]]


def _load_gitignore(directory: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())


def _ignored(rules: _Rules, rel: str, is_dir: bool) -> bool:
    """Git's rule: the deepest .gitignore with a matching pattern decides (negations included)."""
    for base, spec in reversed(rules):
        sub = rel[len(base) + 1 :] if base else rel
        result = spec.check_file(sub + "/" if is_dir else sub)
        if result.include is not None:
            return bool(result.include)
    return False


def _matches_glob(rel: str, globs: tuple[str, ...]) -> bool:
    if not globs:
        return True
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, g) or fnmatch.fnmatchcase(name, g) for g in globs)


def walk_source(
    root: Path, globs: tuple[str, ...] = (), max_bytes: int = MAX_FILE_BYTES
) -> Iterator[Found | Skipped]:
    """Every supported file under `root` (a folder or a single file), or why it was skipped."""
    try:
        top = root.stat()
    except OSError as exc:
        yield Skipped(str(root), f"unreadable: {exc.strerror or exc}")
        return
    if stat.S_ISREG(top.st_mode):
        yield from _consider(str(root), root.parent, root.name, top, max_bytes)
        return
    real_root = os.path.realpath(root)
    stack: list[tuple[Path, str, _Rules]] = [(root, "", [])]
    while stack:
        directory, prefix, rules = stack.pop()
        spec = _load_gitignore(directory)
        if spec is not None:
            rules = [*rules, (prefix, spec)]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(str(directory), f"unreadable: {exc.strerror or exc}")
            continue
        subdirs: list[tuple[Path, str, _Rules]] = []
        for entry in entries:
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.name.startswith("."):
                # A hidden file of a type never indexed (.DS_Store, our own .HEARTBEAT.md.lock)
                # is tools' bookkeeping: listing it on every reindex would only be noise.
                if entry.name != ".gitignore" and (
                    suffix_of(entry.name) in SUPPORTED_SUFFIXES or entry.is_dir()
                ):
                    yield Skipped(entry.path, "hidden")
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and entry.is_symlink():
                    if not entry.is_file():
                        yield Skipped(entry.path, "broken or special link")
                        continue
                    refusal = _link_refusal(entry.path, real_root)
                    if refusal:
                        yield Skipped(entry.path, refusal)
                        continue
            except OSError as exc:
                yield Skipped(entry.path, f"unreadable: {exc.strerror or exc}")
                continue
            if _ignored(rules, rel, is_dir):
                yield Skipped(entry.path, "ignored by .gitignore")
                continue
            if is_dir:
                if entry.is_symlink():
                    yield Skipped(entry.path, "symlinked folder (not followed)")
                else:
                    subdirs.append((Path(entry.path), rel, rules))
                continue
            if not _matches_glob(rel, globs):
                continue
            try:
                info = entry.stat()
            except OSError as exc:
                yield Skipped(entry.path, f"unreadable: {exc.strerror or exc}")
                continue
            yield from _consider(entry.path, root, rel, info, max_bytes)
        stack.extend(reversed(subdirs))


def _link_refusal(path: str, real_root: str) -> str:
    """Why a symlinked file is left out: its target leaves the source folder, or lies in a
    hidden folder (a link must not reach what the walk itself never enters, like ~/.ssh)."""
    target = os.path.realpath(path)
    if os.path.commonpath([target, real_root]) != real_root:
        return "link points outside the source folder"
    inside = os.path.relpath(target, real_root).split(os.sep)
    if any(part.startswith(".") for part in inside):
        return "link points into a hidden file or folder"
    return ""


def _consider(
    path: str, root: Path, rel: str, info: os.stat_result, max_bytes: int
) -> Iterator[Found | Skipped]:
    suffix = suffix_of(path)
    if not stat.S_ISREG(info.st_mode):
        yield Skipped(path, "not a regular file")
    elif suffix not in SUPPORTED_SUFFIXES:
        yield Skipped(path, f"unsupported type ({suffix or 'no suffix'})")
    elif info.st_size > max_bytes:
        yield Skipped(path, f"too large ({info.st_size} bytes > {max_bytes})")
    else:
        yield Found(path, root, rel, info.st_size, info.st_mtime_ns)
