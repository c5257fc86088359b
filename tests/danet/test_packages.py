"""Files inside installed packages, found without importing the packages."""

from __future__ import annotations

import sys

import pytest

from danet.packages import PackageNotInstalledError, package_path


def test_finds_a_shipped_file_without_importing_the_package():
    imported_before = "solaris" in sys.modules
    path = package_path("solaris", "data/sample_geotiff.tif")
    assert path.is_file()
    assert path.parent == package_path("solaris", "data")
    assert ("solaris" in sys.modules) == imported_before


def test_a_missing_package_names_it_and_where_it_is_pinned():
    with pytest.raises(PackageNotInstalledError, match=r"'danet_no_such_package'.*requirements-nodeps"):
        package_path("danet_no_such_package", "data")


def test_a_missing_file_names_the_path_looked_at():
    expected = r"'solaris' is installed but has no data/absent\.tif \(looked at .*absent\.tif\)"
    with pytest.raises(FileNotFoundError, match=expected) as info:
        package_path("solaris", "data/absent.tif")
    assert not isinstance(info.value, PackageNotInstalledError)
