"""Split an LLM draft into Korean sentences, without the model's own citation markers.

split_draft("연차휴가는 15일입니다 [1]. 병가는 무급입니다.[2]") -> ["연차휴가는 15일입니다.", "병가는 무급입니다."]
"""

from __future__ import annotations

import re

from ingest.chunk import SentenceSplitter

# [1], [1, 2], [1][2], (출처 1), [출처: 2], 【1】 — the model's markers; ours are recomputed.
_MARKER = re.compile(r"\s*(?:\[(?:출처\s*:?\s*)?\d+(?:\s*[,，]\s*\d+)*\]|【\d+】|\((?:출처|source)\s*:?\s*\d+\))", re.I)
_LIST_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+", re.M)


def strip_markers(text: str) -> str:
    """Remove citation markers and list bullets the model wrote."""
    text = _MARKER.sub("", text)
    return _LIST_BULLET.sub("", text)


def split_draft(splitter: SentenceSplitter, draft: str) -> list[str]:
    """Sentences of the draft, markers removed, blank ones dropped."""
    clean = strip_markers(draft)
    out = []
    for span in splitter.split(clean):
        sentence = clean[span.start : span.end].strip()
        if sentence and any(ch.isalnum() for ch in sentence):
            out.append(sentence)
    return out
