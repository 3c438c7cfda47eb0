"""Time and peak memory of embedding + clustering N distinct texts (run as a process).

``python -m ppx.feedback.scale N [THREADS] [EMBEDDER]`` prints one JSON line (with the 1-minute load
average at the start and the end: on a shared machine the seconds are upper bounds). A separate process so the peak
resident memory (``ru_maxrss``) is this job's alone. CPU seconds are reported beside
wall seconds: on a shared machine the wall time mostly measures the other jobs. Texts are world-style reviews made
distinct by an order reference, so de-duplication saves nothing: every text is embedded.
``EMBEDDER`` is ``minilm`` (every text through MiniLM, the default of this command) or
``auto`` (the feedback model's default: MiniLM for every text, as its English part is
clustered on all texts, plus e5 for the Japanese and Russian ones; themes per part).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np


def distinct_texts(n: int, seed: int = 0) -> list[str]:
    from ppx.feedback import themes as T
    from ppx.feedback.textgen import compose_texts

    rng = np.random.default_rng(seed)
    theme = rng.integers(0, len(T.THEMES) + 1, n)
    lang = rng.choice(len(T.LANGUAGES), n, p=[0.84, 0.08, 0.08])
    _, body = compose_texts(theme, lang, rng)
    ref = rng.permutation(n) + 100_000
    return [f"{b} (order {r})" for b, r in zip(body, ref, strict=True)]


def run(n: int, threads: int = 1, embedder: str = "minilm") -> dict:
    import torch

    torch.set_num_threads(threads)
    from ppx.feedback.discover import ThemeParams, fit_themes
    from ppx.feedback.embed import bf16_is_native, embed_texts, load_sentence_model

    load_start = os.getloadavg()[0]

    texts = distinct_texts(n)
    t = time.perf_counter()
    load_sentence_model()
    load_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    if embedder == "minilm":
        emb = embed_texts(texts, progress=True)
    else:
        from ppx.feedback.routing import embed_corpus, routes_for

        routes = routes_for(embedder)
        vectors = embed_corpus(texts, routes, progress=True)
    embed_s, embed_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    if embedder == "minilm":
        model = fit_themes(emb, texts, ThemeParams())
        model.assign(emb)
        n_themes = model.n_themes
    else:
        from ppx.feedback.tagger import fit_model

        fm = fit_model(texts, np.full(n, np.nan), np.ones(n, bool), vectors, routes, ThemeParams())
        fm.assign(vectors.emb, vectors.parts)
        n_themes = fm.themes.n_themes
    cluster_s, cluster_cpu = time.perf_counter() - t, time.process_time() - c
    return {
        "texts": n,
        "torch_threads": threads,
        "embedder": embedder,
        "bf16": bf16_is_native(),
        "load_s": load_s,
        "embed_s": embed_s,
        "texts_per_s": n / embed_s,
        # CPU seconds of this process: what the work costs when it has the cores to itself
        "embed_cpu_s": embed_cpu,
        "texts_per_cpu_s": n / embed_cpu,
        "cluster_s": cluster_s,
        "cluster_cpu_s": cluster_cpu,
        "themes": n_themes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_1min_start": load_start,
        "load_1min_end": os.getloadavg()[0],
    }


if __name__ == "__main__":
    n = int(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    embedder = sys.argv[3] if len(sys.argv) > 3 else "minilm"
    print(json.dumps(run(n, threads, embedder)))
