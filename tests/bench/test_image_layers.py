"""bench/image_layers.py deletes from its install what the Dockerfile deletes from the
image's, so the size it reports is the image layer's."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_driver() -> object:
    spec = importlib.util.spec_from_file_location(
        "image_layers", ROOT / "bench" / "image_layers.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_driver_prunes_what_the_dockerfile_prunes(tmp_path: Path) -> None:
    # The Dockerfile deletes the "tests" and "test" directories and share/jupyter
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert set(re.findall(r"-name (\w+)", dockerfile)) == {"tests", "test"}
    assert "rm -rf /usr/local/share/jupyter" in dockerfile
    # Given an install with test suites at several depths, and packages that need theirs
    files = {
        "pandas/tests/frame/test_a.py": True,
        "numpy/_core/tests/test_b.py": True,
        "pkg/test/c.py": True,
        "share/jupyter/nbextensions/d.js": True,
        "numpy/testing/__init__.py": False,
        "streamlit/testing/v1/app_test.py": False,
        "pkg/test_utils.py": False,
        "pkg/__init__.py": False,
    }
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x" * 10)

    freed = load_driver().pruned(tmp_path)  # type: ignore[attr-defined]

    # Then the driver deletes the same, and says how much
    assert {name: not (tmp_path / name).exists() for name in files} == files
    assert freed == 10 * sum(files.values())
