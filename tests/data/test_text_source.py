"""The text data source on small corpora and tokenizers written to tmp_path.

Tokenizers are real ``tokenizers`` objects saved as tokenizer.json files: a word-level one
(WordLevel + Whitespace) and a BERT-like WordPiece one with [CLS] ... [SEP].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from auditor.data import text_source
from auditor.data.base import StaticInfo
from auditor.data.text_source import TextDataset, TextDataSource, TextParams
from auditor.data.tokenization import Feed, feed_from
from auditor.errors import SpecError
from auditor.registries import datasets
from auditor.spec.load import load_spec

WORDS = ["[PAD]", "[UNK]", "[MASK]", "great", "film", "dull", "plot", "!", "a", "the"]
PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "film", "##s", "great", "dull", "!"]
REVIEWS = (
    'text,label\nGreat film!,positive\n"dull plot, dull\nfilm",negative\n\nthe zany plot,negative\n'
)


def word_level(tmp_path: Path, vocab: list[str] = WORDS, unk: str = "[UNK]") -> Path:
    """WordLevel + Whitespace pre-tokenizer, lowercasing; unknown words -> ``unk``."""
    ids = {token: i for i, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token=unk))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([t for t in vocab if t[:1] in "[<"])
    path = tmp_path / "tok.json"
    tokenizer.save(str(path))
    return path


def word_piece(tmp_path: Path, *, padding: str | None = None) -> Path:
    """BERT-like: WordPiece, BertNormalizer (lowercase, accents stripped), [CLS] $A [SEP]."""
    ids = {token: i for i, token in enumerate(PIECES)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer.enable_truncation(max_length=3)  # the file's own; auditor turns it off
    if padding is not None:
        tokenizer.enable_padding(pad_id=ids[padding], pad_token=padding, length=40)
    path = tmp_path / "bert.json"
    tokenizer.save(str(path))
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def params(tmp_path: Path, **given: object) -> TextParams:
    return TextParams.model_validate(given, context={"base_dir": tmp_path})


def load(tmp_path: Path, **given: object) -> TextDataset:
    return TextDataSource().load(params(tmp_path, **given))


def spec_error(tmp_path: Path, **given: object) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(SpecError) as info:
        load(tmp_path, **given)
    (issue,) = info.value.issues
    return issue.loc, issue.message


def test_registered_under_text() -> None:
    assert datasets.get("text") is TextDataSource


def test_word_level_csv_ids_padding_offsets_and_labels(tmp_path: Path) -> None:
    word_level(tmp_path)
    csv_path = write(tmp_path, "reviews.csv", REVIEWS)
    data = load(
        tmp_path,
        path="reviews.csv",
        tokenizer="tok.json",
        classes=["negative", "positive"],
        max_length=5,
    )
    assert data.modality == "text"
    assert data.input_shape == (5,)
    assert data.feature_names is None
    assert data.class_names == ["negative", "positive"]
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [1, 0, 0]
    assert data.texts == ["Great film!", "dull plot, dull\nfilm", "the zany plot"]
    ids = data.get(np.array([0, 1, 2]))
    assert ids.dtype == torch.int64
    # great film ! [PAD] [PAD] | dull plot , dull film ("," is unknown) | the zany(unk) plot
    assert ids.tolist() == [[3, 4, 7, 0, 0], [5, 6, 1, 5, 4], [9, 1, 6, 0, 0]]
    assert data.lengths.tolist() == [3, 5, 3]
    assert data.truncated.tolist() == [False, False, False]
    assert data.offsets.dtype == np.int32
    assert data.offsets[0].tolist() == [[0, 5], [6, 10], [10, 11], [0, 0], [0, 0]]
    assert data.offsets[1].tolist() == [[0, 4], [5, 9], [9, 10], [11, 15], [16, 20]]
    assert [data.texts[1][a:b] for a, b in data.offsets[1]] == ["dull", "plot", ",", "dull", "film"]
    assert data.word_ids.tolist() == [[0, 1, 2, -1, -1], [0, 1, 2, 3, 4], [0, 1, 2, -1, -1]]
    assert data.attention_mask(np.array([2, 1])).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert data.tokens(2) == ["the", "[UNK]", "plot"]
    assert data.feed == Feed(positional=("input_ids",))
    assert data.embedding_layer is None
    assert data.tokenizer_kind == "tokenizer"
    assert data.description == (
        f"text {csv_path}: 3 texts, label 'label' (2 classes); tok.json (10 tokens), "
        "max_length 5, 0 truncated"
    )


def test_longer_texts_are_cut_to_max_length_and_marked(tmp_path: Path) -> None:
    word_level(tmp_path)
    write(tmp_path, "reviews.csv", REVIEWS)
    data = load(
        tmp_path,
        path="reviews.csv",
        tokenizer="tok.json",
        classes=["negative", "positive"],
        max_length=3,
    )
    assert data.get(np.arange(3)).tolist() == [[3, 4, 7], [5, 6, 1], [9, 1, 6]]
    assert data.truncated.tolist() == [False, True, False]
    assert data.lengths.tolist() == [3, 3, 3]
    assert data.description.endswith("max_length 3, 1 truncated")


def test_word_pieces_keep_cls_sep_and_join_into_words(tmp_path: Path) -> None:
    word_piece(tmp_path)
    write(
        tmp_path,
        "reviews.jsonl",
        json.dumps({"review": "Great films!", "stars": 1})
        + "\n\n"
        + json.dumps({"review": "dull dull dull films", "stars": 0})
        + "\n",
    )
    data = load(
        tmp_path,
        path="reviews.jsonl",
        tokenizer="bert.json",
        text_column="review",
        label="stars",
        max_length=6,
        inputs=["input_ids", "attention_mask"],
        embedding_layer="encoder.embed",
    )
    cls, sep, film, s, great, dull, bang = 2, 3, 5, 6, 7, 8, 9
    # The file's own truncation (3 tokens) is off: max_length is auditor's.
    assert data.get(np.arange(2)).tolist() == [
        [cls, great, film, s, bang, sep],
        [cls, dull, dull, dull, film, sep],  # "##s" cut, [SEP] kept
    ]
    assert data.lengths.tolist() == [6, 6]
    assert data.truncated.tolist() == [False, True]
    assert data.word_ids.tolist() == [[-1, 0, 1, 1, 2, -1], [-1, 0, 1, 2, 3, -1]]
    assert data.offsets[0].tolist() == [[0, 0], [0, 5], [6, 10], [10, 11], [11, 12], [0, 0]]
    # word pieces joined back into words by word_ids
    text, words = data.texts[0], {}
    for (a, b), w in zip(data.offsets[0], data.word_ids[0], strict=True):
        if w >= 0:
            words[w] = (min(a, words.get(w, (a, b))[0]), max(b, words.get(w, (a, b))[1]))
    assert [text[a:b] for a, b in words.values()] == ["Great", "films", "!"]
    assert data.labels.tolist() == [1, 0]
    assert data.class_names == ["0", "1"]
    assert data.feed.positional == ("input_ids", "attention_mask")
    assert data.embedding_layer == "encoder.embed"
    vocab = data.vocab
    assert (vocab.size, vocab.pad_id, vocab.unk_id, vocab.mask_id) == (10, 0, 1, 4)
    assert vocab.remove_id == 4  # the default: the mask token, when there is one
    assert vocab.source == tmp_path / "bert.json"
    assert vocab.special_ids == frozenset({0, 1, 2, 3, 4})
    assert vocab.token(6) == "##s"
    assert vocab.tokens([2, 7, 99]) == ["[CLS]", "great", "[id 99]"]


def test_the_tokenizers_own_padding_names_the_pad_token(tmp_path: Path) -> None:
    word_piece(tmp_path, padding="[MASK]")  # an odd choice, but the file's
    write(tmp_path, "r.csv", "text,label\ngreat film,1\n")
    data = load(tmp_path, path="r.csv", tokenizer="bert.json", max_length=6, remove_with="mask")
    assert data.vocab.pad_id == 4
    assert data.get(np.array([0])).tolist() == [[2, 7, 5, 3, 4, 4]]
    assert data.vocab.remove_id == 4


def test_named_special_tokens_and_remove_with(tmp_path: Path) -> None:
    word_level(tmp_path, ["<blank>", "<oov>", "<hole>", "great", "film"], unk="<oov>")
    write(tmp_path, "r.csv", "text,label\ngreat movie,1\n")
    data = load(
        tmp_path,
        path="r.csv",
        tokenizer="tok.json",
        pad="<blank>",
        unk="<oov>",
        mask="<hole>",
        remove_with="unk",
        max_length=3,
    )
    vocab = data.vocab
    assert (vocab.pad_id, vocab.unk_id, vocab.mask_id, vocab.remove_id) == (0, 1, 2, 1)
    assert data.get(np.array([0])).tolist() == [[3, 1, 0]]


def test_vocab_file_lowercases_and_splits_punctuation(tmp_path: Path) -> None:
    write(tmp_path, "vocab.txt", "[PAD]\n[UNK]\ngreat\nfilm\n!\ndon't\n")
    write(tmp_path, "r.jsonl", '{"text": "Great film!! Don\'t", "label": "yes"}\n')
    data = load(tmp_path, path="r.jsonl", vocab="vocab.txt", classes=["no", "yes"], max_length=6)
    # "film!!" is not in the vocabulary: split into film ! !; "don't" is, whole
    assert data.get(np.array([0])).tolist() == [[2, 3, 4, 4, 5, 0]]
    assert data.offsets[0, :5].tolist() == [[0, 5], [6, 10], [10, 11], [11, 12], [13, 18]]
    assert data.word_ids[0].tolist() == [0, 1, 2, 3, 4, -1]
    assert data.labels.tolist() == [1]
    assert data.tokenizer_kind == "vocab"
    assert (data.vocab.size, data.vocab.pad_id, data.vocab.unk_id, data.vocab.mask_id) == (
        6,
        0,
        1,
        None,
    )
    cased = load(
        tmp_path, path="r.jsonl", vocab="vocab.txt", classes=["no", "yes"], lowercase=False
    )
    assert cased.get(np.array([0]))[0, :5].tolist() == [1, 3, 4, 4, 1]  # Great, Don't unknown


def test_feed_from_inputs() -> None:
    assert feed_from(["input_ids", "attention_mask"]) == Feed(("input_ids", "attention_mask"))
    feed = feed_from({"ids": "input_ids", "mask": "attention_mask"})
    assert feed == Feed((), (("ids", "input_ids"), ("mask", "attention_mask")))
    assert feed.tensors == ("input_ids", "attention_mask")
    assert feed.arguments({"input_ids": 1, "attention_mask": 2}) == ((), {"ids": 1, "mask": 2})
    assert Feed().arguments({"input_ids": 1}) == ((1,), {})


def test_static_info_reads_the_tokenizer_and_the_file(tmp_path: Path) -> None:
    word_piece(tmp_path)
    write(tmp_path, "r.csv", "text,label\ngreat film,neg\n")
    info = TextDataSource.static_info(
        params(tmp_path, path="r.csv", tokenizer="bert.json", classes=["neg", "pos"], max_length=12)
    )
    assert info == StaticInfo("text", (12,), PIECES, ["neg", "pos"])  # tokens: the features
    write(tmp_path, "r.csv", "text,label\n  ,neg\ngreat,pos\n")
    info = TextDataSource.static_info(params(tmp_path, path="r.csv", tokenizer="bert.json"))
    assert info.class_names is None
    assert [(i.loc, i.message) for i in info.issues] == [
        (("data", "path"), f"{tmp_path / 'r.csv'}:2: the text is empty"),
        (
            ("data", "label"),
            "column 'label' holds text labels (neg, pos); give the model's class order: "
            "classes: [neg, pos]",
        ),
    ]
    with pytest.raises(SpecError, match=r"max_length 2 leaves no room for text: bert\.json adds 2"):
        TextDataSource.static_info(
            params(tmp_path, path="r.csv", tokenizer="bert.json", max_length=2)
        )


def test_empty_texts_name_every_line(tmp_path: Path) -> None:
    word_level(tmp_path)
    path = write(tmp_path, "reviews.csv", 'text,label\ngreat,1\n,0\n\n"  ",1\ngreat,0\n')
    assert spec_error(tmp_path, path="reviews.csv", tokenizer="tok.json") == (
        ("data", "path"),
        f"{path}:3: the text is empty (so are lines 5)",
    )


def test_a_text_that_tokenizes_to_nothing(tmp_path: Path) -> None:
    word_piece(tmp_path)  # BertNormalizer strips accents: a lone combining accent is nothing
    path = write(
        tmp_path, "r.jsonl", '{"text": "great", "label": 0}\n{"text": "\\u0301", "label": 1}\n'
    )
    assert spec_error(tmp_path, path="r.jsonl", tokenizer="bert.json") == (
        ("data", "path"),
        f"{path}:2: the text tokenizes to nothing with bert.json",
    )


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    word_level(tmp_path)
    path = tmp_path / "r.csv"
    path.write_bytes("text,label\ngreat,1\ncaf\u00e9,0\n".encode() + b"na\xefve,1\n")
    assert spec_error(tmp_path, path="r.csv", tokenizer="tok.json") == (
        ("data", "path"),
        f"{path}:4: byte 0xef (column 3) is not UTF-8; save the file as UTF-8",
    )


@pytest.mark.parametrize(
    ("given", "loc", "message"),
    [
        (
            {"text_column": "review"},
            ("data", "text_column"),
            "column 'review' is not in {path}. Columns: text, label",
        ),
        (
            {"label": "lable"},
            ("data", "label"),
            "column 'lable' is not in {path}. Did you mean: label? Columns: text, label",
        ),
        (
            {"classes": ["negative", "positive"]},
            ("data", "classes"),
            "label 'Positive' ({path} line 2) is not in classes. Did you mean: positive? "
            "classes: negative, positive",
        ),
    ],
)
def test_columns_and_labels(
    tmp_path: Path, given: dict[str, object], loc: tuple[str, ...], message: str
) -> None:
    word_level(tmp_path)
    path = write(tmp_path, "r.csv", "text,label\ngreat,Positive\n")
    got = spec_error(tmp_path, path="r.csv", tokenizer="tok.json", **given)
    assert got == (loc, message.format(path=path))


def test_jsonl_keys_and_values(tmp_path: Path) -> None:
    word_level(tmp_path)
    path = write(tmp_path, "r.jsonl", '{"txt": "great", "label": 1}\n')
    assert spec_error(tmp_path, path="r.jsonl", tokenizer="tok.json") == (
        ("data", "text_column"),
        f"key 'text' is not in {path}. Did you mean: txt? Keys: txt, label",
    )
    write(tmp_path, "r.jsonl", '{"text": "great", "label": 1}\n{"text": 3, "label": 0}\n')
    assert spec_error(tmp_path, path="r.jsonl", tokenizer="tok.json") == (
        ("data", "path"),
        f"{path}:2: 'text' is 3; expected a text",
    )
    write(tmp_path, "r.jsonl", '{"text": "great", "label": 1}\n{"text": "film", "label": 1\n')
    loc, message = spec_error(tmp_path, path="r.jsonl", tokenizer="tok.json")
    assert (loc, message.split(": not JSON")[0]) == (("data", "path"), f"{path}:2")


def test_tokenizer_files_that_are_wrong(tmp_path: Path) -> None:
    write(tmp_path, "r.csv", "text,label\ngreat,1\n")
    bad = write(tmp_path, "tok.json", '{"vocab": ["great"]}')
    loc, message = spec_error(tmp_path, path="r.csv", tokenizer="tok.json")
    assert loc == ("data", "tokenizer")
    assert message.startswith(
        f"{bad} is not a tokenizer file (the tokenizer.json that Hugging Face tokenizers saves): "
    )
    word_level(tmp_path, ["[UNK]", "great"])
    assert spec_error(tmp_path, path="r.csv", tokenizer="tok.json") == (
        ("data", "pad"),
        f"the vocabulary of {bad} has no padding token ([PAD] or <pad>); name the token that "
        "pads with pad: (auditor pads every text to max_length)",
    )
    word_level(tmp_path)
    assert spec_error(tmp_path, path="r.csv", tokenizer="tok.json", pad="<pad>") == (
        ("data", "pad"),
        f"pad token '<pad>' is not in the vocabulary of {bad}. Tokens like it: [PAD], [UNK], "
        "[MASK]",
    )


def test_vocab_files_that_are_wrong(tmp_path: Path) -> None:
    write(tmp_path, "r.csv", "text,label\ngreat film,1\n")
    vocab = write(tmp_path, "vocab.txt", "[PAD]\ngreat 120\nfilm 7\n")
    assert spec_error(tmp_path, path="r.csv", vocab="vocab.txt") == (
        ("data", "vocab"),
        f"{vocab}:2: 'great 120' is not one token; a vocabulary file has one token a line, "
        "without spaces (the id is the line's index from 0)",
    )
    write(tmp_path, "vocab.txt", "[PAD]\ngreat\n")
    assert spec_error(tmp_path, path="r.csv", vocab="vocab.txt") == (
        ("data", "vocab"),
        f"{tmp_path / 'r.csv'}:2: 'film' is not in vocab.txt, which has no unknown token "
        "([UNK] or <unk>); add one to the vocabulary or name it with unk:",
    )


def spec_issues(tmp_path: Path, data: str) -> list[str]:
    """``auditor validate``'s messages about the data block of a spec using ``data``."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: t\nmodel:\n  source: python\n  class: examples.models:TabularMLP\n"
        "  init: {in_features: 4, num_classes: 2}\n"
        f"data:\n  source: text\n  path: r.csv\n{data}"
        "explainers:\n  - type: saliency\n",
        encoding="utf-8",
    )
    try:
        load_spec(spec)
    except SpecError as exc:
        return [str(i).removeprefix(f"{spec}:") for i in exc.issues if i.loc[:1] == ("data",)]
    return []


