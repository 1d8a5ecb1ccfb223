"""`OpenAICompatEmbedder`: embeddings from an OpenAI-compatible `/v1/embeddings` server.

Any server speaking that route works (infinity-emb, vLLM, Hugging Face TEI, llama.cpp's
server): texts go out in batches of `batch_size` per POST, each with a timeout, and the rows
come back L2-normalized float32 in input order, as from the in-process embedders. Such a
server embeds what it is sent, so the model's "query"/"document" prompts (EmbeddingGemma's
"title: none | text: ") are prepended here, read from the local model directory, which also
gives the tokenizer that sizes chunks (`count_tokens`): chunking needs no server.

>>> e = OpenAICompatEmbedder("http://gpu-box:7997/v1", "embeddinggemma-300m",
...                          "~/.cache/chulcheo/models/embeddinggemma-300m")
>>> e.embed_documents(["연차휴가는 15일이다."]).shape
(1, 768)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embed import _dim_from_config, l2_normalize
from .embed_onnx import _config_prompts, token_counts
from .errors import EmbeddingServiceError

logger = logging.getLogger(__name__)


class OpenAICompatEmbedder:
    """An `Embedder` that calls POST {base_url}/embeddings.

    Args:
        base_url: up to and including the version, e.g. "http://127.0.0.1:7997/v1" (a trailing
            "/embeddings" is tolerated).
        api_model: the model name the server knows (the request's "model").
        model_path: the local sentence-transformers directory of the same model: its
            tokenizer.json counts tokens, its config gives the prompts and the dimension.
        api_key: sent as "Authorization: Bearer …" when set.
        model_id: recorded in the index (default "<api_model>+openai-compat": vectors from a
            server are never mixed with an in-process model's without --rebuild).
        prompts: prepend the model's prompts (False when the server adds them itself).
        max_seq_length: inputs are cut to this many tokens, specials included (None: the server cuts).
    """

    def __init__(
        self,
        base_url: str,
        api_model: str,
        model_path: str | os.PathLike[str],
        *,
        api_key: str | None = None,
        model_id: str | None = None,
        batch_size: int = 16,
        timeout_s: float = 60.0,
        max_seq_length: int | None = None,
        prompts: bool = True,
        query_prompt: str = "query",
        document_prompt: str = "document",
    ) -> None:
        url = base_url.rstrip("/")
        self.url = url if url.endswith("/embeddings") else url + "/embeddings"
        self.api_model = api_model
        self.path = Path(model_path).expanduser()
        if not (self.path / "tokenizer.json").is_file():
            raise ValueError(
                f"embedding.url needs the model's local directory for its tokenizer (chunk sizes) "
                f"and prompts: {self.path / 'tokenizer.json'} is missing"
            )
        if api_key is not None and not api_key.isascii():
            raise ValueError("embedding.api_key must be ASCII (it is sent in an HTTP header)")
        self.api_key = api_key
        self.model_id = model_id or f"{api_model}+openai-compat"
        self.batch_size = max(1, batch_size)
        self.timeout_s = timeout_s
        self.max_seq_length = max_seq_length
        defined = _config_prompts(self.path) if prompts else {}
        self._prompts = {"query": defined.get(query_prompt, ""), "document": defined.get(document_prompt, "")}
        self._dim = _dim_from_config(self.path)
        self._tokenizer: Any = None
        self._client: Any = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._post(["안녕하세요"]).shape[1])
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(self._inputs(self._prompts["document"], texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed(self._inputs(self._prompts["query"], [text]))[0]

    def _inputs(self, prompt: str, texts: Sequence[str]) -> list[str]:
        """prompt + text, cut to max_seq_length tokens (specials included) as the local
        embedders cut it, so a long text gives the server what they would have embedded."""
        inputs = [prompt + t for t in texts]
        if self.max_seq_length is None:
            return inputs
        tokenizer = self._get_tokenizer()
        processor = tokenizer.post_processor
        room = self.max_seq_length - (processor.num_special_tokens_to_add(False) if processor is not None else 0)
        for i, encoding in enumerate(tokenizer.encode_batch(inputs, add_special_tokens=False)):
            if len(encoding.ids) > room:
                inputs[i] = inputs[i][: encoding.offsets[room - 1][1]]
        return inputs

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts without prompt or special tokens (the local tokenizer; no request)."""
        return token_counts(self._get_tokenizer, texts)

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        return self._tokenizer

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ----------------------------------------------------------------- requests
    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [self._post(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return l2_normalize(np.concatenate(parts))

    def _post(self, batch: list[str]) -> np.ndarray:
        """One POST: the rows of `batch` in order (not yet normalized).

        Raises:
            EmbeddingServiceError: unreachable, timed out, an error status, or a malformed answer.
        """
        import httpx

        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(headers=headers, timeout=self.timeout_s)
        body = {"model": self.api_model, "input": batch, "encoding_format": "float"}
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise EmbeddingServiceError(f"{self.url}: no answer within {self.timeout_s:g} s "
                                        f"(embedding.timeout_s) for {len(batch)} texts") from exc
        except httpx.HTTPError as exc:
            raise EmbeddingServiceError(f"{self.url}: cannot reach the embeddings server ({exc})") from exc
        if response.status_code != 200:
            hint = " (check embedding.api_key / CHULCHEO_EMBEDDING__API_KEY)" if response.status_code in (401, 403) else ""
            raise EmbeddingServiceError(
                f"{self.url}: HTTP {response.status_code}{hint}: {' '.join(response.text.split())[:300]}"
            )
        return self._rows(response, len(batch))

    def _rows(self, response: Any, expected: int) -> np.ndarray:
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            rows = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingServiceError(f"{self.url}: not an embeddings answer ({exc!r}): "
                                        f"{' '.join(response.text.split())[:200]}") from exc
        if rows.ndim != 2 or rows.shape[0] != expected:
            raise EmbeddingServiceError(f"{self.url}: {rows.shape[0] if rows.ndim else 0} vectors for {expected} texts")
        if self._dim is not None and rows.shape[1] != self._dim:
            raise EmbeddingServiceError(f"{self.url}: vectors of {rows.shape[1]} dimensions, the model "
                                        f"{self.path.name} has {self._dim}; is {self.api_model!r} the same model?")
        if not np.isfinite(rows).all():
            raise EmbeddingServiceError(f"{self.url}: the server returned non-finite numbers")
        return rows

