"""A text run folder written by hand, as the runner writes one, for the report's text tests.

The model is a real (tiny) bag-of-tokens classifier: logits = bias + the sum of each token's
weight row, with planted tokens ("good" -> positive, "bad" -> negative) and small seeded
weights for every other piece. Tokenization is a whitespace word-piece tokenizer: a word
longer than 5 characters becomes two pieces (``"wonder"``, ``"##ful"``), a ``[CLS]`` and a
``[SEP]`` token frame the text, pads fill up to ``MAX_LENGTH`` and longer texts are
truncated. Attributions are computed on that model: ``occlusion`` is the drop of the
target logit when the piece is replaced by the pad token (weight 0), ``saliency`` its
magnitude. The top-token file follows the runner's definition (score: sum |a| / (count+5)).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from auditor.explainers.base import Predictions
from auditor.gallery import choose
from auditor.results import (
    DataSummary,
    ExplainerResult,
    PredictionSummary,
    Provenance,
    RankedFeature,
    Results,
)
from auditor.run_folder import RunFolder
from auditor.spec.model import GallerySpec, ReportSpec

MAX_LENGTH = 12
CLASSES = ["negative", "positive"]
HOSTILE = ["<script>alert(1)</script>", "{{ 7*7 }}", "{% raw %}", "&amp;"]
CORPUS = [
    ("a good film <script>alert(1)</script> indeed", 1),
    ("bad acting and a bad {{ 7*7 }} plot", 0),
    ("good good wonderful", 1),
    ("{% raw %} bad ending", 0),
    ("fish &amp; chips were good", 1),
    ("not bad at all", 1),  # misclassified: the model only counts tokens
    ("plain words here", 0),
    ("a very long review that keeps going well past the twelve token limit and is good", 1),
    ("bad", 0),
    ("good people, bad script", 0),
]
SPECIALS = ["[PAD]", "[CLS]", "[SEP]"]
#: The spec copy: its report block (top_k 3) is what a run folder without
#: ``report_options`` in results.json falls back to.
SPEC_TEXT = "version: 1\nname: report-text\nreport:\n  top_k: 3\n  formats: [html, pdf]\n"
PLANTED = {"good": (0.0, 2.0), "bad": (2.0, 0.0)}


def pieces_of(text: str) -> list[tuple[str, int, int, int]]:
    """(piece, word index, start, end) of every piece of ``text``."""
    out = []
    for w, match in enumerate(re.finditer(r"\S+", text)):
        word, start = match.group(), match.start()
        if len(word) > 5:
            out.append((word[:4], w, start, start + 4))
            out.append(("##" + word[4:], w, start + 4, match.end()))
        else:
            out.append((word, w, start, match.end()))
    return out


def tokenize(texts: list[str]) -> dict[str, np.ndarray]:
    vocab = SPECIALS + sorted({p for t in texts for p, *_ in pieces_of(t)})
    index = {p: i for i, p in enumerate(vocab)}
    n = len(texts)
    ids = np.zeros((n, MAX_LENGTH), np.int64)
    pieces = np.full((n, MAX_LENGTH), "", dtype="<U40")
    word_ids = np.full((n, MAX_LENGTH), -1, np.int32)
    offsets = np.zeros((n, MAX_LENGTH, 2), np.int32)
    lengths = np.zeros(n, np.int64)
    truncated = np.zeros(n, bool)
    for i, text in enumerate(texts):
        parts = pieces_of(text)
        room = MAX_LENGTH - 2
        truncated[i] = len(parts) > room
        parts = parts[:room]
        row = [("[CLS]", -1, 0, 0), *parts, ("[SEP]", -1, 0, 0)]
        for p, (piece, w, start, end) in enumerate(row):
            ids[i, p], pieces[i, p], word_ids[i, p] = index[piece], piece, w
            offsets[i, p] = (start, end)
        lengths[i] = len(row)
    return {
        "ids": ids,
        "lengths": lengths,
        "pieces": pieces,
        "word_ids": word_ids,
        "offsets": offsets,
        "truncated": truncated,
        "texts": np.asarray(texts),
        "vocab": np.asarray(vocab),
    }


def weights(vocab: list[str]) -> np.ndarray:
    rng = np.random.default_rng(0)
    w = rng.normal(scale=0.1, size=(len(vocab), len(CLASSES)))
    w[0] = 0.0  # the pad token adds nothing: removing a piece = replacing it by the pad
    for token, row in PLANTED.items():
        w[vocab.index(token)] = row
    return w


def top_tokens(
    attributions: np.ndarray, pieces: np.ndarray, real: np.ndarray, targets: np.ndarray
) -> dict:
    def ranked(rows: np.ndarray, top: int) -> list[dict]:
        mask = real & rows[:, None]
        names, inverse = np.unique(pieces[mask], return_inverse=True)
        a = attributions[mask].astype(np.float64)
        count = np.bincount(inverse, minlength=len(names))
        total = np.bincount(inverse, weights=a, minlength=len(names))
        total_abs = np.bincount(inverse, weights=np.abs(a), minlength=len(names))
        score = total_abs / (count + 5)
        order = np.argsort(-score, kind="stable")[:top]
        return [
            {
                "token": str(names[k]),
                "mean": float(total[k] / count[k]),
                "mean_abs": float(total_abs[k] / count[k]),
                "count": int(count[k]),
                "score": float(score[k]),
            }
            for k in order
        ]

    return {
        "overall": ranked(np.ones(len(targets), bool), 30),
        "by_class": {c: ranked(targets == k, 15) for k, c in enumerate(CLASSES)},
    }


def build_text_run(path: Path, *, report_options: bool = True, top_k: int = 5) -> RunFolder:
    """Write a text run folder at ``path`` (see the module docstring) and open it."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "spec.yaml").write_text(SPEC_TEXT)
    folder = RunFolder.open(path)
    texts = [t for t, _ in CORPUS]
    labels = np.array([y for _, y in CORPUS], np.int64)
    tok = tokenize(texts)
    vocab = [str(v) for v in tok["vocab"]]
    w = weights(vocab)
    bias = np.array([0.1, 0.0])
    ids, real = tok["ids"], tok["word_ids"] >= 0
    logits = bias + (w[ids] * real[..., None]).sum(axis=1)
    predictions = Predictions(logits.astype(np.float32), labels, logits.argmax(axis=1))
    targets = predictions.targets
    # occlusion: the target logit minus the logit with piece p replaced by the pad token
    occlusion = np.zeros(ids.shape, np.float32)
    for i in range(len(texts)):
        for p in np.flatnonzero(real[i]):
            kept = real[i].copy()
            kept[p] = False
            without = bias + (w[ids[i]] * kept[:, None]).sum(axis=0)
            occlusion[i, p] = logits[i, targets[i]] - without[targets[i]]
    attributions = {"occlusion": occlusion, "saliency": np.abs(occlusion)}

    np.savez(path / "tokens.npz", **{k: v for k, v in tok.items() if k != "vocab"})
    (path / "attributions").mkdir(exist_ok=True)
    (path / "rankings").mkdir(exist_ok=True)
    explainers = {}
    for name, a in attributions.items():
        np.save(path / "attributions" / f"{name}.npy", a)
        tops = top_tokens(a, tok["pieces"], real, targets)
        (path / "rankings" / f"{name}.tokens.json").write_text(json.dumps(tops))
        explainers[name] = ExplainerResult(
            id=name,
            type=name,
            scope="local",
            status="ok",
            seconds=0.01,
            attribution_file=f"attributions/{name}.npy",
            ranking=[
                RankedFeature(feature=t["token"], importance=t["score"])
                for t in tops["overall"][:10]
            ],
        )
    positions = choose(GallerySpec(samples=6), predictions, 0)
    buffer = io.BytesIO()
    probs = predictions.probabilities
    np.savez_compressed(
        buffer,
        positions=positions,
        indices=positions,
        inputs=ids[positions].astype(np.float32),
        labels=labels[positions],
        predicted=predictions.predicted[positions],
        probability=probs[positions, predictions.predicted[positions]].astype(np.float32),
        targets=targets[positions],
    )
    folder.write_bytes("gallery.npz", buffer.getvalue())
    confusion = np.zeros((2, 2), np.int64)
    np.add.at(confusion, (labels, predictions.predicted), 1)
    options = ReportSpec(title="Text audit", top_k=top_k, gallery=GallerySpec(samples=6))
    results = Results(
        auditor_version="0.1.0",
        run_id="r",
        name="report-text",
        title="Text audit of a bag-of-tokens model",
        description="Hand-written text run.",
        status="passed",
        exit_code=0,
        provenance=Provenance(
            spec_sha256="0" * 64,
            weights_sha256=None,
            data_sha256="1" * 64,
            versions={"python": "3.11"},
            seed=0,
            precision="float32",
            device="cpu",
            threads=1,
            hostname="test",
            started="2026-12-02T10:00:00+00:00",
            finished="2026-12-02T10:00:01+00:00",
            seconds=1.0,
            stage_seconds={"explain": 0.5},
        ),
        model={
            "class_name": "BagOfTokens",
            "total_params": int(w.size + bias.size),
            "output_shape": [1, 2],
            "layers": [
                {
                    "name": "embedding",
                    "type": "Embedding",
                    "output_shape": [1, MAX_LENGTH, 2],
                    "params": int(w.size),
                },
            ],
        },
        data=DataSummary(
            source="text",
            description=f"text: {len(texts)} reviews",
            modality="text",
            input_shape=[MAX_LENGTH],
            class_names=CLASSES,
            feature_names=None,
            slice="all samples",
            n=len(texts),
            batch_size=8,
            class_counts={c: int((labels == k).sum()) for k, c in enumerate(CLASSES)},
            ranked_features=None,
        ),
        predictions=PredictionSummary(
            n=len(texts),
            accuracy=float(predictions.correct.mean()),
            per_class_accuracy={
                c: float(predictions.correct[labels == k].mean()) for k, c in enumerate(CLASSES)
            },
            confusion=confusion.tolist(),
            mean_probability=float(probs[np.arange(len(texts)), predictions.predicted].mean()),
            targets="predicted",
            finite=True,
        ),
        explainers=explainers,
        checks=[],
        report_options=options.model_dump(mode="json") if report_options else None,
    )
    folder.write_text("results.json", results.model_dump_json(indent=1))
    return folder


def text_run_arrays(folder: RunFolder) -> dict[str, np.ndarray]:
    """tokens.npz of a run folder as a dict (for assertions)."""
    with np.load(folder.path / "tokens.npz") as data:
        return {k: np.asarray(data[k]) for k in data.files}
