"""Package discovery for the card's folders, which sit at the repository root and install as `baton.*`.

pyproject.toml holds the metadata; this file only maps each root folder to its `baton.` name and finds every
package below it, so a new subpackage (a folder with an `__init__.py`) ships without a hand edit.
tests/e2e/test_packaging.py builds a wheel from a clean copy and imports every module from it, with no editable install.
"""

from setuptools import find_packages, setup

# installed name -> folder in the repository
ROOTS = {
    "baton": "baton",
    "baton.training": "training",
    "baton.export": "export",
    "baton.serving": "serving",
    "baton.tools": "tools",
}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return found


setup(package_dir=ROOTS, packages=_packages())
