"""Small pieces the bench scripts share: the dataset path, sizes on disk, printing the result."""

from __future__ import annotations

import json
from pathlib import Path

KORQUAD = Path(__file__).resolve().parents[2] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"


def dir_size(path: Path) -> int:
    """Bytes of every file under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def emit(result: dict, out: Path | None) -> None:
    """Print the result as indented JSON and, with `out`, write the same to that file."""
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
