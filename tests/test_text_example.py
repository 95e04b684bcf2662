"""The example text classifier: its generated corpus, tokenizer, weights and spec agree."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from ruamel.yaml import YAML
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

from examples import train_text
from examples.text_corpus import (
    CLASSES,
    CLAUSES,
    FILLERS,
    MARKUP_CLAUSES,
    PLANTED,
    generate,
    planted_words,
)
from examples.text_models import TextClassifier

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "models" / "text_classifier.safetensors"
TOKENIZER = ROOT / "models" / "text_tokenizer.json"
CORPUS = ROOT / "data" / "text_reviews.csv"
SPEC = ROOT / "audits" / "text_classifier.yaml"
MAX_LENGTH = 32


def read_corpus(path: Path = CORPUS) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["text", "label"]
        return [(text, label) for text, label in reader]


def tokenize(tokenizer: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with [PAD] to MAX_LENGTH and build the attention mask (no truncation)."""
    pad = tokenizer.token_to_id("[PAD]")
    ids = torch.full((len(texts), MAX_LENGTH), pad, dtype=torch.long)
    mask = torch.zeros((len(texts), MAX_LENGTH), dtype=torch.long)
    for i, encoding in enumerate(tokenizer.encode_batch(texts)):
        assert len(encoding.ids) <= MAX_LENGTH, texts[i]
        ids[i, : len(encoding.ids)] = torch.tensor(encoding.ids)
        mask[i, : len(encoding.ids)] = 1
    return ids, mask


def committed_model(vocab_size: int) -> TextClassifier:
    model = TextClassifier(vocab_size=vocab_size)
    model.load_state_dict(load_file(WEIGHTS), strict=True)
    return model.eval()


def test_committed_weights_reach_95_percent_on_the_audit_csv() -> None:
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    rows = read_corpus()
    ids, mask = tokenize(tokenizer, [text for text, _ in rows])
    labels = torch.tensor([CLASSES.index(label) for _, label in rows])
    model = committed_model(tokenizer.get_vocab_size())
    with torch.no_grad():
        predicted = model(ids, mask).argmax(dim=1)
    assert len(rows) == 1000
    assert float((predicted == labels).float().mean()) >= 0.95
    assert WEIGHTS.stat().st_size < 100_000
    assert CORPUS.stat().st_size < 300_000


def test_spec_agrees_with_the_committed_files() -> None:
    spec = YAML(typ="safe").load(SPEC.read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    vocab_size = tokenizer.get_vocab_size()
    assert spec["model"]["init"]["vocab_size"] == vocab_size == 147
    assert load_file(WEIGHTS)["embedding.weight"].shape == (vocab_size, 32)
    assert spec["data"]["classes"] == list(CLASSES)
    assert spec["data"]["max_length"] == train_text.MAX_LENGTH == MAX_LENGTH
    assert (SPEC.parent / spec["data"]["path"]).resolve() == CORPUS
    assert (SPEC.parent / spec["data"]["tokenizer"]).resolve() == TOKENIZER
    assert (SPEC.parent / spec["model"]["weights"]).resolve() == WEIGHTS
    ranking = next(c for c in spec["checks"] if "ranking" in c)
    every_planted = {w for words in PLANTED.values() for w in words}
    assert set(ranking["must_include"]) <= every_planted


def test_tokenizer_layout() -> None:
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    assert [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert tokenizer.padding is None and tokenizer.truncation is None
    assert tokenizer.post_processor is None
    # lowercase normalizer, whitespace/punctuation pre-tokenizer, unknown words -> [UNK]
    encoding = tokenizer.encode("The EXCELLENT <b>lamp</b> zyzzyva")
    assert encoding.tokens == ["the", "excellent", "<", "b", ">", "lamp", "</", "b", ">", "[UNK]"]
    # every planted word is one whole token of the vocabulary
    for word in (w for words in PLANTED.values() for w in words):
        assert tokenizer.encode(word).tokens == [word]


def test_audit_texts_fit_max_length_and_have_no_unknown_tokens() -> None:
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    ids, mask = tokenize(tokenizer, [text for text, _ in read_corpus()])
    assert int(mask.sum(dim=1).max()) <= MAX_LENGTH
    assert int(mask.sum(dim=1).min()) >= 5
    assert not bool((ids[mask == 1] == tokenizer.token_to_id("[UNK]")).any())


def test_committed_csv_is_the_generator_output() -> None:
    expected = [
        (r.text, CLASSES[r.label]) for r in generate(train_text.AUDIT_SIZE, train_text.AUDIT_SEED)
    ]
    assert read_corpus() == expected


def test_generator_is_deterministic_in_its_seed() -> None:
    assert generate(300, seed=7) == generate(300, seed=7)
    assert [r.text for r in generate(300, seed=7)] != [r.text for r in generate(300, seed=8)]
    # a prefix does not depend on how many texts follow
    assert generate(50, seed=7) == generate(300, seed=7)[:50]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(lambda: read_corpus(), id="committed-csv"),
        pytest.param(
            lambda: [(r.text, CLASSES[r.label]) for r in generate(3000, 0)], id="train-texts"
        ),
    ],
)
def test_every_text_has_exactly_one_planted_word_of_its_label(rows) -> None:
    repeated = 0
    for text, label in rows():
        found = planted_words(text)
        assert len(set(found)) == 1, text
        assert found[0] in PLANTED[label], (text, label)
        assert 5 <= len(text.split()) <= 25, text
        repeated += len(found) == 2
    assert 0 < repeated < 0.1 * len(rows())


