"""A text audit from the CLI on the example classifier (models/text_classifier.safetensors):
planted words come out on top, files have the run-folder contract's shapes, and spec
problems that need the model (embedding layer, vocabulary size, an image-only explainer)
are exit 2 before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import read_results, run_cli

ROOT = Path(__file__).resolve().parents[2]
N = 40
POSITIVE = {"excellent", "superb", "wonderful", "fantastic", "brilliant", "delightful"}
NEGATIVE = {"awful", "terrible", "dreadful", "horrible", "abysmal", "atrocious"}


def spec(**changes: str) -> str:
    values = {
        "embedding_layer": "embedding",
        "remove_with": "pad",
        "vocab_size": "147",
        "weights": f"weights: {ROOT}/models/text_classifier.safetensors",
        "explainers": """\
  - type: saliency
  - type: integrated_gradients
    params: {n_steps: 32}
  - type: occlusion
    params: {window: 1}
  - type: lime
    params: {n_samples: 96}
  - type: kernel_shap
    params: {nsamples: 96}
  - type: surrogate_linear""",
    } | changes
    return f"""\
version: 1
name: text
model:
  source: python
  class: examples.text_models:TextClassifier
  pythonpath: [{ROOT}]
  init: {{vocab_size: {values["vocab_size"]}, dim: 32, hidden: 32, num_classes: 2}}
  {values["weights"]}
data:
  source: text
  path: {ROOT}/data/text_reviews.csv
  classes: [negative, positive]
  tokenizer: {ROOT}/models/text_tokenizer.json
  max_length: 32
  inputs: [input_ids, attention_mask]
  embedding_layer: {values["embedding_layer"]}
  remove_with: {values["remove_with"]}
  slice: {{start: 0, stop: {N}}}
explainers:
{values["explainers"]}
metrics:
  - type: deletion
  - type: randomization_sanity
    explainers: [integrated_gradients]
  - type: completeness_error
    explainers: [integrated_gradients]
checks:
  - ranking: integrated_gradients
    top_k: 12
    must_include: [superb, awful]
  - metric: integrated_gradients.completeness_error
    max: 0.01
report:
  formats: [html]
output: runs
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "text.yaml"
    path.write_text(text)
    return path