def test_spec_errors_at_the_data_keys(tmp_path: Path) -> None:
    word_level(tmp_path)
    write(tmp_path, "r.csv", "text,label\ngreat film,1\n")
    assert spec_issues(tmp_path, "  tokenizer: nope.json\n") == [
        f"10:14 data.tokenizer: file {tmp_path / 'nope.json'} does not exist"
    ]
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n  vocab: tok.json\n") == [
        "11:10 data.vocab: give tokenizer or vocab, not both"
    ]
    assert spec_issues(tmp_path, "  max_length: 8\n") == [
        "8:3 data: give the model's tokenizer: tokenizer: tokenizer.json (Hugging Face "
        "tokenizers) or vocab: vocab.txt (one token a line)"
    ]
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n  max_length: 0\n") == [
        "11:15 data.max_length: Input should be greater than or equal to 1 (got 0)"
    ]
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n  inputs: [input_ids, attn_mask]\n") == [
        "11:23 data.inputs[1]: 'attn_mask' is not a tensor auditor feeds. Did you mean: "
        "attention_mask? Tensors: input_ids, attention_mask"
    ]
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n  inputs: {ids: input_id}\n") == [
        "11:17 data.inputs.ids: 'input_id' is not a tensor auditor feeds. Did you mean: "
        "input_ids? Tensors: input_ids, attention_mask"
    ]
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n  inputs: [attention_mask]\n") == [
        "11:11 data.inputs: the model needs input_ids; list it in inputs"
    ]
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n  remove_with: mask\n") == []
    # the file's problems, found by validate without a model
    write(tmp_path, "r.csv", "text,label\ngreat film,1\n,0\n")
    assert spec_issues(tmp_path, "  tokenizer: tok.json\n") == [
        f"9:9 data.path: {tmp_path / 'r.csv'}:3: the text is empty"
    ]


