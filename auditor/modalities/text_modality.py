"""The text modality's decisions (``TextModality``), without torch: what the report and
the rankings ask of text. How a text model is called and explained, with torch, is
``auditor.modalities.text`` (which re-exports these names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from auditor.modalities.base import Modality, register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from auditor.explainers.grid import SliceFeatures
    from auditor.modalities.text import TextInputs


class TextModality(Modality):
    """Stateless decisions for text; ``feature_names`` of text data is its vocabulary."""

    name: ClassVar[str] = "text"
    own_features: ClassVar[bool] = True
    gradients_hook: ClassVar[bool] = True
    precisions: ClassVar[tuple[str, ...]] = ("float32",)
    size_word: ClassVar[str] = "token count"

    def ranked_features(
        self, input_shape: tuple[int, ...] | None, feature_names: list[str] | None
    ) -> list[str] | None:
        return None if feature_names is None else list(feature_names)

    def slice_features(
        self,
        inputs: torch.Tensor,
        feature_names: list[str] | None,
        grid: tuple[int, int],
        pad_id: int | None = None,
    ) -> SliceFeatures:
        """A bag of words: the share of each text's tokens that are each token of the
        vocabulary (term frequency), for the tokens that occur in the slice (padding, ``pad_id``
        or by its usual names, and other bracketed special tokens left out). Shares, not
        counts: a long text is not a strong one."""
        import torch

        from auditor.explainers.grid import SliceFeatures

        ids = inputs.detach().round().to(torch.long).cpu().numpy()
        vocab = feature_names or []
        size = max(len(vocab), int(ids.max()) + 1 if ids.size else 0)
        counts = np.zeros((len(ids), size))
        rows = np.repeat(np.arange(len(ids)), ids.shape[1])
        np.add.at(counts, (rows, ids.reshape(-1)), 1.0)
        pad = self._pad(vocab) if pad_id is None else pad_id
        real = counts.sum(axis=1, keepdims=True) - counts[:, [pad]]
        counts = counts / np.maximum(real, 1.0)
        keep = [
            i
            for i in np.flatnonzero(counts.any(axis=0))
            if i != pad and not _special(_token(vocab, i))
        ]
        names = [_token(vocab, i) for i in keep]
        return SliceFeatures(counts[:, keep], names, np.arange(ids.shape[1]), None, "tokens")

    @staticmethod
    def _pad(vocab: list[str]) -> int:
        """The pad id, by the names tokenizers give it (0 if none matches)."""
        for name in ("[PAD]", "<pad>", "<PAD>"):
            if name in vocab:
                return vocab.index(name)
        return 0

    def prepare(self, dataset: Any, module: nn.Module) -> TextInputs:
        from auditor.modalities.text import TextInputs

        return TextInputs.build(dataset, module)


def _token(vocab: list[str], i: int) -> str:
    return vocab[i] if i < len(vocab) else f"#{i}"


def _special(token: str) -> bool:
    return len(token) > 2 and token[0] + token[-1] in ("[]", "<>")


TEXT = register(TextModality())