def test_text_audit_ranks_the_planted_words_first(tmp_path: Path) -> None:
    done = run_cli("run", str(write(tmp_path, spec())), "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr[-3000:]
    folder = next(p for p in (tmp_path / "runs" / "text").iterdir() if p.is_dir())
    results = read_results(folder)
    assert results["data"]["modality"] == "text"
    assert results["data"]["ranked_features"] is None
    assert all(e["status"] == "ok" for e in results["explainers"].values())
    assert [c["status"] for c in results["checks"]] == ["pass", "pass"]
    with np.load(folder / "tokens.npz", allow_pickle=False) as tokens:
        ids, lengths, pieces = tokens["ids"], tokens["lengths"], tokens["pieces"]
        texts = tokens["texts"]
    assert ids.shape == (N, 32) and len(texts) == N
    padding = np.arange(32)[None, :] >= lengths[:, None]
    assert (ids[padding] == 0).all() and (pieces[padding] == "").all()
    planted = POSITIVE | NEGATIVE
    for name in ("integrated_gradients", "occlusion", "lime", "kernel_shap"):
        attributions = np.load(folder / "attributions" / f"{name}.npy")
        assert attributions.shape == (N, 32)
        assert (attributions[padding] == 0).all()
        top = np.abs(attributions).argmax(axis=1)
        hits = np.mean([pieces[i, top[i]] in planted for i in range(N)])
        assert hits >= 0.95, f"{name}: planted word first in {hits:.0%} of texts"
        tables = json.loads((folder / "rankings" / f"{name}.tokens.json").read_text())
        assert tables["overall"][0]["token"] in planted
        assert tables["by_class"]["positive"][0]["token"] in POSITIVE
        assert tables["by_class"]["negative"][0]["token"] in NEGATIVE
        assert results["explainers"][name]["ranking"][0]["feature"] in planted
    surrogate = results["explainers"]["surrogate_linear"]
    top5 = [f["feature"] for f in surrogate["ranking"][:5]]
    assert len(planted.intersection(top5)) >= 3, top5  # a bag of words fitted to 30 texts
    assert np.isfinite(surrogate["fidelity"]["r2"])  # held out of 40 texts: not a quality bar
    completeness = results["explainers"]["integrated_gradients"]["metrics"]
    assert completeness["completeness_error"]["mean"] < 0.01


def test_a_misspelled_embedding_layer_is_a_spec_error_before_the_run(tmp_path: Path) -> None:
    path = write(tmp_path, spec(embedding_layer="embeding"))
    done = run_cli("run", str(path), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stderr
    line = spec().splitlines().index("  embedding_layer: embedding") + 1
    assert f"{path}:{line}:" in done.stderr
    assert "data.embedding_layer" in done.stderr
    assert "the model has no layer 'embeding'" in done.stderr
    assert "Did you mean: embedding?" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_tokenizer_larger_than_the_embedding_table_is_a_spec_error(tmp_path: Path) -> None:
    path = write(tmp_path, spec(vocab_size="100", weights=""))
    done = run_cli("run", str(path), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stderr
    assert "data.tokenizer" in done.stderr
    assert "the tokenizer has 147 tokens but the model's embedding 'embedding' has 100 rows" in (
        done.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_an_image_only_explainer_on_text_lists_those_that_apply(tmp_path: Path) -> None:
    explainers = "  - type: gradcam\n    params: {layer: embedding}\n  - type: integrated_gradients"
    path = write(tmp_path, spec(explainers=explainers))
    done = run_cli("validate", str(path))
    assert done.returncode == 2, done.stderr
    assert "explainer 'gradcam' works on image data; this data is text" in done.stderr
    assert "Explainers for text data:" in done.stderr
    assert "integrated_gradients" in done.stderr.split("Explainers for text data:")[1]
    assert "deeplift" not in done.stderr.split("Explainers for text data:")[1]


def test_a_misspelled_token_in_a_ranking_check_is_found_by_validate(tmp_path: Path) -> None:
    path = write(
        tmp_path, spec().replace("must_include: [superb, awful]", "must_include: [superbb]")
    )
    done = run_cli("validate", str(path))
    assert done.returncode == 2, done.stderr
    assert "checks[0].must_include[0]: unknown feature 'superbb'. Did you mean: superb?" in (
        done.stderr
    )


def test_a_transformer_encoder_called_with_keywords_is_audited(tmp_path: Path) -> None:
    """nn.TransformerEncoder's inference fast path would hand the layer hooks nested tensors;
    the run turns it off, and the model gets (ids=..., mask=...) as the spec maps them."""
    text = (
        spec(
            weights="",
            embedding_layer="tok",
            explainers="  - type: integrated_gradients\n    params: {n_steps: 256}",
        )
        .replace("class: examples.text_models:TextClassifier", "class: text_models:TinyTransformer")
        .replace(f"pythonpath: [{ROOT}]", f"pythonpath: [{ROOT}/tests/runner]")
        .replace("init: {vocab_size: 147, dim: 32, hidden: 32, num_classes: 2}", "init: {}")
        .replace(
            "inputs: [input_ids, attention_mask]", "inputs: {ids: input_ids, mask: attention_mask}"
        )
        .replace(f"stop: {N}", "stop: 12")
        .split("metrics:")[0]
        + "report:\n  formats: [html]\noutput: runs\n"
    )
    done = run_cli("run", str(write(tmp_path, text)), "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr[-3000:]
    results = read_results(next(p for p in (tmp_path / "runs" / "text").iterdir() if p.is_dir()))
    assert results["model"]["class_name"] == "TinyTransformer"
    layers = {layer["name"]: layer for layer in results["model"]["layers"]}
    assert layers["enc.layers.0.self_attn"]["output_shape"] is not None
    delta = results["explainers"]["integrated_gradients"]["stats"]["convergence_delta"]
    # sums to f(x) - f(baseline): layer norms make the path curved, so 256 steps (at 32 the
    # gap is up to 0.75 here, as with Captum's LayerIntegratedGradients, which it equals)
    assert max(abs(delta["min"]), abs(delta["max"])) < 0.05


def test_text_problems_that_need_the_model_are_exit_2_before_the_run(tmp_path: Path) -> None:
    """bfloat16, an embedding layer that is not an embedding, a metric that does not take
    text: every one at once, nothing written."""
    text = spec(embedding_layer="classifier.0").replace(
        "output: runs", "precision: bfloat16\noutput: runs"
    )
    text = text.replace("  - type: deletion", "  - type: stability\n  - type: deletion")
    done = run_cli("run", str(write(tmp_path, text)), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stderr
    assert "precision bfloat16 is not supported for text data (yet); use float32" in done.stderr
    assert "layer 'classifier.0' (Linear) is not an embedding of token ids" in done.stderr
    assert "metric 'stability' works on image and tabular data; this data is text" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_torchscript_text_model_refuses_gradient_methods(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from examples.text_models import TextClassifier

    model = TextClassifier(vocab_size=147)
    model.load_state_dict(load_file(ROOT / "models" / "text_classifier.safetensors"))
    ids = torch.ones(2, 32, dtype=torch.long)
    torch.jit.save(torch.jit.trace(model.eval(), (ids, ids)), tmp_path / "text.pt")
    text = (
        spec()
        .replace(
            f"class: examples.text_models:TextClassifier\n  pythonpath: [{ROOT}]\n"
            "  init: {vocab_size: 147, dim: 32, hidden: 32, num_classes: 2}\n"
            f"  weights: {ROOT}/models/text_classifier.safetensors",
            f"path: {tmp_path / 'text.pt'}",
        )
        .replace("source: python", "source: torchscript")
    )
    done = run_cli("run", str(write(tmp_path, text)), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stderr
    assert "explainer 'saliency' needs hooks on the model's modules" in done.stderr
    works = done.stderr.split("Explainers that work on TorchScript models with text data: ")[1]
    assert "occlusion" in works and "integrated_gradients" not in works.splitlines()[0]
