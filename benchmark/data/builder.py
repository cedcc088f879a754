"""The base class of registered datasets: declared options, their checks, the data fingerprint, ``build``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

from benchmark.core.settings import SEED, Range, check_settings
from benchmark.data.core import GroupDataset

CONTENT_LIMIT = 16 * 2**20  # data files up to this size are fingerprinted by content, larger ones by size and time


class DatasetBuilder:
    """Base class of registered datasets: declares options and builds a :class:`GroupDataset`.

    ``options`` are the dataset's settings with defaults (set with ``--set data.KEY=VALUE``), ``choices`` the
    allowed values of string options and ``bounds`` the :class:`~benchmark.core.settings.Range` of numeric ones;
    ``seed`` is always available and fixes the split. ``train_defaults`` is the budget this dataset
    recommends (overridden by ``--set train.*`` / ``--epochs``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[dict] = {}
    choices: ClassVar[dict[str, tuple]] = {}
    bounds: ClassVar[dict[str, Range]] = {}
    train_defaults: ClassVar[dict] = {}
    needs_data_root: ClassVar[bool] = False
    data_files: ClassVar[tuple[str, ...]] = ()  # glob patterns under --data-root that the fingerprint covers

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        """Construct the dataset deterministically from ``options`` (which include ``seed``)."""
        raise NotImplementedError

    @classmethod
    def option_defaults(cls) -> dict:
        """All options with their defaults, the data seed first."""
        return {"seed": 0, **cls.options}

    @classmethod
    def fingerprint(cls, data_root: str | None) -> str | None:
        """A hash of the files a ``--data-root`` dataset reads (None for datasets built offline): the content of
        each file of ``data_files`` up to :data:`CONTENT_LIMIT` bytes (so a copy of the folder keeps its runs), size
        and modification time of larger ones; every file under the root when the builder declares none, the root
        itself when it is a file (``table``). Images a metadata file lists are covered through that file."""
        if not cls.needs_data_root or data_root is None:
            return None
        root = Path(data_root)
        if root.is_file():  # a dataset that is one file (table)
            found = {root}
        else:
            found = {p for pattern in cls.data_files for p in root.glob(pattern)} if cls.data_files else root.rglob("*")
        digest = hashlib.sha256()
        for path in sorted(p for p in found if p.is_file()):
            info = path.stat()
            digest.update(f"{path.relative_to(root)}\0{info.st_size}\0".encode())
            digest.update(path.read_bytes() if info.st_size <= CONTENT_LIMIT else str(info.st_mtime_ns).encode())
        return digest.hexdigest()[:16]

    @classmethod
    def check_options(cls, options: dict) -> dict:
        """``options`` checked against the defaults' types, ``choices`` and ``bounds`` (the data seed is in
        :data:`~benchmark.core.settings.SEED`); returns them typed. A dataset whose options constrain each other
        extends this; :func:`benchmark.data.build_dataset` and the sweep planner both call it."""
        return check_settings("data", options, cls.option_defaults(), cls.choices, {"seed": SEED, **cls.bounds})
