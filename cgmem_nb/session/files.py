"""Writing files safely: new files with the usual mode, atomic replacement, OS errors that name
the user's path, and the temporary files of killed writers cleaned up.

:mod:`cgmem_nb.session.serialize` (the file formats) writes through these.

* :func:`write_new` creates a file that must not exist yet, with mode ``0666`` less the
  umask (``tempfile.mkstemp`` would make it ``0600``);
* :func:`temporary_name` names a hidden temporary file beside a target,
  ``.NAME.PID.RANDOM.tmp``; :func:`remove_stale_temporaries` removes those whose
  process is gone (a writer killed with ``kill -9``);
* :func:`write_atomically` writes through a temporary file and a rename;
* :func:`os_error` turns an ``OSError`` into an :class:`~cgmem_nb.errors.ExportError`
  naming the user's path (never the temporary file) with a hint.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from ..errors import ExportError

__all__ = ["os_error", "remove_stale_temporaries", "temporary_name", "unlink_quietly", "write_atomically", "write_new"]

_TMP_SUFFIX = ".tmp"


def temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (mode 0666 less the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def os_error(exc: OSError, what: str, path: Path | str) -> ExportError:
    reason = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
        errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
        errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to",
        errno.EROFS: "the file system is read-only; write elsewhere",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }.get(exc.errno or 0, "")
    return ExportError(f"cannot {what} {str(path)!r}: {reason}" + (f" ({hint})" if hint else ""))


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (mode 0666 less the
    umask). An OS error is an :class:`ExportError` naming ``path``; no temporary file stays."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, "create the folder of", target) from None
    tmp = temporary_name(target)
    try:
        write_new(tmp, text.encode("utf-8"))
        os.replace(tmp, target)
    except OSError as exc:
        unlink_quietly(tmp)
        raise os_error(exc, "write", target) from None
    except BaseException:
        unlink_quietly(tmp)
        raise


def remove_stale_temporaries(folder: Path) -> None:
    """Remove temporary files that a killed writer (a process no longer alive) left in ``folder``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        parts = entry.name.split(".")
        if not (entry.name.startswith(".") and entry.name.endswith(_TMP_SUFFIX) and len(parts) >= 5):
            continue
        try:
            pid = int(parts[-3])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        unlink_quietly(Path(entry.path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
