"""PartitionSHAP: Owen values over a hierarchy of image regions or of a text's tokens, with
shap as the engine.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874; the partition explainer computes Owen values
(Owen 1977) over shap's axis-aligned image hierarchy. Engine: ``shap.PartitionExplainer``
with ``shap.maskers.Image`` whose hidden pixels take a reference value (a Gaussian blur
of the image, the slice mean, or zeros; computed here, so OpenCV is not needed), on the
target output only. Attributions sum to ``f(x) - f(reference)``; the gap is kept.

Text: ``shap.maskers.Text`` over the sample's tokens, its hierarchy from shap's
``partition_tree`` (tokens merged by sentence structure), a hidden token replaced by the
``remove_with`` token (the id, so nothing is re-tokenized; padding is never a feature).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.baselines import make_baseline
from auditor.explainers.shap_support import completeness_gap, target_outputs
from auditor.plugin import Params


class ShapPartitionParams(Params):
    mask: Literal["blur", "mean", "zeros"] = Field(
        "blur", description="Value of hidden pixels: blurred image, slice mean, or zeros."
    )
    blur_sigma: float = Field(
        4.0, gt=0.0, le=1000.0, description="Gaussian blur sigma in pixels (mask 'blur')."
    )
    max_evals: int = Field(500, ge=3, le=1_000_000, description="Model evaluations per sample.")
    batch_size: int = Field(64, ge=1, le=100_000, description="Masked images per forward pass.")


class ImageTargetFunction:
    """A numpy function of ``(n, H, W, C)`` images: the model's ``target`` output."""

    def __init__(self, model: nn.Module, target: int) -> None:
        self.model, self.target = model, target

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
        return self.model(x.contiguous())[:, self.target].numpy()


class ShapPartition(Explainer):
    """shap's PartitionExplainer (Owen values) over image regions, on the target output."""

    name: ClassVar[str] = "shap_partition"
    stats = ("convergence_delta",)
    Params = ShapPartitionParams
    modalities = frozenset({"image", "text"})

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import shap

        if self.context.removed is not None:
            return self._attribute_text(inputs, targets)
        p = self.params
        references = make_baseline(
            p.mask,
            inputs,
            self.context.background,
            blur_sigma=p.blur_sigma,
        )
        out = torch.empty_like(inputs)
        for i in range(len(inputs)):
            # shap's image masker and hierarchy work on channel-last images
            reference = references[i].permute(1, 2, 0).numpy()
            masker = shap.maskers.Image(reference.copy())
            explainer = shap.PartitionExplainer(
                ImageTargetFunction(self.model, int(targets[i])), masker
            )
            image = inputs[i].permute(1, 2, 0).numpy()[None]
            result = explainer(image, max_evals=p.max_evals, batch_size=p.batch_size, silent=True)
            out[i] = torch.as_tensor(np.asarray(result.values)[0]).permute(2, 0, 1)
        reference_outputs = target_outputs(self.model, references, targets)
        self.record(
            convergence_delta=completeness_gap(self.model, inputs, targets, out, reference_outputs)
        )
        return out

    def _attribute_text(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Owen values of each real token of each text (padding gets 0)."""
        import shap

        p, space, vocab = self.params, self.context.embedding, self.context.feature_names or []
        if space is None:
            raise ValueError("shap_partition on text needs the text run's token ids")
        ids = inputs.round().to(torch.long)
        out = torch.zeros_like(inputs)
        for i in range(len(ids)):
            where = torch.nonzero(ids[i] != space.pad_id).flatten()  # a pad id inside a text
            real = ids[i][where].tolist()  # is not a token, wherever it stands
            if not real:
                continue
            tokenizer = PiecesTokenizer(real, vocab)
            masker = shap.maskers.Text(
                tokenizer,
                mask_token=space.remove_id,
                collapse_mask_token=False,
                output_type="input_ids",
            )
            function = TokenTargetFunction(self.model, int(targets[i]), ids.shape[1], space.pad_id)
            explainer = shap.PartitionExplainer(function, masker)
            result = explainer(
                [tokenizer.text], max_evals=p.max_evals, batch_size=p.batch_size, silent=True
            )
            out[i, where] = torch.as_tensor(np.asarray(result.values[0], dtype=np.float32))
        reference = target_outputs(self.model, self.context.removed(inputs), targets)
        self.record(convergence_delta=completeness_gap(self.model, inputs, targets, out, reference))
        return out


class PiecesTokenizer:
    """A tokenizer for shap's Text masker that gives back one text's own ids: the text is
    its token strings joined by spaces, so every token is one segment and nothing is
    re-tokenized (any other string is split at spaces and looked up)."""

    def __init__(self, ids: list[int], vocab: list[str]) -> None:
        self.ids = ids
        self.pieces = [vocab[t] if 0 <= t < len(vocab) else f"#{t}" for t in ids]
        self.text = " ".join(self.pieces)
        self.index = {piece: i for i, piece in reversed(list(enumerate(vocab)))}

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, list]:
        pieces = self.pieces if s == self.text else s.split()
        ids = self.ids if s == self.text else [self.index.get(x, 0) for x in pieces]
        offsets, start = [], 0
        for piece in pieces:
            start = s.index(piece, start)
            offsets.append((start, start + len(piece)))
            start += len(piece)
        return {"input_ids": list(ids), "offset_mapping": offsets}


class TokenTargetFunction:
    """A numpy function of ``(n, tokens)`` id rows: the model's ``target`` output, each row
    right-padded to ``length`` with ``pad_id``."""

    def __init__(self, model: nn.Module, target: int, length: int, pad_id: int) -> None:
        self.model, self.target, self.length, self.pad_id = model, target, length, pad_id

    @torch.no_grad()
    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)
        ids = torch.full((len(rows), self.length), self.pad_id, dtype=torch.long)
        ids[:, : rows.shape[1]] = torch.as_tensor(rows)
        return self.model(ids)[:, self.target].numpy()
