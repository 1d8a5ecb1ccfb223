"""The plain LangChain RAG chain, a baseline of `eval answers`: the retrieved documents stuffed
into one prompt and answered by our own LLM, with no checking.

chain = stuff_chain(pipeline.generator, pipeline.generation_params())
chain.invoke({"context": [hit_to_document(h) for h in answer.hits], "input": "연차휴가는 며칠인가요?"})
-> "연차휴가는 입사 1년 후 15일이 부여됩니다."

What LangChain's retrieval-QA example builds (`create_stuff_documents_chain(model, qa_prompt)`,
as in langchain_classic's `create_retrieval_chain` docs): each document as its `page_content`,
joined by a blank line, into the example's system prompt, the question as the human turn,
then `StrOutputParser`. Built here from langchain_core alone (`create_stuff_documents_chain`
lives in langchain-classic, which chulcheo does not depend on); the prompt text and the
document formatting are the same. This module is the only place evaluation/ meets LangChain
types, and `import evaluation` does not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnablePassthrough

from generation.types import GenerationParams, Generator, Message

__all__ = ["QA_SYSTEM_PROMPT", "GeneratorChatModel", "format_docs", "stuff_chain"]

# LangChain's own example prompt, word for word (langchain_classic.chains.create_retrieval_chain).
QA_SYSTEM_PROMPT = (
    "You are an assistant for question-answering tasks. Use "
    "the following pieces of retrieved context to answer the "
    "question. If you don't know the answer, just say that you "
    "don't know. Use three sentences maximum and keep the answer "
    "concise."
    "\n\n"
    "{context}"
)
DOCUMENT_SEPARATOR = "\n\n"  # create_stuff_documents_chain's default; each document as its page_content

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class GeneratorChatModel(BaseChatModel):
    """A LangChain chat model over any chulcheo `Generator` (llama.cpp by default).

    GeneratorChatModel(generator=ScriptedGenerator(["15일입니다."])).invoke("연차휴가는 며칠인가요?")
    -> AIMessage(content="15일입니다.", response_metadata={"finish_reason": "stop", ...})
    """

    generator: Any
    params: Any = None  # GenerationParams; None = the generator's defaults

    @property
    def _llm_type(self) -> str:
        return "chulcheo-generator"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        params: GenerationParams = self.params or GenerationParams()
        if stop:
            params = replace(params, stop=(*params.stop, *stop))
        ours = [Message(_ROLES.get(m.type, "user"), _text(m.content)) for m in messages]
        done = self.generator.generate(ours, params)
        meta = {"finish_reason": done.finish_reason, "model": self.generator.model_id}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=done.text, response_metadata=meta))])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)


def format_docs(docs: Sequence[Document]) -> str:
    """The documents as the stuff chain puts them into the prompt: page contents, blank line between."""
    return DOCUMENT_SEPARATOR.join(d.page_content for d in docs)


def stuff_chain(generator: Generator, params: GenerationParams | None = None) -> Runnable:
    """{"context": [Document, ...], "input": question} -> the model's answer text."""
    prompt = ChatPromptTemplate.from_messages([("system", QA_SYSTEM_PROMPT), ("human", "{input}")])
    model = GeneratorChatModel(generator=generator, params=params)
    return RunnablePassthrough.assign(context=lambda x: format_docs(x["context"])) | prompt | model | StrOutputParser()
