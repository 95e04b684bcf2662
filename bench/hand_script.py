"""Cases 1 and e2e17's baseline: the digits audits as a user would write them by hand.

The same work as ``bench/specs/digits_1000.yaml``, written directly with Captum,
scikit-learn, scipy, matplotlib and jinja2: predictions; saliency, integrated gradients (32
steps, zero baseline), GradientSHAP, occlusion, Grad-CAM (features.3); a decision-tree
surrogate and permutation importance on a 4x4 grid of cells; deletion curves and the
cascading-randomization sanity check; an HTML report (jinja2, figures inlined) and a PDF
(matplotlib's PdfPages). Parameters are auditor's defaults, so the deterministic
explainers' attributions can be compared with auditor's within 1e-5.

Usage: python bench/hand_script.py --samples 1000 --out DIR [--formats html,pdf]
       python bench/hand_script.py --workload 17 --sanity-samples 1000 --out DIR

``--workload 17`` does the work of ``bench/specs/workload_17.yaml`` (issue 17) instead:
GradientSHAP over 50 background samples, 2x2 occlusion windows at stride 1 (49 per forward),
a depth-4 surrogate tree; completeness error of integrated gradients, deletion curves of
integrated gradients and occlusion (8 steps, all samples, zero baseline, 1-pixel patches)
and the sanity check of saliency and integrated gradients (4 layers, ``--sanity-samples``).
Its summary.json has the metrics' numbers and ``metrics/`` their per-sample values, named
as auditor's run folder names them, so that both can be compared.

Writes DIR/attributions/<explainer>.npy, DIR/summary.json and the reports. GradientSHAP uses
Captum (auditor's engine for ``gradient_shap``) on whole batches with one seed per batch,
as a user would; shap's own GradientExplainer is compared separately (bench/case_shap.py).
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import jinja2
import matplotlib.pyplot as plt
import numpy as np
import torch
from captum.attr import (
    GradientShap,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from matplotlib.backends.backend_pdf import PdfPages
from safetensors.torch import load_file
from scipy import ndimage, stats
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, plot_tree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # examples/ is not an installed package

from auditor.data.sklearn_source import load_arrays  # noqa: E402
from examples.models import DigitsCNN  # noqa: E402

SEED = 0
BATCH = 64
N_BACKGROUND = 64
LOCAL = ("saliency", "integrated_gradients", "gradient_shap", "occlusion", "gradcam")


# -- explainers: one function each, (model, inputs, targets, background) -> attributions --
def saliency(model, x, t, background):
    return Saliency(model).attribute(x, target=t, abs=True)


def integrated_gradients(model, x, t, background):
    attr, _delta = IntegratedGradients(model).attribute(
        x,
        baselines=torch.zeros_like(x),
        target=t,
        n_steps=32,
        method="gausslegendre",
        return_convergence_delta=True,
    )
    return attr


def gradient_shap(model, x, t, background, **params):
    np.random.seed(SEED)  # Captum draws baselines and path points from numpy
    torch.manual_seed(SEED)
    attr, _delta = GradientShap(model).attribute(
        x, baselines=background, n_samples=50, stdevs=0.0, target=t, return_convergence_delta=True
    )
    return attr


def occlusion(model, x, t, background, window=1, perturbations_per_eval=16):
    return Occlusion(model).attribute(
        x,
        sliding_window_shapes=(1, window, window),
        strides=(1, 1, 1),
        baselines=0.0,
        target=t,
        perturbations_per_eval=perturbations_per_eval,
    )


def gradcam(model, x, t, background):
    cam = LayerGradCam(model, model.features[3]).attribute(x, target=t, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
    return cam.mean(dim=1, keepdim=True).expand_as(x)


EXPLAINERS = {
    "saliency": saliency,
    "integrated_gradients": integrated_gradients,
    "gradient_shap": gradient_shap,
    "occlusion": occlusion,
    "gradcam": gradcam,
}


#: Parameters that differ between the workloads: case 1's (issue 6, auditor's defaults) and
#: issue 17's (bench/specs/workload_17.yaml).
WORKLOADS = {
    "6": {
        "gradient_shap": {"n_background": N_BACKGROUND},
        "occlusion": {"window": 1, "perturbations_per_eval": 16},
        "surrogate_tree": {"max_depth": 6},
    },
    "17": {
        "gradient_shap": {"n_background": 50},
        "occlusion": {"window": 2, "perturbations_per_eval": 49},
        "surrogate_tree": {"max_depth": 4},
    },
}


def explain_all(model, name, x, targets, background, params=None):
    """One local explainer on every sample, in batches of 64: ``(N, 1, 8, 8)`` numpy."""
    params = {k: v for k, v in (params or {}).items() if k != "n_background"}
    parts = []
    for start in range(0, len(x), BATCH):
        xb = x[start : start + BATCH].clone()
        tb = targets[start : start + BATCH]
        parts.append(EXPLAINERS[name](model, xb, tb, background, **params).detach())
    return torch.cat(parts).numpy()


# -- global explainers --------------------------------------------------------------------
def pooled(x):
    """Mean of each 2x2 block: 16 cell features per digit."""
    return x.reshape(len(x), 4, 2, 4, 2).mean(axis=(2, 4)).reshape(len(x), 16)


def surrogate_tree(x, predicted, max_depth=6):
    features = pooled(x.numpy()[:, 0])
    f_train, f_test, y_train, y_test = train_test_split(
        features, predicted, test_size=0.25, random_state=SEED
    )
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=5, random_state=SEED)
    tree.fit(f_train, y_train)
    return tree, tree.score(f_test, y_test), tree.feature_importances_


def logits_of(model, x, batch=256):
    with torch.no_grad():
        return torch.cat([model(x[s : s + batch]) for s in range(0, len(x), batch)])


def predict(model, x):
    return logits_of(model, x).argmax(1).numpy()


def permutation_importance(model, x, labels, repeats=5):
    """Accuracy drop when the pixels of one 2x2 cell are shuffled across samples."""
    rng = np.random.default_rng(SEED)
    base = accuracy_score(labels, predict(model, x))
    drops = np.zeros((16, repeats))
    for cell in range(16):
        r, c = divmod(cell, 4)
        for k in range(repeats):
            perm = torch.as_tensor(rng.permutation(len(x)))
            shuffled = x.clone()
            shuffled[:, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = x[perm][
                :, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2
            ]
            drops[cell, k] = base - accuracy_score(labels, predict(model, shuffled))
    return drops.mean(axis=1), drops.std(axis=1)


# -- metrics ------------------------------------------------------------------------------
STEPS = 16


def deletion_curve(model, x, target, order):
    """Target probability as pixels are zeroed in ``order``, in 16 steps (one forward)."""
    counts = np.round(np.linspace(0, 64, STEPS + 1)).astype(int)
    images = x.repeat(STEPS + 1, 1, 1, 1).reshape(STEPS + 1, 64)
    for step, k in enumerate(counts):
        images[step, torch.as_tensor(order[:k], dtype=torch.long)] = 0.0
    with torch.no_grad():
        probs = torch.softmax(model(images.reshape(STEPS + 1, 1, 8, 8)).double(), dim=1)
    return probs[:, target].numpy()


def auc(curve):
    return float((curve[:-1] + curve[1:]).sum() / (2 * (len(curve) - 1)))


def deletion(model, x, targets, attributions, n=128):
    curves = []
    for i in range(min(n, len(x))):
        order = np.argsort(-attributions[i].mean(axis=0).ravel(), kind="stable")
        curves.append(deletion_curve(model, x[i], int(targets[i]), order))
    return np.array(curves)


def random_deletion(model, x, targets, n=128):
    curves = []
    for i in range(min(n, len(x))):
        order = np.random.default_rng([SEED, i]).permutation(64)
        curves.append(deletion_curve(model, x[i], int(targets[i]), order))
    return np.array(curves)


def ssim_stack(a, b, sigma=1.5):
    """SSIM of each pair of (N, H, W) maps: Gaussian window, reflect padding, mean over pixels."""
    c1, c2 = 0.01**2, 0.03**2
    r = int(3 * sigma)  # 3 sigma; "mirror" is torch's "reflect" (the edge pixel not repeated)

    def blur(img):  # no blur across samples
        return ndimage.gaussian_filter(img, (0, sigma, sigma), mode="mirror", radius=(0, r, r))

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    return (num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean(axis=(1, 2))


def normalized(maps):
    """Each map divided by its maximum (all-zero maps stay zero)."""
    top = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, top, out=np.zeros_like(maps), where=top > 0)


def rank_correlations(before, after):
    """Per-sample Spearman of two (N, F) stacks over the features nonzero in either map.

    Average ranks for ties (scipy's rankdata, NaN for the left-out features), then the
    Pearson correlation of the ranks row by row; NaN where a side is constant.
    """
    keep = (before != 0) | (after != 0)
    ranks = [
        stats.rankdata(np.where(keep, m, np.nan), axis=1, nan_policy="omit")
        for m in (before, after)
    ]
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with nothing kept: NaN
        ra, rb = (r - np.nanmean(r, axis=1, keepdims=True) for r in ranks)
        return np.nansum(ra * rb, axis=1) / np.sqrt(
            np.nansum(ra * ra, axis=1) * np.nansum(rb * rb, axis=1)
        )


def randomization_sanity(
    model, names, x, targets, background, originals, n=16, with_ssim=True, params=None
):
    """Cascading randomization from the output layer down, one cascade for all ``names``.

    A deep copy of the model; each step re-initializes the next layer with parameters
    (``reset_parameters`` under ``torch.manual_seed(SEED + step)``), then every explainer
    runs again on the first ``n`` samples with the original targets. Per step and explainer:
    the mean per-sample Spearman of |attribution| (and SSIM of the maps scaled to [0, 1]).
    Returns ``{name: [(spearman, ssim), ...]}`` and the final step's per-sample Spearman.
    """
    x, targets = x[:n], targets[:n]
    before = {name: np.abs(originals[name][:n]).mean(axis=1) for name in names}
    scaled = {name: normalized(before[name].astype(np.float64)) for name in names}
    randomized = copy.deepcopy(model)
    layers = [m for _, m in randomized.named_modules() if list(m.parameters(recurse=False))]
    curves = {name: [] for name in names}
    final = {}
    for step, layer in enumerate(reversed(layers)):
        with torch.random.fork_rng():
            torch.manual_seed(SEED + step)
            layer.reset_parameters()
        for name in names:
            params_of = (params or {}).get(name)
            after = explain_all(randomized, name, x, targets, background, params_of)
            after = np.abs(after).mean(axis=1)
            rho = rank_correlations(before[name].reshape(n, -1), after.reshape(n, -1))
            similar = (
                float(np.mean(ssim_stack(scaled[name], normalized(after.astype(np.float64)))))
                if with_ssim
                else float("nan")
            )
            mean_rho = float(np.mean(rho[np.isfinite(rho)])) if np.isfinite(rho).any() else np.nan
            curves[name].append((mean_rho, similar))
            final[name] = rho
    return curves, final


# -- issue 17's metrics (--workload 17) ---------------------------------------------------
def completeness_error(model, x, targets, attributions):
    """|sum of attributions - (f(x) - f(0))| / |f(x)| per sample, f the target's logit.

    Completeness of integrated gradients with a zero baseline (Sundararajan et al. 2017,
    https://arxiv.org/abs/1703.01365), in float64 from the float32 logits.
    """
    rows = torch.arange(len(x))
    f_x = logits_of(model, x, BATCH)[rows, targets].double()
    with torch.no_grad():
        f_ref = model(torch.zeros_like(x[:1]))[0].double()[targets]
    total = torch.as_tensor(attributions).reshape(len(x), -1).double().sum(1)
    return ((total - (f_x - f_ref)).abs() / f_x.abs().clamp_min(1e-12)).numpy()


def deletion_batched(model, x, targets, orders, steps):
    """Target probability as pixels are zeroed in each row's ``orders``, ``(N, steps + 1)``.

    Deletion (Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421): after step k the first
    ``round(k * 64 / steps)`` pixels of the order are zero. The ``steps + 1`` images of 64
    samples go through the model in one forward.
    """
    n, pixels = orders.shape
    counts = torch.as_tensor(np.round(np.linspace(0, pixels, steps + 1)).astype(np.int64))
    ranks = torch.as_tensor(np.argsort(orders, axis=1))  # position of each pixel in the order
    curves = []
    for start in range(0, n, BATCH):
        xb = x[start : start + BATCH].reshape(-1, 1, pixels)
        removed = ranks[start : start + BATCH, None, :] < counts[None, :, None]
        images = torch.where(removed, 0.0, xb).reshape(-1, *x.shape[1:])
        with torch.no_grad():
            probs = torch.softmax(model(images).double(), dim=1).reshape(len(xb), steps + 1, -1)
        curves.append(probs[torch.arange(len(xb)), :, targets[start : start + BATCH]].numpy())
    return np.concatenate(curves)


def workload_17_metrics(model, x, targets, background, attributions, sanity_samples, out):
    """Issue 17's three metrics: numbers (for summary.json), per-sample arrays, seconds."""
    numbers, seconds, per_sample = {}, {}, {}
    start = time.perf_counter()
    error = completeness_error(model, x, targets, attributions["integrated_gradients"])
    per_sample["integrated_gradients.completeness_error"] = error
    numbers["completeness_error"] = {"mean": float(error.mean()), "max": float(error.max())}
    seconds["completeness_error"] = time.perf_counter() - start

    start = time.perf_counter()
    steps = 8
    random_orders = np.stack(
        [np.random.default_rng([SEED, i]).permutation(64) for i in range(len(x))]
    )
    random_curve = deletion_batched(model, x, targets, random_orders, steps)
    random_auc = (random_curve[:, :-1] + random_curve[:, 1:]).sum(axis=1) / (2 * steps)
    curves, numbers["deletion"] = {}, {}
    for name in ("integrated_gradients", "occlusion"):
        orders = np.argsort(-attributions[name].reshape(len(x), -1), axis=1, kind="stable")
        curves[name] = deletion_batched(model, x, targets, orders, steps)
        auc = (curves[name][:, :-1] + curves[name][:, 1:]).sum(axis=1) / (2 * steps)
        per_sample[f"{name}.deletion"] = auc
        numbers["deletion"][name] = {
            "auc": float(auc.mean()),
            "random_auc": float(random_auc.mean()),
            "curve": curves[name].mean(axis=0).tolist(),
        }
    seconds["deletion"] = time.perf_counter() - start

    start = time.perf_counter()
    names = ["saliency", "integrated_gradients"]
    sanity, final = randomization_sanity(
        model, names, x, targets, background, attributions, sanity_samples
    )
    numbers["randomization_sanity"] = {
        name: {
            "spearman": [c[0] for c in sanity[name]],
            "ssim": [c[1] for c in sanity[name]],
            "spearman_final": float(np.nanmean(final[name])),
        }
        for name in names
    }
    for name in names:
        per_sample[f"{name}.randomization_sanity"] = final[name]
    seconds["randomization_sanity"] = time.perf_counter() - start
    (out / "metrics").mkdir(exist_ok=True)
    for key, values in per_sample.items():
        np.save(out / "metrics" / f"{key}.npy", values)
    return numbers, seconds, curves, random_curve, sanity


# -- report -------------------------------------------------------------------------------
TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:auto}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}</style></head>
<body><h1>{{ title }}</h1>
<p>{{ n }} samples, accuracy {{ "%.4f"|format(accuracy) }}.</p>
<h2>Explainers</h2><table><tr><th>explainer</th><th>seconds</th><th>deletion AUC</th>
<th>random AUC</th><th>randomization Spearman</th><th>randomization SSIM</th></tr>
{% for row in rows %}<tr><td>{{ row.name }}</td><td>{{ "%.2f"|format(row.seconds) }}</td>
<td>{{ "%.4f"|format(row.auc) }}</td><td>{{ "%.4f"|format(random_auc) }}</td>
<td>{{ "%.4f"|format(row.rho) }}</td><td>{{ "%.4f"|format(row.ssim) }}</td></tr>{% endfor %}
</table>
<p>Surrogate tree fidelity (held out): {{ "%.4f"|format(fidelity) }}</p>
{% for fig in figures %}<h2>{{ fig.title }}</h2><img src="data:image/png;base64,{{ fig.png }}">
{% endfor %}</body></html>"""


def figure_png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode()


def make_figures(
    x, predicted, labels, attributions, globals_, deletion_curves, random_curve, sanity
):
    figures = []
    fig, axes = plt.subplots(12, 6, figsize=(9, 18))
    for row in range(12):
        axes[row, 0].imshow(x[row, 0], cmap="gray")
        for col, name in enumerate(LOCAL, start=1):
            axes[row, col].imshow(attributions[name][row, 0], cmap="RdBu_r")
    for ax in axes.flat:
        ax.axis("off")
    figures.append(("Gallery", fig))
    for name in LOCAL:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        mean = np.abs(attributions[name]).mean(axis=(0, 1))
        left.imshow(mean, cmap="viridis")
        top = np.argsort(-mean.ravel())[:10]
        right.barh([f"r{i // 8}c{i % 8}" for i in top][::-1], mean.ravel()[top][::-1])
        figures.append((f"{name}: mean |attribution|", fig))
    for name, (importance, _) in globals_.items():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        top = np.argsort(-importance)[:10]
        ax.barh([f"r{i // 4}c{i % 4}" for i in top][::-1], importance[top][::-1])
        figures.append((f"{name}: importance", fig))
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = np.linspace(0, 1, random_curve.shape[1])
    for name, curves in deletion_curves.items():
        ax.plot(steps, curves.mean(axis=0), label=name)
    ax.plot(steps, random_curve.mean(axis=0), "k--", label="random")
    ax.legend()
    figures.append(("Deletion curves", fig))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in sanity.items():
        ax.plot([c[0] for c in curve], marker="o", label=name)
    ax.legend()
    figures.append(("Randomization sanity (Spearman per cascade step)", fig))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(confusion_matrix(labels, predicted), cmap="Blues")
    figures.append(("Confusion matrix", fig))
    return figures


def write_reports(out, formats, figures, context, tree):
    if "html" in formats:
        pngs = [{"title": title, "png": figure_png(fig)} for title, fig in figures]
        fig, ax = plt.subplots(figsize=(12, 6))
        plot_tree(tree, max_depth=3, filled=True, ax=ax, fontsize=6)
        pngs.append({"title": "Surrogate tree", "png": figure_png(fig)})
        figures = [*figures, ("Surrogate tree", fig)]
        html = jinja2.Environment(autoescape=True).from_string(TEMPLATE)
        (out / "report.html").write_text(html.render(figures=pngs, **context))
    if "pdf" in formats:
        with PdfPages(out / "report.pdf") as pdf:
            for title, fig in figures:
                fig.suptitle(title)
                pdf.savefig(fig)
    for _, fig in figures:
        plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--formats", default="html,pdf")
    parser.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        default="6",
        help="6: case 1's work (digits_1000.yaml); 17: issue 17's (workload_17.yaml).",
    )
    parser.add_argument("--no-metrics", action="store_true", help="Skip the metrics.")
    parser.add_argument("--sanity-samples", type=int, default=16, help="Samples for sanity.")
    parser.add_argument(
        "--sanity-explainers",
        default=",".join(LOCAL),
        help="Explainers of the sanity check (workload 6; 17 checks saliency and IG).",
    )
    parser.add_argument("--no-sanity-ssim", action="store_true", help="Spearman only.")
    args = parser.parse_args()
    started = time.perf_counter()
    out = args.out
    params = WORKLOADS[args.workload]
    (out / "attributions").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    np.random.seed(SEED)

    x_all, y_all, _ = load_arrays("digits", "all")
    x, labels = torch.from_numpy(x_all[: args.samples]), y_all[: args.samples]
    model = DigitsCNN(num_classes=10)
    model.load_state_dict(load_file(ROOT / "models" / "digits_cnn.safetensors"))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    predicted = predict(model, x)
    targets = torch.as_tensor(predicted)
    rng = np.random.default_rng(SEED)
    n_background = min(params["gradient_shap"]["n_background"], len(x))
    background = x[np.sort(rng.choice(len(x), size=n_background, replace=False))]

    seconds, attributions = {}, {}
    for name in LOCAL:
        start = time.perf_counter()
        attributions[name] = explain_all(model, name, x, targets, background, params.get(name))
        np.save(out / "attributions" / f"{name}.npy", attributions[name])
        seconds[name] = time.perf_counter() - start
    start = time.perf_counter()
    tree, fidelity, tree_importance = surrogate_tree(x, predicted, **params["surrogate_tree"])
    seconds["surrogate_tree"] = time.perf_counter() - start
    start = time.perf_counter()
    perm_mean, perm_std = permutation_importance(model, x, labels)
    seconds["permutation_importance"] = time.perf_counter() - start

    start = time.perf_counter()
    random_curve = np.full((1, STEPS + 1), np.nan)
    deletion_curves = {n: random_curve for n in LOCAL}
    sanity = {n: [(np.nan, np.nan)] for n in LOCAL}
    numbers = {}
    if args.no_metrics:
        pass
    elif args.workload == "17":
        numbers, metric_seconds, deletion_curves, random_curve, curves = workload_17_metrics(
            model, x, targets, background, attributions, args.sanity_samples, out
        )
        sanity.update(curves)
        seconds.update(metric_seconds)
    else:
        random_curve = random_deletion(model, x, predicted)
        deletion_curves = {n: deletion(model, x, predicted, attributions[n]) for n in LOCAL}
        names = [n for n in args.sanity_explainers.split(",") if n]
        curves, _ = randomization_sanity(
            model, names, x, targets, background, attributions, args.sanity_samples,
            with_ssim=not args.no_sanity_ssim,
        )  # fmt: skip
        sanity.update(curves)
    seconds["metrics"] = time.perf_counter() - start

    start = time.perf_counter()
    formats = [f for f in args.formats.split(",") if f]
    globals_ = {
        "surrogate_tree": (tree_importance, None),
        "permutation_importance": (perm_mean, perm_std),
    }
    figures = (
        make_figures(
            x.numpy(), predicted, labels, attributions, globals_, deletion_curves, random_curve,
            sanity,
        )
        if formats
        else []  # no report, no figures
    )  # fmt: skip
    if formats and "completeness_error" in numbers:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        errors = np.load(out / "metrics" / "integrated_gradients.completeness_error.npy")
        ax.hist(errors, bins=40)
        figures.append(("Integrated gradients: completeness error per sample", fig))

    def mean_auc(name: str) -> float:
        if name not in deletion_curves:  # workload 17: deletion of IG and occlusion only
            return float("nan")
        return float(np.mean([auc(c) for c in deletion_curves[name]]))

    rows = [
        {
            "name": n,
            "seconds": seconds[n],
            "auc": mean_auc(n),
            "rho": sanity[n][-1][0],
            "ssim": sanity[n][-1][1],
        }
        for n in LOCAL
    ]
    context = {
        "title": "Digit classifier audit (hand-written)",
        "n": len(x),
        "accuracy": float((predicted == labels).mean()),
        "rows": rows,
        "random_auc": float(np.mean([auc(c) for c in random_curve])),
        "fidelity": float(fidelity),
    }
    write_reports(out, formats, figures, context, tree)
    seconds["report"] = time.perf_counter() - start
    seconds["total"] = time.perf_counter() - started
    summary = {
        "workload": args.workload,
        "seconds": seconds,
        **context,
        "permutation_importance": perm_mean.tolist(),
        "metrics": numbers,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
