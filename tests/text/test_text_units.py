"""Text details: a pad id inside a text, the bag of words' padding, and metrics over a
text's own tokens (padding left out)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny_text import ID, PAD, corpus, feed, text_explainer

from auditor.metrics.similarity import gini
from auditor.modalities import modality_of


def test_shap_partition_keeps_values_on_their_positions_around_an_inner_pad() -> None:
    ids = torch.tensor([[ID["w1"], PAD, ID["superb"], ID["w2"], PAD, PAD]])
    target = feed()(ids).argmax(1)
    values = text_explainer("shap_partition", feed(), {"max_evals": 64}).explain(ids, target)
    assert values[0, 1] == 0 and values[0, 4] == 0 and values[0, 5] == 0
    assert int(values[0].abs().argmax()) == 2  # the planted word, where it stands


def test_the_bag_of_words_leaves_out_the_named_pad() -> None:
    vocab = ["!", "good", "bad", "film", "<|pad|>"]
    ids = torch.tensor([[1, 3, 4, 4, 4, 4], [2, 3, 3, 0, 4, 4]], dtype=torch.float32)
    table = modality_of("text").slice_features(ids, vocab, (1, 1), pad_id=4)
    assert table.names == ["!", "good", "bad", "film"]
    np.testing.assert_allclose(table.table, [[0, 0.5, 0, 0.5], [0.25, 0, 0.25, 0.5]])


def test_sparseness_and_agreement_count_only_a_texts_own_tokens(tmp_path: Path) -> None:
    from tiny_text import text_context

    from auditor import registries
    from auditor.data.base import TensorDataset
    from auditor.explainers.base import Predictions
    from auditor.metrics.base import ExplainerRun, MetricContext, SliceAccess
    from auditor.metrics.similarity import kendall

    ids, labels, _ = corpus(12, seed=9)
    with torch.no_grad():
        logits = feed()(ids).numpy()
    targets = logits.argmax(1)
    runs = {}
    for name in ("integrated_gradients", "occlusion"):
        values = text_explainer(name, feed()).explain(ids, torch.as_tensor(targets)).numpy()
        np.save(tmp_path / f"{name}.npy", values)
        cls = registries.explainers.get(name)
        runs[name] = ExplainerRun(
            name, name, cls, cls.Params(), np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        )
    data = TensorDataset(ids.float(), labels.numpy(), modality="text", class_names=["0", "1"])
    ctx = MetricContext(
        model=feed(),
        data=SliceAccess(data, np.arange(len(ids)), 5),
        predictions=Predictions(logits, labels.numpy(), targets),
        context=text_context(),
        explainers=runs,
        log=lambda _: None,
    )
    real = (ids != PAD).numpy()
    occlusion = runs["occlusion"].attributions
    sparseness = registries.metrics.get("sparseness")
    out = sparseness(sparseness.Params()).measure(replace_run(ctx, runs["occlusion"]))
    expected = [gini(a[keep]) for a, keep in zip(occlusion, real, strict=True)]
    np.testing.assert_allclose(out.per_sample, expected)
    assert not np.allclose(expected, [gini(a) for a in occlusion])  # padding would count
    agreement = registries.metrics.get("agreement")
    out = agreement(agreement.Params()).measure(ctx)
    ig = runs["integrated_gradients"].attributions
    own = [
        kendall(np.abs(a[keep]), np.abs(b[keep]))
        for a, b, keep in zip(ig, occlusion, real, strict=True)
    ]
    np.testing.assert_allclose(out.per_sample, own)


def replace_run(ctx: object, run: object) -> object:
    from dataclasses import replace

    return replace(ctx, explainer=run)
