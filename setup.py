"""Maps the repository's top-level folders to the ``bookwell.*`` import names.

pyproject.toml carries the metadata; this file only computes the package list, because setuptools
cannot discover sub-packages under a renamed ``package-dir`` on its own.
"""

from setuptools import find_packages, setup

FOLDER_OF_PACKAGE = {
    "bookwell.core": "core",
    "bookwell.hooks": "hooks",
    "bookwell.plugins": "plugins",
    "bookwell.themes": "themes",
}

packages = []
for package, folder in FOLDER_OF_PACKAGE.items():
    packages.append(package)
    packages.extend(f"{package}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=FOLDER_OF_PACKAGE)
