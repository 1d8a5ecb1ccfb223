"""Feedback that becomes test cases: an admin reads the 👍/👎 answers, marks the right passage or
writes the right answer, and `chulcheo feedback export` turns them into QA JSONL lines that
`chulcheo eval answers --docs … --qa …` reads, so a bad answer becomes a regression test.

    service.feedback_entries(admin, since="2026-12-01", doc="d_5c0f…")  -> [{id, rating, question, …}]
    service.review_feedback(admin, 7, answer="연차휴가는 15일이다.", doc="d_5c0f…", page=3)
    service.feedback_cases(admin) -> [{"qid": "feedback-7", "query": …, "gold_ids": ["/srv/…/규정.pdf#3"],
                                       "answer": "연차휴가는 15일이다.", "feedback": {…}}]

An admin sees and reviews only the ratings of users within its groups, and can mark only a
document it may see.
"""

from __future__ import annotations

from typing import Any

from grounding.split import strip_markers

from .audit import recorded
from .auth import Principal
from .schemas import public_id


class FeedbackDesk:
    """Service methods over the feedback store (Service provides feedback, pipeline, viewable)."""

    def feedback_entries(self, who: Principal, since: str | None = None, until: str | None = None,
                         doc: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Ratings of users within the admin's groups, newest first; `doc` (opaque id, stored id or
        file name) keeps those that cite it or were marked with it."""
        who.require_admin("feedback")
        rows = [r for r in self.feedback.list(limit=100_000, since=since, until=until) if _within(who, r["groups"])]
        if doc:
            rows = [r for r in rows if doc in _docs_of(r)]
        return rows[:limit]

    @recorded("feedback_review", detail=lambda feedback_id, *a, **k: f"feedback {feedback_id}")
    def review_feedback(self, who: Principal, feedback_id: int, answer: str | None = None,
                        doc: str | None = None, page: int | None = None) -> dict[str, Any]:
        """Mark the right passage (a document the admin may see, and a page of it) and/or write the
        right answer of a rating.

        Raises:
            NoSource: no such rating within the admin's groups, or a document it may not see.
            ValueError: neither an answer nor a document, or a page the document has no text on.
        """
        from .sources import NoSource

        who.require_admin("review feedback")
        row = self.feedback.get(feedback_id)
        if row is None or not _within(who, row["groups"]):
            raise NoSource(f"feedback {feedback_id}: no such rating within your groups")
        answer = (answer or "").strip() or None
        if answer is None and not doc:
            raise ValueError("give the right answer, the right passage (doc and page), or both")
        gold_doc = None
        if doc:
            entry = self.viewable(who, doc)
            if page is not None and entry.pages and page not in entry.pages:
                raise ValueError(f"page {page}: {entry.title} has indexed text on pages {entry.pages}")
            gold_doc = entry.doc_id
        self.feedback.review(feedback_id, who.name, answer, gold_doc, page)
        return self.feedback.get(feedback_id)

    def feedback_cases(self, who: Principal, since: str | None = None, liked: bool = True) -> list[dict[str, Any]]:
        """The test cases of the ratings the admin may see (see test_cases)."""
        rows = self.feedback_entries(who, since=since, limit=1_000_000)
        return cases_from(rows, [d.doc_id for d in self.pipeline.documents()], liked)


def cases_from(rows: list[dict[str, Any]], doc_ids: list[str], liked: bool = True) -> list[dict[str, Any]]:
    """QA JSONL lines (the `eval answers` format), oldest first, from reviewed ratings and, with
    `liked`, from 👍 answers (their cited documents are the gold, their answer the long-form
    answer). Cited ids (stored or opaque) that are no longer indexed are left out."""
    docs = set(doc_ids)
    by_public = {public_id(d): d for d in docs}
    cases = []
    for row in reversed(rows):
        if row["gold_doc"]:
            gold = [row["gold_doc"] + (f"#{row['gold_page']}" if row["gold_page"] else "")]
            answer = row["gold_answer"]
        elif row["gold_answer"] or (liked and row["rating"] == 1):
            cited = [c.get("doc_id") for c in row["citations"] if isinstance(c, dict)]
            gold = sorted({by_public.get(d, d) for d in cited if d in docs or d in by_public})
            answer = row["gold_answer"] or (row["answer"] if row["rating"] == 1 else None)
        else:
            continue  # a 👎 nobody reviewed yet says what is wrong, not what is right
        if not gold:
            continue
        case = {"qid": f"feedback-{row['id']}", "query": row["question"], "gold_ids": gold,
                "feedback": {"rating": row["rating"], "comment": row["comment"], "given_answer": row["answer"],
                             "created": row["created"], "reviewed_by": row["reviewed_by"]}}
        if answer:
            case["answer"] = strip_markers(answer).strip()
        cases.append(case)
    return cases


def _within(who: Principal, groups: str) -> bool:
    return who.covers_text(groups)


def _docs_of(row: dict[str, Any]) -> set[str]:
    """Every way a rating names its documents: ids (stored and opaque) and file names."""
    names: set[str] = set()
    for c in row["citations"]:
        if isinstance(c, dict):
            for key in ("doc_id", "source"):
                value = str(c.get(key) or "")
                if value:
                    names |= {value, value.rsplit("/", 1)[-1]}
                    if key == "doc_id" and not value.startswith("d_"):
                        names.add(public_id(value))
    if row["gold_doc"]:
        names |= {row["gold_doc"], public_id(row["gold_doc"]), row["gold_doc"].rsplit("/", 1)[-1]}
    return names
