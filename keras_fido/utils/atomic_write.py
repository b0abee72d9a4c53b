"""Writes that a killed process cannot leave half done.

Everything is written into a temporary sibling of its destination (same
directory, so same file system) and renamed into place at the end. A
rename is atomic on POSIX file systems: a reader, or the next run after a
crash, sees the previous file or directory or the new one, never a mix.

A directory cannot be swapped by one rename over a non-empty directory,
so `replace_directory` renames the old one to a backup sibling, the new
one into place, then deletes the backup. A kill between the two renames
leaves only the backup; `restore_interrupted` (run before loading) moves
it back.
"""

import contextlib
import os
import shutil
import threading

_active = threading.local()


def _sibling(path, tag):
    head, name = os.path.split(os.path.abspath(path))
    return os.path.join(head, f".{name}.{tag}")


def backup_path(path):
    """Where `replace_directory` keeps the old `path` while it swaps."""
    return _sibling(path, "backup")


def restore_interrupted(path):
    """Undoes a directory swap cut short by a crash.

    If `path` is missing but its backup exists (the kill fell between the
    two renames), the backup, a complete old copy, is renamed back. If
    both exist, the swap had finished and the backup is deleted.
    """
    if not isinstance(path, (str, os.PathLike)):
        return
    backup = backup_path(path)
    if not os.path.isdir(backup):
        return
    if os.path.exists(path):
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(backup, path)


def _remove_stale(head, prefix):
    """Deletes what killed writers left: `prefix<pid>...` entries in
    `head` whose process is gone (a live writer's are left alone)."""
    for name in os.listdir(head):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        stale = os.path.join(head, name)
        if os.path.isdir(stale):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(stale)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - e.g. another user's process
        return True
    return True


def _fsync_tree(directory):
    """Flushes every file under `directory` to disk before the rename, so
    that a power cut cannot leave a renamed but empty file either."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _keep_unwritten(old, new):
    """Hard-links (or copies) into `new` the files of `old` that the new
    save did not write, so that saving one part of a preset (a backbone)
    into a directory keeps the other parts (a tokenizer) as before."""
    for root, _, files in os.walk(old):
        relative = os.path.relpath(root, old)
        target_root = os.path.normpath(os.path.join(new, relative))
        for name in files:
            target = os.path.join(target_root, name)
            if os.path.lexists(target):
                continue
            os.makedirs(target_root, exist_ok=True)
            source = os.path.join(root, name)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def replace_directory(staging, path):
    """Moves the complete directory `staging` to `path`, replacing any
    directory there; see the module docstring for the order of renames."""
    restore_interrupted(path)
    backup = backup_path(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(
                f"{path!r} must be a directory (or not exist) to be "
                "replaced by a saved directory. Received: a file"
            )
        os.rename(path, backup)
    os.rename(staging, path)
    _fsync_parent(path)
    shutil.rmtree(backup, ignore_errors=True)


def _fsync_parent(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. no directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_directory(path, keep_unwritten=True):
    """Yields a fresh staging directory that replaces `path` on success.

    Write the whole directory into the path yielded. When the block ends
    without an exception, files of the old `path` that were not written
    are kept (`keep_unwritten`), the staging directory is flushed and
    swapped in with `replace_directory`; on an exception it is deleted
    and `path` is left as it was. A call nested in another for the same
    directory (a task saving its backbone) writes straight into the
    outer staging directory.

    Examples:
    ```python
    with atomic_directory("my_preset") as staging:
        backbone.save_to_preset(staging)
    ```
    """
    path = os.path.abspath(os.fspath(path))
    active = getattr(_active, "stagings", set())
    _active.stagings = active
    if path in active:
        yield path
        return
    restore_interrupted(path)
    head, name = os.path.split(path)
    os.makedirs(head, exist_ok=True)
    _remove_stale(head, f".{name}.partial-")
    staging = _sibling(path, f"partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    active.add(staging)
    try:
        yield staging
        if keep_unwritten and os.path.isdir(path):
            _keep_unwritten(path, staging)
        _fsync_tree(staging)
        replace_directory(staging, path)
    finally:
        active.discard(staging)
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path):
    """Yields a temporary sibling path that replaces `path` on success.

    The temporary name ends with `path`'s own name, so suffix checks
    (`.weights.h5`, `.keras`, `.json`) still pass.

    Examples:
    ```python
    with atomic_file("best.weights.h5") as temporary:
        model.save_weights(temporary)
    ```
    """
    path = os.path.abspath(os.fspath(path))
    head, name = os.path.split(path)
    if os.path.isdir(head):
        _remove_stale(head, ".partial-")
    temporary = os.path.join(head, f".partial-{os.getpid()}-{name}")
    try:
        yield temporary
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _fsync_parent(path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomically(path, text):
    """Writes `text` to `path` through `atomic_file`."""
    with atomic_file(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
