"""A small retrieval-augmented generation (RAG) pipeline.

    python examples/rag.py

Documents are embedded with a deterministic local hashing embedding (no model
download, no network, same vectors on every machine), stored in LangChain's
`InMemoryVectorStore`, retrieved by similarity and passed to `ChatHolySheep`.
Swap `HashingEmbeddings` for any `Embeddings` (e.g. an embedding model served by
your gateway) without touching the chain.

Without HOLYSHEEP_API_KEY this runs on the embedded simulator.
"""

import hashlib
import itertools
import math
import os
import re
from contextlib import ExitStack

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.spend import get_holysheep_callback


class HashingEmbeddings(Embeddings):
    """Bag-of-words vectors by feature hashing: deterministic, local, dependency-free.

    Each lower-cased word (and each pair of adjacent words) is hashed into one
    of `dim` buckets with a +1/-1 sign; vectors are L2-normalised, so the dot
    product is the cosine similarity. Good enough to demo retrieval; use a real
    embedding model for real work.
    """

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def _vector(self, text: str) -> list[float]:
        words = re.findall(r"\w+", text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        vec = [0.0] * self.dim
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "big")
            vec[value % self.dim] += 1.0 if (value >> 32) & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


DOCS = [
    (
        "setup",
        "Set HOLYSHEEP_API_KEY to your key; keys start with hs_, hs- or "
        "sk-holysheep-. The base URL is https://api.holysheep.ai/v1.",
    ),
    (
        "pricing",
        "List prices per 1M tokens: gpt-4.1 8 input / 24 output USD, "
        "deepseek-v3.2 0.42 / 1.68 USD. HolySheep bills one yuan per dollar.",
    ),
    (
        "fallbacks",
        "A fallback chain such as gpt-4.1 then gemini-2.0-flash then "
        "deepseek-v3.2 keeps answering when the primary model has an outage.",
    ),
    (
        "retries",
        "Retry 429 and 5xx errors with exponential backoff and honour "
        "Retry-After; a circuit breaker opens after repeated failures.",
    ),
    (
        "budgets",
        "A budget reserves each call's worst-case cost before sending "
        "it, so concurrent calls can never overrun the spending cap.",
    ),
    (
        "rollback",
        "Set HOLYSHEEP_ENABLED=false to send traffic straight to the "
        "providers' own endpoints or to a local vLLM server.",
    ),
    (
        "batch",
        "holysheep batch runs a JSONL file through a prompt with "
        "concurrency, a budget cap and resume after interruption.",
    ),
]


def use_simulator_without_key(stack: ExitStack) -> None:
    """No HOLYSHEEP_API_KEY? Serve the embedded simulator and point at it."""
    if os.environ.get("HOLYSHEEP_API_KEY"):
        return
    from langchain_holysheep.simulator import GatewaySimulator

    sim = stack.enter_context(GatewaySimulator())
    os.environ["HOLYSHEEP_API_KEY"] = sim.api_key
    os.environ["HOLYSHEEP_BASE_URL"] = sim.base_url
    print(f"No HOLYSHEEP_API_KEY: using the embedded simulator at {sim.base_url}")


def format_docs(docs: list[Document]) -> str:
    return "\n".join(f"[{d.metadata['topic']}] {d.page_content}" for d in docs)


def main() -> None:
    with ExitStack() as stack:
        use_simulator_without_key(stack)
        store = InMemoryVectorStore.from_documents(
            [Document(text, metadata={"topic": topic}) for topic, text in DOCS],
            embedding=HashingEmbeddings(),
        )
        retriever = store.as_retriever(search_kwargs={"k": 2})
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "Answer from the context only.\n\nContext:\n{context}"),
                ("human", "{question}"),
            ]
        )
        llm = ChatHolySheep(model="deepseek-v3.2", temperature=0, max_tokens=256)
        rag = (
            {"context": retriever | format_docs, "question": RunnablePassthrough()}
            | prompt
            | llm
            | StrOutputParser()
        )

        questions = [
            "How do I keep answering when gpt-4.1 has an outage?",
            "What does gpt-4.1 cost per million tokens?",
            "How can I roll back to the providers' own endpoints?",
        ]
        with get_holysheep_callback() as cb:
            for question in questions:
                topics = [d.metadata["topic"] for d in retriever.invoke(question)]
                print(f"\nQ: {question}\nretrieved: {', '.join(topics)}")
                print(f"A: {rag.invoke(question)[:200]}")
        print(f"\n{cb.report().calls} calls, cost {cb.total_cost:.6f} USD")


if __name__ == "__main__":
    main()
