"""Text: a sample is a row of token ids ``(L,)``; its features are its tokens.

How a text model is called and explained:

- The run calls the model through ``TextFeed``: token ids in (right-padded with the pad id),
  the arguments the spec's ``inputs`` names out (ids, an attention mask ``ids != pad``), so
  that every stage sees one function of one tensor as for images and tables.
- Removing a token (occlusion, feature ablation, LIME, KernelSHAP, deletion, insertion and
  the references of completeness) replaces its id with the ``remove_with`` token and leaves
  padding alone (``removed``): the attention mask does not change unless ``remove_with`` is
  the pad token, in which case a removed token is also masked out.
- Gradient methods run in the output space of the embedding layer (``EmbeddingSpace``), as
  Captum's ``LayerIntegratedGradients`` does: the embedding of the sample is the input, the
  baseline is the embedding of the removed sample under the sample's own attention mask,
  and a token's attribution is the sum over the embedding dimension (so Integrated
  Gradients' attributions still sum to ``f(x) - f(baseline)``; Sundararajan et al. 2017).
  The padding travels with the embedded batch as one more channel, so every row keeps its
  own mask. With ``remove_with: pad`` the baseline is the pad embedding *attended* (the
  mask is the sample's), while perturbation methods mask a removed token out: the two
  agree for a model whose pad embedding is zero and that pools under its mask.
- Padded positions get attribution 0. A local ranking is over tokens (the vocabulary): a
  token's score over the slice is its shrunk mean |attribution| ``sum / (count + 5)``, so a
  rare token with one large value is not ranked above a frequent consistent one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from auditor.errors import SpecError
from auditor.modalities.feed import ModelFeed
from auditor.modalities.text_modality import TEXT as TEXT  # re-exported
from auditor.modalities.text_modality import TextModality as TextModality  # re-exported
from auditor.modalities.text_modality import _special as _special  # re-exported
from auditor.modalities.text_modality import _token
from auditor.suggest import did_you_mean

if TYPE_CHECKING:
    from auditor.explainers.base import Explainer

#: Pseudo-count of the shrunk mean a token's slice score is (``sum / (count + PRIOR)``).
PRIOR = 5.0
#: Tokens kept in ``rankings/<id>.tokens.json``: overall and per class.
TOP_OVERALL, TOP_PER_CLASS = 30, 15


# -- calling the model --------------------------------------------------------------------
@dataclass(frozen=True)
class Feed:
    """How the model takes a batch: positional tensors, then keyword tensors, by name
    (``input_ids`` or ``attention_mask``)."""

    positional: tuple[str, ...] = ("input_ids",)
    keywords: tuple[tuple[str, str], ...] = ()


def removed(ids: torch.Tensor, pad_id: int, remove_id: int) -> torch.Tensor:
    """``ids`` with every token replaced by ``remove_id`` and padding left as it is."""
    out = torch.full_like(ids, remove_id)
    return torch.where(
        ids.round() == pad_id if ids.is_floating_point() else ids == pad_id, ids, out
    )


def embedding_layers(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if isinstance(m, nn.Embedding) and name]


def resolve_embedding(module: nn.Module, name: str | None) -> str:
    """The path of the embedding layer to attribute at: ``name``, or the first
    ``nn.Embedding``; a SpecError at ``data.embedding_layer`` with a close match if none."""
    layers = embedding_layers(module)
    if name is None:
        if not layers:
            raise SpecError.at(
                ("data", "embedding_layer"),
                "the model has no nn.Embedding layer; name the layer whose output the "
                "gradient methods attribute at with data.embedding_layer",
            )
        return layers[0]
    modules = dict(module.named_modules())
    if name not in modules or not name:
        names = [n for n in modules if n]
        raise SpecError.at(
            ("data", "embedding_layer"),
            f"the model has no layer '{name}'.{did_you_mean(name, names)}"
            + (f" Its nn.Embedding layers: {', '.join(layers)}" if layers else ""),
        )
    if not isinstance(getattr(modules[name], "num_embeddings", None), int):
        raise SpecError.at(
            ("data", "embedding_layer"),
            f"layer '{name}' ({type(modules[name]).__name__}) is not an embedding of token "
            f"ids; name an nn.Embedding" + (f": {', '.join(layers)}" if layers else ""),
        )
    return name


def vocabulary_issues(module: nn.Module, layer: str, vocab_size: int) -> list[str]:
    """A tokenizer with more ids than the embedding table has rows gives out-of-range ids."""
    embedding = dict(module.named_modules())[layer]
    rows = getattr(embedding, "num_embeddings", None)
    if isinstance(rows, int) and vocab_size > rows:
        return [
            f"the tokenizer has {vocab_size} tokens but the model's embedding '{layer}' has "
            f"{rows} rows: ids {rows} and above would be out of range; use the tokenizer "
            "the model was trained with"
        ]
    return []


# -- gradient methods in embedding space ----------------------------------------------------
class _Replaced(nn.Module):
    """The model as a function of the embedding layer's output with one more channel:
    ``(B, L, D + 1)``, the embedding and, last, 1 where the position is padding.

    The ids fed to the model (whose embedding output is replaced) carry that padding, so the
    attention mask is each row's own: ``ids`` (one row) when given, else the pad token where
    the channel is above 1/2 and ``fill_id`` elsewhere. Path methods keep the channel exact
    (the baseline has the same padding); noise methods get ``ids``, one sample at a time.
    """

    def __init__(
        self, feed: TextFeed, layer: nn.Module, pad_id: int, fill_id: int, ids: Any = None
    ) -> None:
        super().__init__()
        self.feed = feed
        self.layer = layer
        self.pad_id, self.fill_id = pad_id, fill_id
        self.ids = ids

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedded = x[..., :-1]
        if self.ids is not None:
            ids = self.ids.expand(x.shape[0], -1)
        else:
            pads = x[..., -1].detach() > 0.5
            ids = torch.where(pads, self.pad_id, self.fill_id)
        handle = self.layer.register_forward_hook(lambda _m, _i, _o: embedded)
        try:
            return self.feed(ids)
        finally:
            handle.remove()


@dataclass(frozen=True)
class EmbeddingSpace:
    """Runs a gradient explainer on the embedding output of text samples (module docstring).

    ``explain(explainer, ids, targets)`` returns ``(N, L)`` float32 token attributions: the
    explainer's attributions in ``(N, L, D)`` summed over ``D``, padding set to 0. A method
    that draws random numbers runs one sample at a time (as it would anyway), with that
    sample's ids; every other method gets the whole batch at once.
    """

    layer: str
    pad_id: int
    remove_id: int

    @property
    def fill_id(self) -> int:
        """An id that is not padding, fed where the embedding output is replaced anyway."""
        if self.remove_id != self.pad_id:
            return self.remove_id
        return 1 if self.pad_id == 0 else 0

    def explain(
        self, explainer: Explainer, ids: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        feed = explainer.model
        if not isinstance(feed, TextFeed):
            raise TypeError("a text explainer's model must be a TextFeed")
        layer = dict(feed.named_modules())[self.layer]
        ids = ids.round().to(torch.long) if ids.is_floating_point() else ids.to(torch.long)
        pads = ids == self.pad_id
        with torch.no_grad():
            embedded = _with_padding(layer(ids), pads)
            hole = layer(torch.tensor([self.remove_id])).detach().to(torch.float32)[0]
        hole = torch.cat([hole, torch.zeros(1)])

        def reference(x: torch.Tensor) -> torch.Tensor:
            """``x`` with every real token's embedding that of the remove token."""
            return torch.where(x[..., -1:] > 0.5, x, hole.expand_as(x))

        if explainer.stochastic or explainer.uses_background:
            parts = []
            for i in range(len(ids)):
                model = _Replaced(feed, layer, self.pad_id, self.fill_id, ids[i : i + 1])
                row = embedded[i : i + 1]
                with _in_space(explainer, model, reference(row), None):
                    parts.append(explainer.explain_dense(row, targets[i : i + 1]))
            attr = torch.cat(parts)
        else:
            model = _Replaced(feed, layer, self.pad_id, self.fill_id)
            with _in_space(explainer, model, None, reference):
                attr = explainer.explain_dense(embedded, targets)
        return attr[..., :-1].sum(dim=-1).masked_fill(pads, 0.0)

    @torch.no_grad()
    def reference_outputs(self, feed: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        """The model's outputs at the gradient methods' baseline: every real token's
        embedding that of the remove token, the padding (and so the mask) of ``ids``."""
        if not isinstance(feed, TextFeed):
            raise TypeError("a text explainer's model must be a TextFeed")
        layer = dict(feed.named_modules())[self.layer]
        ids = ids.round().to(torch.long) if ids.is_floating_point() else ids.to(torch.long)
        pads = ids == self.pad_id
        embedded = _with_padding(layer(removed(ids, self.pad_id, self.remove_id)), pads)
        return _Replaced(feed, layer, self.pad_id, self.fill_id)(embedded)


def _with_padding(embedded: torch.Tensor, pads: torch.Tensor) -> torch.Tensor:
    """``(N, L, D) -> (N, L, D + 1)`` float32: the padding as a last channel."""
    return torch.cat([embedded.detach().to(torch.float32), pads.unsqueeze(-1).float()], -1)


@contextmanager
def _in_space(
    explainer: Explainer, model: nn.Module, base: torch.Tensor | None, reference: Any
) -> Iterator[None]:
    """The explainer with ``model``, and as its baseline either ``base`` (one sample: its
    background, and the ``mean`` baseline) or ``reference(inputs)`` (``removed``)."""
    saved = explainer.model, explainer.context, explainer.params
    explainer.model = model
    explainer.context = replace(
        explainer.context,
        input_shape=(),
        background=base,
        gradients=None,
        inference=None,
        embedding=None,
        removed=reference,
    )
    if base is not None and isinstance(getattr(explainer.params, "baseline", None), str):
        # "mean" of a one-sample background is that sample: the embedded removed text
        explainer.params = explainer.params.model_copy(update={"baseline": "mean"})
    try:
        yield
    finally:
        explainer.model, explainer.context, explainer.params = saved


# -- rankings over tokens -------------------------------------------------------------------
def token_scores(
    attributions: np.ndarray, ids: np.ndarray, pad_id: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vocabulary id: the sum of |attribution|, the sum of signed attribution and the
    number of occurrences over ``attributions`` ``(N, L)`` with ``ids`` ``(N, L)``."""
    real = ids != pad_id
    flat_ids = ids[real]
    values = np.asarray(attributions, dtype=np.float64)[real]
    size = max(vocab_size, int(flat_ids.max()) + 1 if flat_ids.size else 0)
    magnitude = np.bincount(flat_ids, weights=np.abs(values), minlength=size)
    signed = np.bincount(flat_ids, weights=values, minlength=size)
    count = np.bincount(flat_ids, minlength=size).astype(np.float64)
    return magnitude, signed, count


def shrunk(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``total / (count + PRIOR)``: a mean that a few occurrences cannot make large."""
    return total / (count + PRIOR)


def top_tokens(
    magnitude: np.ndarray,
    signed: np.ndarray,
    count: np.ndarray,
    vocab: list[str],
    k: int,
    *,
    by_signed: bool = False,
) -> list[dict[str, Any]]:
    """The ``k`` best tokens by shrunk mean (|attribution|, or signed towards the class)."""
    score = shrunk(signed if by_signed else magnitude, count)
    order = [i for i in np.argsort(-score, kind="stable") if count[i] > 0][:k]
    return [
        {
            "token": _token(vocab, int(i)),
            "mean": float(signed[i] / count[i]),
            "mean_abs": float(magnitude[i] / count[i]),
            "count": int(count[i]),
            "score": float(score[i]),
        }
        for i in order
    ]


def rank_tokens(
    path: Any,
    ids: np.ndarray,
    targets: np.ndarray,
    vocab: list[str],
    class_names: list[str],
    pad_id: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A local explainer's ranking over the vocabulary from its ``(N, L)`` attribution file:
    (score per token id, mean |attribution| per token id, the ``tokens.json`` tables)."""
    attributions = np.load(path, mmap_mode="r")
    magnitude, signed, count = token_scores(np.asarray(attributions), ids, pad_id, len(vocab))
    tables: dict[str, Any] = {
        "overall": top_tokens(magnitude, signed, count, vocab, TOP_OVERALL),
        "by_class": {},
        "prior": PRIOR,
    }
    for k, name in enumerate(class_names):
        rows = targets == k
        if rows.any():
            m, s, c = token_scores(np.asarray(attributions)[rows], ids[rows], pad_id, len(vocab))
            tables["by_class"][name] = top_tokens(m, s, c, vocab, TOP_PER_CLASS, by_signed=True)
    mean = np.divide(magnitude, count, out=np.zeros_like(magnitude), where=count > 0)
    return shrunk(magnitude, count), mean, tables


class TextFeed(ModelFeed):
    """The model as a function of token ids ``(N, L)`` (float ids are rounded), its layers
    under their own names (``ModelFeed``)."""

    def __init__(self, module: nn.Module, feed: Any, pad_id: int) -> None:
        super().__init__(module)
        self.positional = tuple(feed.positional)
        self.keywords = tuple(feed.keywords)
        self.pad_id = int(pad_id)

    def arguments(self, ids: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The model's positional and keyword arguments for token ids ``(N, L)``."""
        if ids.is_floating_point():
            ids = ids.round().to(torch.long)
        tensors = {"input_ids": ids, "attention_mask": (ids != self.pad_id).to(torch.long)}
        args = [tensors[name] for name in self.positional]
        kwargs = {key: tensors[name] for key, name in self.keywords}
        return args, kwargs

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        args, kwargs = self.arguments(ids)
        return self.inner(*args, **kwargs)


@dataclass(frozen=True)
class TextInputs:
    """What a text run needs besides its data: the model fed with ids, where gradient
    methods run, what removing a token means, and the vocabulary."""

    feed: TextFeed
    space: EmbeddingSpace
    vocab: list[str]
    pad_id: int
    remove_id: int

    def removed(self, inputs: torch.Tensor) -> torch.Tensor:
        return removed(inputs, self.pad_id, self.remove_id)

    @classmethod
    def build(cls, dataset: Any, module: nn.Module) -> TextInputs:
        """From a text dataset and the loaded model; a SpecError for an unknown embedding
        layer or a vocabulary larger than the embedding table."""
        layer = resolve_embedding(module, getattr(dataset, "embedding_layer", None))
        vocab = dataset.vocab
        problems = vocabulary_issues(module, layer, int(vocab.size))
        if problems:
            where = (
                "data",
                "tokenizer" if getattr(dataset, "tokenizer_kind", "") != "vocab" else "vocab",
            )
            raise SpecError.at(where, problems[0])
        tokens = [vocab.token(i) for i in range(int(vocab.size))]
        return cls(
            feed=TextFeed(module, dataset.feed, vocab.pad_id),
            space=EmbeddingSpace(layer, int(vocab.pad_id), int(vocab.remove_id)),
            vocab=tokens,
            pad_id=int(vocab.pad_id),
            remove_id=int(vocab.remove_id),
        )


def save_tokens(folder: Any, dataset: Any, indices: np.ndarray, inputs: TextInputs) -> None:
    """``tokens.npz`` of the slice, in slice order, for the report: ``ids``, ``lengths``,
    ``pieces`` (token strings, "" for pads), ``word_ids``, ``offsets``, ``truncated``,
    ``texts``. All are data (no pickles)."""
    import io

    ids = dataset.get(indices).numpy().astype(np.int64)
    vocab = np.asarray([*inputs.vocab, ""], dtype=str)
    index = np.where((ids >= 0) & (ids < len(inputs.vocab)), ids, len(inputs.vocab))
    lengths = np.asarray(dataset.lengths)[indices].astype(np.int64)
    padding = np.arange(ids.shape[1])[None, :] >= lengths[:, None]
    pieces = np.where(padding, "", vocab[index])
    arrays = {
        "ids": ids,
        "lengths": lengths,
        "pieces": pieces,
        "word_ids": np.asarray(dataset.word_ids)[indices].astype(np.int32),
        "offsets": np.asarray(dataset.offsets)[indices].astype(np.int32),
        "truncated": np.asarray(dataset.truncated)[indices].astype(bool),
        "texts": np.asarray([dataset.texts[int(i)] for i in indices], dtype=str),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    folder.write_bytes("tokens.npz", buffer.getvalue())
