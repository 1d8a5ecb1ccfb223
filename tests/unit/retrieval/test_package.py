"""The retrieval package stays light and self-contained."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import retrieval

PACKAGE_DIR = Path(retrieval.__file__).parent
OUR_OTHER_PACKAGES = {"app", "ingest", "prompts", "generation", "grounding", "bench", "tests"}


def test_import_loads_no_model_framework() -> None:
    code = (
        "import sys, retrieval; "
        "heavy = {'torch', 'sentence_transformers', 'transformers', 'kiwipiepy'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE_DIR.parent
    )
    assert out.stdout.strip() == "[]"


def test_imports_none_of_our_other_packages() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in OUR_OTHER_PACKAGES, f"{path.name} imports {name}"


def test_public_names_are_exported() -> None:
    for name in retrieval.__all__:
        assert hasattr(retrieval, name), name
