"""KorQuAD 1.0 (SQuAD schema) as a retrieval corpus and question set, derived at load time.

The dataset file is CC BY-ND: it is only read, never rewritten.
load_korquad(path) -> ([{"id": "파우스트_서곡_0", "text": "...", "metadata": {"title": ...}}],
                       [{"qid": "6566495-0-0", "query": "...", "gold_ids": ["파우스트_서곡_0"],
                         "answers": ["1839년"]}])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_korquad(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Paragraphs (id = title + "_" + paragraph index) and questions with their gold paragraph."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    corpus: list[dict[str, Any]] = []
    questions: list[dict[str, Any]] = []
    for article in data["data"]:
        title = article["title"]
        for i, paragraph in enumerate(article["paragraphs"]):
            pid = f"{title}_{i}"
            corpus.append({"id": pid, "text": paragraph["context"], "metadata": {"title": title}})
            for qa in paragraph["qas"]:
                questions.append({
                    "qid": qa["id"],
                    "query": qa["question"],
                    "gold_ids": [pid],
                    "answers": [a["text"] for a in qa["answers"]],
                })
    return corpus, questions


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    """Rows as JSON lines (UTF-8, Korean unescaped)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return Path(path)