def test_a_tokenizer_that_raises_names_the_line(tmp_path: Path) -> None:
    word_level(tmp_path, ["[PAD]", "great", "film"], unk="[UNK]")  # [UNK] is not in it
    path = write(tmp_path, "r.csv", "text,label\ngreat film,1\ngreat plot,0\n")
    assert spec_error(tmp_path, path="r.csv", tokenizer="tok.json") == (
        ("data", "tokenizer"),
        f"{path}:3: tok.json cannot tokenize the text: WordLevel error: Missing [UNK] token "
        "from the vocabulary",
    )


def test_static_info_of_a_large_file_checks_the_columns_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text_source, "STATIC_READ_LIMIT", 16)
    word_level(tmp_path)
    write(tmp_path, "r.csv", "text,label\ngreat,1\n,0\n")  # the empty text is not read
    info = TextDataSource.static_info(params(tmp_path, path="r.csv", tokenizer="tok.json"))
    assert info == StaticInfo("text", (64,), WORDS, None)
    write(tmp_path, "r.jsonl", '{"review": "great", "label": 1}\n')
    with pytest.raises(SpecError) as caught:
        TextDataSource.static_info(params(tmp_path, path="r.jsonl", tokenizer="tok.json"))
    assert [(i.loc, i.message) for i in caught.value.issues] == [
        (
            ("data", "text_column"),
            f"key 'text' is not in {tmp_path / 'r.jsonl'}. Keys: review, label",
        )
    ]
