"""The sdist and the wheel: license, type hints, extras, and an sdist that carries its tests.

Built offline with this environment's setuptools through its PEP 517 hooks (pip's build
isolation would download setuptools), from a copy of the source tree.
"""

import email
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT

SKIP_AT_ROOT = {".git", ".venv", "venv", "build", "dist", "runs", "data", "demo", ".pytest_cache", ".benchmarks"}


def _ignore(folder, names):
    top = folder == str(ROOT)
    return [n for n in names if n == "__pycache__" or n.endswith((".egg-info", ".pyc")) or (top and n in SKIP_AT_ROOT)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    setuptools = pytest.importorskip("setuptools")
    need = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"][0]
    src = tmp_path_factory.mktemp("pkg") / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    code = ("from setuptools import build_meta as b\n"
            "sdist, wheel = b.build_sdist('dist'), b.build_wheel('dist')\n"
            "print('BUILT', sdist, wheel)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"build with setuptools {setuptools.__version__} ({need}) failed:\n{proc.stderr[-3000:]}"
    sdist, wheel = proc.stdout.rsplit("BUILT", 1)[1].split()
    return src, src / "dist" / sdist, src / "dist" / wheel


def _shipped(root, folder):
    return {str(p.relative_to(root)) for p in (root / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_sdist_carries_the_license_and_every_file_the_tests_read(built):
    src, sdist, _ = built
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", "tests/conftest.py", "worldjepa/py.typed"} <= names
    for folder in ("tests", "docs", "benchmarks", "worldjepa"):
        missing = _shipped(src, folder) - names
        assert not missing, f"{sdist.name} lacks {sorted(missing)}"
    assert top.startswith("worldjepa-")


def test_wheel_metadata_license_expression_typed_and_extras(built):
    _, _, wheel = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(meta_name))
    assert "worldjepa/py.typed" in names
    assert not any(n.startswith("tests/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE"]
    extras = set(meta.get_all("Provides-Extra"))
    assert {"tensorboard", "pusht", "classic", "memory", "video", "minari", "test", "all"} <= extras
    requires = meta.get_all("Requires-Dist")
    assert not any(r.startswith("matplotlib") for r in requires), "matplotlib is not used by the code"
    assert any(r.startswith("tensorboard") and 'extra == "tensorboard"' in r for r in requires)


def test_the_sdist_tests_run_from_the_unpacked_sdist(built, tmp_path):
    """conftest.py ships: a test module that imports it runs from the unpacked sdist."""
    _, sdist, _ = built
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    root = next(tmp_path.iterdir())
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layers.py",
                           "-k", "cycles or point_down"], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
