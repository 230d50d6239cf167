"""Files appear whole or not at all: written beside the target, then renamed onto it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path with the target's suffix (writers that pick the format from the
    name still work); it becomes `path` only if the block finishes, with the usual permissions."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # mkdir's own words: "File exists: 'a.jpg'"
        above = next(p for p in [path.parent, *path.parent.parents] if p.exists())
        raise NotADirectoryError(f"cannot write {path}: {above} is a file, not a folder") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    except OSError as e:  # its own words name the temporary file: "Permission denied: 'out/.a.x70o.jpg'"
        raise OSError(f"cannot write {path}: {e.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
