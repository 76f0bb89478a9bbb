"""The accuracy checks' BERT classifier in plain torch (``coursekit.a3_attention_bert.bert_classifier``)
against transformers' own: the same token ids, the same logits, the same predictions."""

import json
import shutil

import pytest
import torch

from coursekit.a3_attention_bert import bert_classifier
from coursekit.a3_attention_bert import finetune as kit
from coursekit.pretrained import model_path
from grader.course import KIT_ROOT

SENTENCES = [
    "a gripping , beautifully shot film .",
    "dull",
    "it 's not that the story is bad , but the acting never lets you believe a word of it , "
    "and the ending drags on and on long after anyone has stopped caring .",
    "Ünïcode, CAPITALS and emoji 🙂 are normalised as BERT's tokenizer does",
]
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small random BERT encoder saved as a local checkpoint (as the embedded MiniLM is: no
    head, a pooler) with the real tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(f"{model_path()}/{name}", folder / name)
    return folder


def _artifact(folder, r: int = 4, labels: int = 3):
    """Random LoRA pairs on every query and value layer and a head, as a student saves them."""
    g = torch.Generator().manual_seed(1)
    config = json.loads((folder / "config.json").read_text())
    C = config["hidden_size"]
    state = {}
    for i in range(config["num_hidden_layers"]):
        for proj in ("query", "value"):
            p = f"bert.encoder.layer.{i}.attention.self.{proj}"
            state[f"{p}.lora_A.weight"] = torch.randn(r, C, generator=g) * 0.1
            state[f"{p}.lora_B.weight"] = torch.randn(C, r, generator=g) * 0.1
    state["classifier.weight"] = torch.randn(labels, C, generator=g)
    state["classifier.bias"] = torch.randn(labels, generator=g)
    meta = {"lora_scaling": "2.0", "base_model": str(folder), "num_labels": str(labels)}
    return state, meta


def _both(state, meta):
    """(plain torch, transformers): the artifact folded by each."""
    from transformers import AutoTokenizer

    ours = kit.folded_classifier(state, meta)
    assert isinstance(ours[0], bert_classifier.BertClassifier), "the tiny checkpoint is read here"
    theirs = (
        kit.fold_artifact(state, meta).eval(),
        AutoTokenizer.from_pretrained(meta["base_model"]),
    )
    return ours, theirs


@pytest.mark.parametrize("max_length", [8, 64])
def test_the_same_token_ids_as_transformers_tokenizer(tiny, max_length):
    """Cut to ``max_length`` tokens, [CLS] and [SEP] included, as ``truncation=True`` does."""
    from transformers import AutoTokenizer

    ours = bert_classifier.Tokenizer(tiny, pad_id=0)
    theirs = AutoTokenizer.from_pretrained(str(tiny))
    got = ours(SENTENCES, truncation=True, max_length=max_length)["input_ids"]
    want = theirs(SENTENCES, truncation=True, max_length=max_length)["input_ids"]
    assert got == want
    assert ours.pad_token_id == theirs.pad_token_id


def test_the_same_logits_as_transformers(tiny):
    """A padded batch of sentences of different lengths: the padding masked the same way."""
    state, meta = _artifact(tiny)
    (model, tokenizer), (reference, _) = _both(state, meta)
    ids, mask = kit.pad_batch(tokenizer(SENTENCES, max_length=64)["input_ids"], 0)
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        want = reference(input_ids=ids, attention_mask=mask).logits
    assert got.shape == (len(SENTENCES), 3)
    # Another order of float32 sums (a boolean mask in attention, not an additive one): the
    # real MiniLM differs by at most 6e-6 on all 1,821 SST-2 test sentences.
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_same_predictions_from_the_real_model_and_artifact():
    """The embedded MiniLM with the reference SST-2 artifact: ``predict_state`` (plain torch,
    bfloat16 where it is fast, close calls again in float32) against transformers in float32."""
    from transformers import AutoTokenizer

    state, meta = kit.read_artifact(
        KIT_ROOT / "reference" / "a3_attention_bert" / "artifacts" / "sst2_classifier.safetensors"
    )
    sentences, _ = kit.load_sst2("dev")
    sentences = sentences[:96]
    got = kit.predict_state(state, meta, sentences)
    reference = kit.fold_artifact(state, meta)
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    assert got == kit.classify(reference, tokenizer, sentences, bf16=False)


def test_only_local_bert_checkpoints_are_read_in_plain_torch(tiny, tmp_path):
    assert bert_classifier.checkpoint_config(tiny) is not None
    assert bert_classifier.checkpoint_config(model_path()) is not None
    assert (
        bert_classifier.checkpoint_config("distilbert-base-uncased") is None
    )  # a hub name: transformers
    other = tmp_path / "other"
    shutil.copytree(tiny, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    assert bert_classifier.checkpoint_config(other) is None
    (other / "config.json").write_text(json.dumps(config))
    (other / "tokenizer.json").unlink()
    assert bert_classifier.checkpoint_config(other) is None


def test_an_artifact_without_its_head_is_refused(tiny):
    """The pretrained model has no classification head: without one, predictions would be a
    random head's (transformers initialises it), so the artifact is refused, saying why."""
    state, meta = _artifact(tiny)
    del state["classifier.bias"]
    for fold in (kit.folded_classifier, kit.fold_artifact):
        with pytest.raises(
            kit.ArtifactError, match="classifier.bias: an artifact holds the classification head"
        ):
            fold(state, meta)
