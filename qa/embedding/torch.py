"""The "torch" backend: sentence-transformers on PyTorch: float32 with Linear layers on
oneDNN, or bfloat16 (autocast) for passages where the CPU has bfloat16 matrix units.

PyTorch is imported inside the functions: importing this module (as ``qa.embedding``
does) must stay cheap for commands that never load a model. ``import torch`` here is the
absolute one, PyTorch itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qa.config import Settings
from qa.embedding.base import BaseEmbedder, lowest_cosine

#: bfloat16 vectors share the float32 fingerprint only at this cosine or above (PROBES).
MIN_BF16_COSINE = 0.999


class TorchEmbedder(BaseEmbedder):
    """sentence-transformers on PyTorch; passages in ``precision`` (queries always float32:
    a single short text loses more to conversions than bfloat16 saves)."""

    concurrent_queries = True

    def __init__(
        self, settings: Settings, st: Any, fingerprint: str, precision: str = "float32"
    ) -> None:
        import torch

        super().__init__(settings)
        self.st, self.fingerprint, self.precision = st, fingerprint, precision
        self._adopt(st)
        self._passage_threads = settings.threads or torch.get_num_threads()
        self._bf16 = False  # passages under bfloat16 autocast (set by ``check_bf16``)
        self.bf16_cosine: float | None = None
        st.eval()

    def check_bf16(self, unit: str | None) -> bool:
        """Switch passages to bfloat16 when its vectors agree with float32 (lowest cosine
        over ``PROBES`` ≥ ``MIN_BF16_COSINE``); else stay float32. ``unit`` names the CPU
        unit that makes it fast (None: forced by QA_PRECISION, emulated)."""
        from qa.embedding.base import say
        from qa.embedding.light import PROBES

        texts = list(PROBES)
        self._bf16 = False
        reference = self.embed_passages(texts)
        self._bf16 = True
        trial = self.embed_passages(texts)
        self.bf16_cosine = lowest_cosine(reference, trial)
        if self.bf16_cosine >= MIN_BF16_COSINE:
            self.precision = f"bfloat16 ({unit or 'emulated: QA_PRECISION=bfloat16'})"
        else:
            self._bf16, self.precision = False, "float32"
            say(f"bfloat16 agrees with float32 only to cosine {self.bf16_cosine:.5f}: float32")
        return self._bf16

    @property
    def bf16_active(self) -> bool:
        return self._bf16

    @property
    def engines(self) -> dict[str, str]:
        from qa.embedding.cpu import cpu_info

        return {
            "queries": "torch float32",
            "passages": f"torch {self.precision}",
            "matrix units": ", ".join(cpu_info().units) or "none",
            "cpu": cpu_info().model,
        }

    def _set_threads(self, interactive: bool) -> None:
        """One thread for queries, all for passages.

        A query is a few dozen tokens: splitting its small matmuls over threads saves
        little, and when another process holds a core, every OpenMP barrier waits for a
        descheduled thread (measured: 11 ms on one thread, 900 ms on two with the other
        core busy). Concurrent queries are batched (qa/embedding/batching.py) instead.
        """
        import torch

        wanted = 1 if interactive else self._passage_threads
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def _run(self, batch: list[str], prompt: str, interactive: bool) -> np.ndarray:
        """``SentenceTransformer.encode`` in its two steps, so only tokenizing is locked."""
        import torch

        with self._tok_lock:
            features = self.st.preprocess([prompt + t for t in batch])
        bf16 = self._bf16 and not interactive  # a question stays float32
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return self.st(features)["sentence_embedding"].float().numpy()


def use_onednn(model: Any) -> int:
    """Route a model's float32 Linear layers through oneDNN with pre-packed weights.

    Same float32 arithmetic (outputs agree to ~1e-6), but on the CPUs we deploy on MKL's
    sgemm runs at about half of oneDNN's speed, and GELU fuses into the feed-forward
    matmul. Undone if anything is missing or the output changes.
    Returns the number of layers replaced.
    """
    import torch

    try:
        linear_op = torch.ops.mkldnn._linear_pointwise
        pack = torch.ops.mkldnn._reorder_linear_weight
    except (AttributeError, RuntimeError):
        return 0
    gelu = torch.nn.functional.gelu

    class OneDnnLinear(torch.nn.Module):
        def __init__(self, linear: torch.nn.Linear, fuse_gelu: bool) -> None:
            super().__init__()
            self.packed, self.bias = pack(linear.weight.detach(), None), linear.bias
            self.attr, self.algorithm = ("gelu", "none") if fuse_gelu else ("none", "")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return linear_op(x, self.packed, self.bias, self.attr, [], self.algorithm)

    undo: list[tuple[torch.nn.Module, str, Any]] = []  # (parent, attribute, original)
    probe = torch.randint(5, 1000, (2, 7))
    with torch.inference_mode():
        try:
            before = model(input_ids=probe)[0]
        except Exception:  # a model this probe cannot drive: leave it alone
            return 0
        for parent in list(model.modules()):
            act = getattr(parent, "intermediate_act_fn", None)
            fuse = getattr(act, "act", None) is gelu  # exact (erf) GELU after "dense"
            for name, child in list(parent.named_children()):
                if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32:
                    fused = fuse and name == "dense"
                    setattr(parent, name, OneDnnLinear(child, fused))
                    undo.append((parent, name, child))
                    if fused:
                        undo.append((parent, "intermediate_act_fn", act))
                        parent.intermediate_act_fn = torch.nn.Identity()
        try:
            ok = torch.allclose(model(input_ids=probe)[0], before, atol=1e-4)
        except RuntimeError:
            ok = False
    if not ok:
        for parent, name, original in reversed(undo):
            setattr(parent, name, original)
        return 0
    return sum(isinstance(m, OneDnnLinear) for m in model.modules())
