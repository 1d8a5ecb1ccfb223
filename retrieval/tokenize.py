"""Tokenizers for BM25: Korean content morphemes (Kiwi) and a whitespace baseline.

The same tokenizer must run at index build and at query time, so each tokenizer reports
`config()`, the manifest records it, and `tokenizer_from_config` rebuilds it for the reader.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kiwipiepy import Kiwi, Token

logger = logging.getLogger(__name__)

# Kiwi (Sejong-style) tag prefixes kept by default. Matching is by prefix so that
# "VV" also keeps irregular stems tagged "VV-I"/"VV-R", and "W_" keeps URLs, e-mails,
# serial numbers ("010-1234-5678") and hashtags as single tokens.
# Left out on purpose: J* particles, E* endings, X[SP]* affixes, VCP/VCN copulas,
# S[FPSEOW] punctuation/symbols, NP pronouns and MAG/MAJ adverbs (mostly stop words),
# IC interjections, Z_* coda artefacts. NNB is kept because units ("15일", "3억원")
# carry meaning in numeric questions.
DEFAULT_POS: tuple[str, ...] = (
    "NNG",  # common noun: 연차, 휴가
    "NNP",  # proper noun
    "NNB",  # bound noun / unit: 일, 원, 년
    "NR",  # numeral: 억, 만
    "VV",  # verb stem: 먹
    "VA",  # adjective stem: 예쁘
    "XR",  # root: 깨끗
    "SL",  # foreign (Latin) word: AI -> ai
    "SH",  # hanja
    "SN",  # number: 15, 1,000 -> 1000
    "W_",  # URL, e-mail, serial, hashtag
)

# Nouns that `split_compounds` also emits in parts. Every part must have two syllables or
# more: a forced split into a one-syllable piece is usually wrong ("대통령" -> "대통" + "령",
# "반도체" -> "반도" + "체") and one syllable matches almost everything.
COMPOUND_TAGS: tuple[str, ...] = ("NNG", "NNP")
MIN_PART_CHARS = 2


@runtime_checkable
class Tokenizer(Protocol):
    """What BM25 needs: text -> terms, deterministic for a given `config()`."""

    def tokenize(self, text: str) -> list[str]: ...

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]: ...

    def config(self) -> dict[str, Any]: ...


class KiwiTokenizer:
    """Korean morpheme tokenizer keeping content morphemes only.

    Example: KiwiTokenizer().tokenize("연차휴가는 15일이다.") -> ["연차", "휴가", "15", "일"].
    Verb and adjective stems come out in stem form ("먹었다" -> ["먹"]), Latin is lowercased,
    thousands separators are dropped from numbers ("1,000" -> "1000").

    Kiwi takes about two seconds and ~400 MB to load, so it is created on first use and
    then shared by every call on this object (Kiwi's analysis calls do not mutate it);
    pass `kiwi=` to share one instance between tokenizers.
    """

    name = "kiwi"

    def __init__(
        self,
        pos_prefixes: Sequence[str] = DEFAULT_POS,
        *,
        kiwi: Kiwi | None = None,
        num_workers: int | None = None,
        split_compounds: bool = False,
    ):
        """Args:
        pos_prefixes: Kiwi tag prefixes to keep (see `DEFAULT_POS`).
        split_compounds: also emit the parts of a compound noun that Kiwi's dictionary keeps
            whole ("재택근무" -> ["재택근무", "재택", "근무"]), so a compound matches the
            same words when Kiwi splits them in another context.
        kiwi: an already loaded Kiwi to share (one costs ~2 s and ~400 MB); None loads
            one on first use.
        num_workers: Kiwi's thread count when this object loads it; None lets Kiwi decide.
        """
        if not pos_prefixes:
            raise ValueError("pos_prefixes must name at least one Kiwi tag prefix")
        self.pos_prefixes: tuple[str, ...] = tuple(pos_prefixes)
        self.split_compounds = split_compounds
        self._parts: dict[tuple[str, str], tuple[str, ...]] = {}
        self._num_workers = num_workers
        self._kiwi: Kiwi | None = kiwi
        self._ready = False
        self._lock = threading.Lock()

    @property
    def kiwi(self) -> Kiwi:
        """The Kiwi instance, ready to analyze: loaded on first access, then reused."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    if self._kiwi is None:
                        from kiwipiepy import Kiwi

                        logger.debug("loading Kiwi morphological analyzer")
                        self._kiwi = Kiwi(num_workers=self._num_workers)
                    # Kiwi finishes its own lazy initialization on the first analysis call;
                    # doing that here, under the lock, keeps concurrent first calls safe
                    # (Kiwi is safe for concurrent use once initialized).
                    self._kiwi.tokenize("")
                    self._ready = True
        return self._kiwi

    def _keep(self, tokens: Iterable[Token]) -> list[str]:
        terms = []
        for token in tokens:
            tag = str(token.tag)
            if not tag.startswith(self.pos_prefixes):
                continue
            form = token.form.lower()
            if tag == "SN":
                form = form.replace(",", "")
            if form:
                terms.append(form)
                if self.split_compounds and tag in COMPOUND_TAGS and len(form) >= 2 * MIN_PART_CHARS:
                    terms.extend(self._compound_parts(token.form, tag))
        return terms

    def _compound_parts(self, form: str, tag: str) -> tuple[str, ...]:
        """Nouns Kiwi finds in `form` when the whole word is not allowed; () if it has none.

        Example: ("재택근무", "NNG") -> ("재택", "근무"); ("국민건강보험공단", "NNP") ->
        ("국민", "건강", "보험", "공단"); ("대통령", "NNG") -> () (a part would be one syllable).
        Cached per form: a corpus has a bounded vocabulary, and Kiwi takes ~0.1 ms per call.
        """
        key = (form, tag)
        parts = self._parts.get(key)
        if parts is None:
            from kiwipiepy import MorphemeSet

            blocked = MorphemeSet(self.kiwi, [key])
            tokens = self.kiwi.tokenize(form, blocklist=blocked)
            nouns = tuple(t.form.lower() for t in tokens if str(t.tag).startswith("NN"))
            whole = len(nouns) == len(tokens) >= 2 and "".join(t.form for t in tokens) == form
            parts = nouns if whole and min(map(len, nouns)) >= MIN_PART_CHARS else ()
            self._parts[key] = parts  # a lost race recomputes the same value
        return parts

    def tokenize(self, text: str) -> list[str]:
        """Example: "연차휴가는 15일이다." -> ["연차", "휴가", "15", "일"]."""
        if not text.strip():
            return []
        return self._keep(self.kiwi.tokenize(text))

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokenize many texts with Kiwi's batch API (multi-threaded inside Kiwi)."""
        texts = list(texts)
        if not texts:
            return []
        return [self._keep(tokens) for tokens in self.kiwi.tokenize(texts)]

    def config(self) -> dict[str, Any]:
        """{"name": "kiwi", "pos": [...], "kiwipiepy": version} — what the manifest records.

        "split_compounds": true is added only when on, so indexes built before the option
        existed keep an identical config.
        """
        cfg: dict[str, Any] = {"name": self.name, "pos": list(self.pos_prefixes), "kiwipiepy": _kiwi_version()}
        if self.split_compounds:
            cfg["split_compounds"] = True
        return cfg

    def __repr__(self) -> str:
        return f"KiwiTokenizer(pos_prefixes={self.pos_prefixes!r}, split_compounds={self.split_compounds!r})"


class WhitespaceTokenizer:
    """Baseline: lowercase, split on whitespace, strip punctuation at token edges.

    Example: WhitespaceTokenizer().tokenize("연차휴가는 15일이다.") -> ["연차휴가는", "15일이다"].
    """

    name = "whitespace"

    def tokenize(self, text: str) -> list[str]:
        terms = []
        for word in text.lower().split():
            term = _strip_punctuation(word)
            if term:
                terms.append(term)
        return terms

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(text) for text in texts]

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return "WhitespaceTokenizer()"


