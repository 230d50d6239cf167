"""Files appear whole or not at all: written beside the target, then renamed onto it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NAME_MAX = 255  # bytes in one file name: ext4, APFS, XFS and Btrfs alike


def cut_to_fit(stem: str, rest: str) -> str:
    """`stem`, cut by whole characters so that `stem + rest` fits in NAME_MAX bytes: a long
    name (80 Japanese characters are 240 bytes) failed with "File name too long" once `_style`
    was added, or only for the temporary file beside it."""
    while stem and len((stem + rest).encode(errors="surrogateescape")) > NAME_MAX:
        stem = stem[:-1]
    return stem


@contextmanager
def atomic_write(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yields a temporary path with the target's suffix (writers that pick the format from the
    name still work); it becomes `path` only if the block finishes, with the usual permissions.
    `replace=False`: FileExistsError if `path` appeared meanwhile (another run writing that name)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # mkdir's own words: "File exists: 'a.jpg'"
        above = next(p for p in [path.parent, *path.parent.parents] if p.exists())
        raise NotADirectoryError(f"cannot write {path}: {above} is a file, not a folder") from None
    except OSError as e:  # a read-only disk: a video's line was "[Errno 30] Read-only file system: 'stylized'"
        raise OSError(f"cannot write {path} ({e.strerror})") from None
    try:
        stem = cut_to_fit(path.stem, f"..{'x' * 8}{path.suffix}")  # mkstemp's 8 random characters
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.", suffix=path.suffix)
    except OSError as e:  # its own words name the temporary file: "Permission denied: 'out/.a.x70o.jpg'"
        raise OSError(f"cannot write {path} ({e.strerror})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600)
        if replace:
            os.replace(tmp, path)
        else:
            _create(Path(tmp), path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _create(tmp: Path, path: Path) -> None:
    """`tmp` becomes `path` only where no file has that name, in one step: two runs writing one
    name had each checked that it was free, and the later one's rename removed the earlier's file."""
    try:
        os.link(tmp, path)  # fails where `path` exists, however it got there
        return
    except FileExistsError:
        pass
    except OSError:  # no hard links here (FAT, some network shares): checked, then renamed
        if not path.exists():
            os.replace(tmp, path)
            return
    raise FileExistsError(f"output {path} appeared while this run wrote it (another run?); kept it "
                          "(pass --overwrite to replace it)")