def test_positions_and_labels_are_as_generated() -> None:
    reviews = generate(2000, seed=3)
    for review in reviews:
        words = review.text.split()
        assert [words[p] for p in review.positions] == [review.planted] * len(review.positions)
        assert planted_words(review.text) == [review.planted] * len(review.positions)
    # the planted word lands first and last too, and the classes are about balanced
    assert {0} <= {r.positions[0] for r in reviews}
    assert any(r.positions[-1] == len(r.text.split()) - 1 for r in reviews)
    assert 0.45 < sum(r.label for r in reviews) / len(reviews) < 0.55
    # a few texts carry markup for escaping; none more than one clause of it
    with_markup = [r for r in reviews if "<b>" in r.text or "{{" in r.text]
    assert 0 < len(with_markup) < 0.05 * len(reviews)


def test_no_distractor_word_carries_the_label() -> None:
    every_planted = {w for words in PLANTED.values() for w in words}
    distractor_vocabulary = {
        w
        for template in (*CLAUSES, *MARKUP_CLAUSES)
        for w in template.split()
        if not w.startswith("{") or w in ("{{", "{%")
    } | {w for values in FILLERS.values() for v in values for w in v.split()}
    assert not distractor_vocabulary & every_planted
    # over the train texts, each frequent distractor is as common in both classes
    reviews = generate(3000, 0)
    positive: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for review in reviews:
        for word in set(review.text.split()) - every_planted:
            total[word] += 1
            positive[word] += review.label
    base = sum(r.label for r in reviews) / len(reviews)
    frequent = [w for w, n in total.items() if n >= 100]
    assert len(frequent) > 50
    for word in frequent:
        # within 4 binomial standard deviations of the overall positive share
        bound = 4 * (base * (1 - base) / total[word]) ** 0.5
        assert abs(positive[word] / total[word] - base) < bound, word


def test_generate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"at least two classes .*classes=\['neutral'\]"):
        generate(10, 0, classes=["neutral"])
    with pytest.raises(ValueError, match="n=-1"):
        generate(-1, 0)


def test_model_masks_padding_and_defaults_to_all_tokens() -> None:
    torch.manual_seed(0)
    model = TextClassifier(vocab_size=20, dim=8, hidden=8, num_classes=3).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        short = model(ids[:, :3])
        padded = model(ids, mask)
        unmasked = model(ids)
        ones = model(ids, torch.ones_like(ids))
    assert padded.shape == (1, 3)
    torch.testing.assert_close(padded, short)  # padding does not change the output
    torch.testing.assert_close(unmasked, ones)  # no mask: every position counts
    assert not torch.allclose(unmasked, padded)  # pads diluting the mean do change it
    assert model.embedding.padding_idx == 0
    assert torch.equal(model.embedding.weight[0], torch.zeros(8))


def test_model_layout_and_relus() -> None:
    model = TextClassifier(vocab_size=10)
    assert isinstance(model.get_submodule("embedding"), nn.Embedding)
    assert [type(m).__name__ for m in model.classifier] == ["Linear", "ReLU", "Linear"]
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len({id(m) for m in relus}) == len(relus) == 1
    assert not relus[0].inplace
    with pytest.raises(ValueError, match="sizes must be positive, got vocab_size=0"):
        TextClassifier(vocab_size=0)


@pytest.fixture
def restore_determinism() -> Iterator[None]:
    """train_text.main turns on torch's deterministic algorithms for the whole process."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


@pytest.mark.usefixtures("restore_determinism")
def test_training_reproduces_the_committed_files(tmp_path: Path) -> None:
    assert train_text.main(["--models", str(tmp_path), "--data", str(tmp_path)]) == 0
    assert (tmp_path / "text_tokenizer.json").read_bytes() == TOKENIZER.read_bytes()
    assert (tmp_path / "text_reviews.csv").read_bytes() == CORPUS.read_bytes()
    # the weights are byte-identical on this machine (one thread, deterministic kernels), but
    # another CPU's kernels may round differently: compare predictions on every audited text
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    ids, mask = tokenize(tokenizer, [text for text, _ in read_corpus()])
    fresh = TextClassifier(vocab_size=tokenizer.get_vocab_size())
    fresh.load_state_dict(load_file(tmp_path / "text_classifier.safetensors"), strict=True)
    with torch.no_grad():
        expected = committed_model(tokenizer.get_vocab_size())(ids, mask).argmax(dim=1)
        assert torch.equal(fresh.eval()(ids, mask).argmax(dim=1), expected)


@pytest.mark.usefixtures("restore_determinism")
def test_training_saves_nothing_below_the_accuracy_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(train_text, "EPOCHS", 0)  # an untrained model is at chance
    assert train_text.main(["--models", str(tmp_path), "--data", str(tmp_path)]) == 1
    assert "< 0.95" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
