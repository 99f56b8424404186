"""A peer: the vector store most people would write first, on the same passages and model.

LangChain's FAISS store (``langchain_community.vectorstores.FAISS.from_texts``) with
``HuggingFaceEmbeddings`` over the same sentence-transformers folder the service loads
(``qa.embedding.resolve_model``), default arguments: no e5 prompts, flat L2 index. It gets
the passages our pipeline makes, so both embed exactly the same texts.

Rows, all in this run: indexing passages/s (our ``build_index`` against ``from_texts``),
in-process query latency (``Retriever.search`` against ``similarity_search``, alternating
per question so load drifts hit both alike) and hit@1 on the NorQuAD gold (the top
passage comes from the question's source file).
"""

from __future__ import annotations

import logging
import os
import time
import warnings

from bench.common import Context, median, ms, timed

DEFAULT_THREADS = os.cpu_count() or 1  # what torch starts with on this machine


def _peer_store(ctx: Context, texts: list[str], sources: list[str]):  # type: ignore[no-untyped-def]
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS

    from qa.embedding import resolve_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain-community's deprecation notices
        embeddings = HuggingFaceEmbeddings(
            model_name=resolve_model(ctx.settings()), model_kwargs={"device": "cpu"}
        )
    embeddings.embed_documents(texts[:32])  # warm-up, as ours had
    metadatas = [{"source": s} for s in sources]
    default_threads()
    seconds, store = timed(lambda: FAISS.from_texts(texts, embeddings, metadatas=metadatas))
    return store, seconds


def default_threads() -> None:
    """torch's thread count as a fresh process has it (all cores).

    Our embedder sets one thread for queries and all for passages, process-wide; the peer
    must not inherit whichever it set last.
    """
    import torch

    torch.set_num_threads(DEFAULT_THREADS)


def _our_rate(ctx: Context, n: int) -> tuple[float, str]:
    """Our pipeline's passages/s: the indexing part's figure when it ran in this run."""
    done = ctx.results.get("indexing", {}).get("throughput")
    if done:
        return done["pipeline_passages_per_s"], "indexing part (median)"
    from qa.index import build_index

    s = ctx.settings(sources_dir=ctx.source_dir(), index_dir=ctx.workdir / "peer-ours")
    seconds, _ = timed(lambda: build_index(s, ctx.embedder, progress=False))
    return n / seconds, "one build"


def peer_search(store, query: str) -> list:  # type: ignore[no-untyped-def]
    default_threads()
    return store.similarity_search(query, k=5)


def run(ctx: Context) -> dict:
    from qa.retriever import Retriever

    logging.getLogger("langchain_community").setLevel(logging.ERROR)
    passages = ctx.passages()
    texts = [p.text for p in passages]
    ours_rate, how = _our_rate(ctx, len(texts))
    store, peer_s = _peer_store(ctx, texts, [p.source for p in passages])
    retriever = Retriever.load(ctx.norquad_index(), ctx.settings(), ctx.embedder)
    gold = ctx.questions()
    if ctx.quick:
        gold = gold[:40]
    retriever.search(gold[0]["question"], 5)  # warm-up (lazy loads)
    peer_search(store, gold[0]["question"])
    ours_t, peer_t, ours_hit, peer_hit = [], [], 0, 0
    for i, g in enumerate(gold):
        q = g["question"]
        steps = [("ours", lambda q=q: retriever.search(q, 5))]
        steps.append(("peer", lambda q=q: peer_search(store, q)))
        for name, fn in steps if i % 2 == 0 else steps[::-1]:
            t0 = time.perf_counter()
            out = fn()
            elapsed = time.perf_counter() - t0
            if name == "ours":
                ours_t.append(elapsed)
                ours_hit += bool(out.hits) and out.hits[0].passage.source == g["source"]
            else:
                peer_t.append(elapsed)
                peer_hit += bool(out) and out[0].metadata["source"] == g["source"]
    n = len(gold)
    return {
        "passages": len(texts),
        "questions": n,
        "ours_index_passages_per_s": round(ours_rate, 2),
        "ours_index_measured_by": how,
        "peer_index_passages_per_s": round(len(texts) / peer_s, 2),
        "ours_query_ms": ms(median(ours_t)),
        "peer_query_ms": ms(median(peer_t)),
        "ours_hit@1": round(ours_hit / n, 3),
        "peer_hit@1": round(peer_hit / n, 3),
    }