def tokenizer_from_config(cfg: dict[str, Any], *, kiwi: Kiwi | None = None) -> KiwiTokenizer | WhitespaceTokenizer:
    """Rebuild the tokenizer a manifest recorded; `kiwi` shares an already loaded Kiwi.

    Example: tokenizer_from_config({"name": "kiwi", "pos": ["NNG", "SN"]}) -> KiwiTokenizer(("NNG", "SN")).

    Raises:
        ValueError: unknown tokenizer name or malformed config.
    """
    name = cfg.get("name")
    if name == KiwiTokenizer.name:
        pos = cfg.get("pos")
        if not pos or not all(isinstance(p, str) for p in pos):
            raise ValueError(f"kiwi tokenizer config needs a non-empty 'pos' list of tags, got {pos!r}")
        recorded = cfg.get("kiwipiepy")
        if recorded and recorded != _kiwi_version():
            logger.warning(
                "index was tokenized with kiwipiepy %s but %s is installed; BM25 terms may differ",
                recorded,
                _kiwi_version(),
            )
        split = cfg.get("split_compounds", False)
        if not isinstance(split, bool):
            raise ValueError(f"kiwi tokenizer config 'split_compounds' must be true or false, got {split!r}")
        return KiwiTokenizer(tuple(pos), kiwi=kiwi, split_compounds=split)
    if name == WhitespaceTokenizer.name:
        return WhitespaceTokenizer()
    raise ValueError(f"unknown tokenizer {name!r}; expected 'kiwi' or 'whitespace'")


def _strip_punctuation(word: str) -> str:
    """Example: "(연차)," -> "연차"; inner punctuation ("3.5", "e-mail") stays."""
    start, end = 0, len(word)
    while start < end and _is_punct(word[start]):
        start += 1
    while end > start and _is_punct(word[end - 1]):
        end -= 1
    return word[start:end]


def _is_punct(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def _kiwi_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kiwipiepy")
    except PackageNotFoundError:
        return "unknown"
