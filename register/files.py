"""Files flow-register writes on the user's disk: never through a symbolic link.

A repository can hold symbolic links that its author committed (`.flow-register -> ~`, a dangling
`server.log -> ~/.config/...pth`). A write that followed one would land where that author chose, so every
file flow-register writes is opened with O_NOFOLLOW in a folder checked to be a real folder, and a file
it creates anew with O_EXCL (a dangling link counts as taken). Files of the image stage are not here: it
builds from a private temporary folder and writes nothing into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path


class LinkRefused(OSError):
    """A path flow-register would write through is a symbolic link."""


def real_folder(path: Path, *, top: Path | None = None) -> Path:
    """`path` as a real folder, created when missing. Refused when it is a link, or when one of the folders
    between `top` (a folder the user chose, e.g. the repository) and it is: a committed link could lead
    anywhere."""
    path = Path(path).absolute()
    between = [path]
    if top is not None and path.is_relative_to(Path(top).absolute()):
        between = [path, *[p for p in path.parents if p.is_relative_to(Path(top).absolute()) and p != Path(top).absolute()]]
    for folder in between:
        if folder.is_symlink():
            raise LinkRefused(f"{folder} is a symbolic link; flow-register writes only into real folders")
    for folder in reversed(between):
        if not os.path.lexists(folder):
            os.mkdir(folder)
    path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        raise LinkRefused(f"{path} is not a real folder; flow-register writes only into real folders")
    return path


def open_for_writing(path: Path, *, append: bool = False, new: bool = False, mode: int = 0o644) -> int:
    """A file descriptor of `path` for writing, never through a symbolic link (`new`: only if nothing is
    there, not even a dangling link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else 0)
    flags |= os.O_EXCL if new else (0 if append else os.O_TRUNC)
    try:
        return os.open(path, flags, mode)
    except OSError:
        if os.path.islink(path):
            raise LinkRefused(f"{path} is a symbolic link; flow-register does not write through it") from None
        raise


def write_text(path: Path, text: str, *, new: bool = False) -> None:
    with os.fdopen(open_for_writing(path, new=new), "w", encoding="utf-8") as out:
        out.write(text)
