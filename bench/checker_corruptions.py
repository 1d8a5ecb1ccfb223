"""Checker benchmark: true vs corrupted sentences built from KorQuAD contexts.

For each sampled paragraph, one sentence that holds a question's answer is taken as the
claim source. The checker sees that paragraph plus two paragraphs of other articles (as a
retrieval would give it) and judges:
  true-verbatim   the sentence as written
  true-polite     the sentence rewritten as an answer would be: -다 -> -습니다/-ㅂ니다,
                  a leading adverbial phrase (up to the first comma) dropped
  number          one number changed (15 -> 16, 1998 -> 1999 ...)
  unit            one unit swapped (년 <-> 월, 일 <-> 주, 명 <-> 개, % <-> 배 ...)
  negation        predicate negated (-지 않-) or a negation removed
  entity          a proper noun swapped for one of another article
  unrelated       a sentence of another article
Corruptions are applied to the polite version, so "unsupported" must come from the
corruption, not from the rewrite. Reports, per corruption type, precision and recall of the
verdict "unsupported" over (true-polite sentences + that type's corrupted sentences).

    .venv/bin/python bench/checker_corruptions.py --limit 400 --out checker.json [--similarity]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grounding import GroundingChecker, Passage, extract_quantities  # noqa: E402
from grounding.checks import analyze, negation_count  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402

KORQUAD = Path(__file__).resolve().parents[2] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"
UNIT_SWAP = {"년": "월", "월": "년", "일": "주", "주": "일", "명": "개", "개": "명", "%": "배", "배": "%",
             "시간": "분", "분": "시간", "개월": "년", "원": "달러", "달러": "원", "세": "년", "번": "명",
             "회": "명", "층": "명", "위": "명", "권": "명", "차": "명", "km": "m", "m": "km", "개국": "명"}
KINDS = ("number", "unit", "negation", "entity", "unrelated")


def sentences_of(kiwi, text: str) -> list[str]:
    return [s.text.strip() for s in kiwi.split_into_sents(text) if len(s.text.strip()) >= 12]


def polite(kiwi, sentence: str) -> str:
    """"…을 창제했다." -> "…을 창제했습니다." and drop a leading phrase before the first comma."""
    head, sep, tail = sentence.partition(", ")
    if sep and 4 <= len(head) <= 25 and len(tail) >= 12:
        sentence = tail
    tokens = kiwi.tokenize(sentence)
    for i in range(len(tokens) - 1, -1, -1):
        t = tokens[i]
        if t.tag == "EF" and t.form in ("다", "ᆫ다", "는다"):
            morphs = [(x.form, x.tag) for x in tokens[:i]] + [("습니다" if _has_batchim(tokens, i) else "ᆸ니다", "EF")]
            morphs += [(x.form, x.tag) for x in tokens[i + 1 :]]
            try:
                return kiwi.join(morphs)
            except Exception:  # noqa: BLE001 - an unjoinable form just stays as written
                return sentence
    return sentence


def _has_batchim(tokens, i: int) -> bool:
    prev = tokens[i - 1].form if i else ""
    if not prev or not ("가" <= prev[-1] <= "힣"):
        return False
    return (ord(prev[-1]) - 0xAC00) % 28 != 0 and tokens[i - 1].tag == "EP"


def change_number(sentence: str, rng: random.Random) -> str | None:
    matches = list(re.finditer(r"\d+(?:,\d{3})*(?:\.\d+)?", sentence))
    if not matches:
        return None
    m = rng.choice(matches)
    digits = m.group().replace(",", "")
    if "." in digits:
        new = f"{float(digits) + rng.choice([0.5, 1.0, 2.0]):g}"
    else:
        value = int(digits)
        new = str(value + rng.choice([1, 2, 3, -1] if value > 3 else [1, 2, 3]))
    return sentence[: m.start()] + new + sentence[m.end() :]


def change_unit(sentence: str) -> str | None:
    for q in extract_quantities(sentence):
        if q.unit in UNIT_SWAP and q.text and q.text in sentence:
            for alias in sorted(UNIT_SWAP, key=len, reverse=True):
                if q.text.rstrip().endswith(alias):
                    swapped = q.text[: len(q.text.rstrip()) - len(alias)] + UNIT_SWAP[q.unit]
                    return sentence.replace(q.text, swapped, 1)
    return None


def flip_negation(kiwi, sentence: str) -> str | None:
    tokens = kiwi.tokenize(sentence)
    morphs = [(t.form, t.tag) for t in tokens]
    if negation_count(analyze(kiwi, sentence)):
        for i, (form, tag) in enumerate(morphs):  # remove "-지 않-" / "안" / "못"
            if (form, tag) == ("않", "VX") and i and morphs[i - 1] == ("지", "EC"):
                return _join(kiwi, morphs[: i - 1] + morphs[i + 1 :])
            if (form, tag) in (("안", "MAG"), ("못", "MAG")):
                return _join(kiwi, morphs[:i] + morphs[i + 1 :])
        return None
    ef = max((i for i, (_, tag) in enumerate(morphs) if tag == "EF"), default=None)
    if ef is None:
        return None
    stem = max((i for i in range(ef) if morphs[i][1] in ("VV", "VA", "XSV", "XSA")), default=None)
    if stem is not None and all(tag in ("EP", "EF", "EC") or tag.startswith("X") for _, tag in morphs[stem + 1 : ef]):
        return _join(kiwi, morphs[: stem + 1] + [("지", "EC"), ("않", "VX")] + morphs[stem + 1 :])
    vcp = max((i for i in range(ef) if morphs[i][1] == "VCP"), default=None)
    if vcp is not None:
        return _join(kiwi, morphs[:vcp] + [("가", "JKC"), ("아니", "VCN")] + morphs[vcp + 1 :])
    return None


def _join(kiwi, morphs) -> str | None:
    try:
        return kiwi.join(morphs)
    except Exception:  # noqa: BLE001
        return None


def swap_entity(kiwi, sentence: str, pool: list[str], forbidden: str, rng: random.Random) -> str | None:
    names = [t.form for t in kiwi.tokenize(sentence) if t.tag == "NNP" and len(t.form) >= 2]
    if not names:
        return None
    name = rng.choice(names)
    for _ in range(20):
        other = rng.choice(pool)
        if other != name and other not in forbidden:
            return sentence.replace(name, other, 1)
    return None


def build_cases(kiwi, limit: int, seed: int):
    corpus, questions = load_korquad(KORQUAD)
    by_id = {row["id"]: row for row in corpus}
    titles = {row["id"]: row["metadata"]["title"] for row in corpus}
    rng = random.Random(seed)
    qs = questions[:]
    rng.shuffle(qs)
    pool: list[str] = []
    for row in rng.sample(corpus, 200):
        pool += [t.form for t in kiwi.tokenize(row["text"][:400]) if t.tag == "NNP" and len(t.form) >= 2]
    cases, used = [], set()
    for q in qs:
        pid = q["gold_ids"][0]
        if pid in used:
            continue
        context = by_id[pid]["text"]
        sents = [s for s in sentences_of(kiwi, context) if any(a in s for a in q["answers"])]
        if not sents:
            continue
        used.add(pid)
        others = [r for r in rng.sample(corpus, 6) if titles[r["id"]] != titles[pid]][:2]
        passages = [Passage(pid, context, doc_id=pid, context=titles[pid])] + [
            Passage(r["id"], r["text"], doc_id=r["id"], context=titles[r["id"]]) for r in others
        ]
        source = sents[0]
        true_polite = polite(kiwi, source)
        forbidden = " ".join(p.text + p.context for p in passages)
        unrelated_pool = [s for r in rng.sample(corpus, 3) if titles[r["id"]] != titles[pid] for s in sentences_of(kiwi, r["text"])]
        variants = {
            "true-verbatim": source,
            "true-polite": true_polite,
            "number": change_number(true_polite, rng),
            "unit": change_unit(true_polite),
            "negation": flip_negation(kiwi, true_polite),
            "entity": swap_entity(kiwi, true_polite, pool, forbidden, rng),
            "unrelated": rng.choice(unrelated_pool) if unrelated_pool else None,
        }
        cases.append({"pid": pid, "passages": passages, "variants": {k: v for k, v in variants.items() if v and (k.startswith("true") or v != true_polite)}})
        if len(cases) >= limit:
            break
    return cases


def evaluate(checker: GroundingChecker, cases) -> dict:
    verdicts: dict[str, list[tuple[str, bool, list[str]]]] = {}
    started = time.perf_counter()
    n_checked = 0
    for case in cases:
        prepared = checker.prepare(case["passages"])
        for kind, sentence in case["variants"].items():
            check, _ = checker.check_sentence(sentence, prepared)
            n_checked += 1
            verdicts.setdefault(kind, []).append((case["pid"], check.supported, check.reasons))
    seconds = time.perf_counter() - started
    true_by_pid = {pid: ok for pid, ok, _ in verdicts.get("true-polite", [])}
    report = {
        "true_pass_rate": {k: round(sum(ok for _, ok, _ in verdicts.get(k, [])) / max(1, len(verdicts.get(k, []))), 4)
                           for k in ("true-verbatim", "true-polite")},
        "counts": {k: len(v) for k, v in verdicts.items()},
        "per_type": {},
        "ms_per_sentence": round(1000 * seconds / max(1, n_checked), 2),
    }
    for kind in KINDS:
        rows = verdicts.get(kind, [])
        if not rows:
            continue
        tp = sum(not ok for _, ok, _ in rows)
        pids = {pid for pid, _, _ in rows}
        fp = sum(not true_by_pid[pid] for pid in pids if pid in true_by_pid)
        report["per_type"][kind] = {
            "n": len(rows),
            "recall": round(tp / len(rows), 4),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "reasons": _reason_counts(rows),
        }
    return report


def _reason_counts(rows) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, ok, reasons in rows:
        for r in reasons if not ok else []:
            counts[r] = counts.get(r, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=400, help="paragraphs (one source sentence each)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--similarity", action="store_true", help="also use the default embedding model")
    ap.add_argument("--examples", type=int, default=0, help="print N example variants")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    embed = None
    if args.similarity:
        from app.pipeline import make_embedder
        from app.settings import Settings

        embed = make_embedder(Settings()).embed_documents
    cases = build_cases(kiwi, args.limit, args.seed)
    for case in cases[: args.examples]:
        print(json.dumps(case["variants"], ensure_ascii=False, indent=1))
    report = {"paragraphs": len(cases), "similarity": args.similarity, "seed": args.seed,
              **evaluate(GroundingChecker(kiwi, embed=embed), cases)}
    text = json.dumps(report, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
