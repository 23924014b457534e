"""Writing an output file whole or not at all: into a temporary file beside it, then renamed over
it (`os.replace` is atomic on one file system), so an interrupted or failed run never leaves a
half-written file, nor destroys the file it was to replace."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_whole(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` writes the content to a temporary path in `path`'s directory (same suffix, for
    writers that go by it), which then replaces `path`; on any failure the temporary file is removed
    and `path` is left as it was. OSError propagates."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent or ".")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
