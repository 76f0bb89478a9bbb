"""H5 — Stack Overflow tag classification: loading into a DatasetDict, Trainer, predicted tags.

The real data set cannot be fetched on the course machines, so the tests write a small one in the
archive's own layout (train/<tag>/<n>.txt, test/<tag>/<n>.txt) and train a tiny random BERT.
"""

import pytest
import torch

from coursekit import a3_finetune as kit
from grader.deliverables import deliverable

so = deliverable("a3_attention_bert.stackoverflow")
pytestmark = pytest.mark.in_process("not yet behind the boundary")

TAGS = ("csharp", "java", "javascript", "python")
SNIPPETS = {  # one unmistakable phrase per tag, so a tiny model can learn them in seconds
    "csharp": "using System.Linq; var list = new List<int>(); Console.WriteLine(list);",
    "java": "public static void main(String[] args) { System.out.println(args); }",
    "javascript": "const x = document.getElementById('app'); console.log(x); npm install",
    "python": "def f(self): import numpy as np; print(dict.keys()) pip install",
}


@pytest.fixture(scope="module")
def so_root(tmp_path_factory):
    """10 train and 3 test questions per tag, in the canonical archive's layout."""
    root = tmp_path_factory.mktemp("stackoverflow")
    for split, n in (("train", 10), ("test", 3)):
        for tag in TAGS:
            folder = root / split / tag
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}.txt").write_text(f"question {i} in {split}: {SNIPPETS[tag]}")
    return root


@pytest.mark.points(2)
@pytest.mark.number("5.1")
def test_load_stackoverflow(check, so_root):
    """load_stackoverflow: train / validation / test splits with a 4-name ClassLabel"""
    dsd = so.load_stackoverflow(so_root, validation_fraction=0.25, seed=0)
    with check("three splits"):
        assert set(dsd) == {"train", "validation", "test"}, sorted(dsd)
    with check("sizes: 25% of train held out, stratified; test as written"):
        assert (len(dsd["train"]), len(dsd["validation"]), len(dsd["test"])) == (30, 10, 12)
        counts = [dsd["validation"]["label"].count(k) for k in range(4)]
        assert all(c in (2, 3) for c in counts), f"validation tags {counts}: stratify by label"
    with check("label names are the four tags, in order"):
        assert dsd["train"].features["label"].names == list(TAGS)
    with check("each text carries its tag's label"):
        for split in ("train", "test"):
            for row in dsd[split]:
                assert SNIPPETS[TAGS[row["label"]]] in row["text"], row
    with check("validation and train do not overlap; the split is reproducible"):
        assert not set(dsd["train"]["text"]) & set(dsd["validation"]["text"])
        again = so.load_stackoverflow(so_root, validation_fraction=0.25, seed=0)
        assert again["validation"]["text"] == dsd["validation"]["text"]


@pytest.mark.points(3)
@pytest.mark.number("5.2")
@pytest.mark.timeout(120)
def test_trainer_learns_the_tags(check, so_root, tmp_path):
    """build_trainer: a Trainer whose training separates the four tags"""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(kit.model_path())
    raw = so.load_stackoverflow(so_root, validation_fraction=0.25, seed=0)

    def encode(batch):
        return tokenizer(batch["text"], truncation=True, padding="max_length", max_length=32)

    tokenized = raw.map(encode, batched=True, remove_columns=["text"])
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=4,
    )
    model = BertForSequenceClassification(config)
    epochs, lr, batch_size = 40, 5e-3, 8  # the reference reaches 1.0 validation accuracy in ~2 s
    trainer = so.build_trainer(
        model, tokenized, tmp_path, epochs=epochs, lr=lr, batch_size=batch_size
    )
    with check("a transformers Trainer with the asked-for arguments"):
        from transformers import Trainer

        assert isinstance(trainer, Trainer), type(trainer)
        a = trainer.args
        assert (a.num_train_epochs, a.learning_rate, a.per_device_train_batch_size) == (
            epochs,
            lr,
            batch_size,
        ), "pass epochs, lr and batch_size through to TrainingArguments"
        assert str(a.save_strategy).lower().endswith("no"), "save no checkpoints"
    trainer.train()
    metrics = trainer.evaluate()
    with check("validation accuracy reported and above chance after training"):
        # chance is 0.25; the reference reaches 1.0 on these unmistakable snippets
        assert metrics.get("eval_accuracy", 0) >= 0.9, metrics
    with check("the model learnt the test questions' tags"):
        preds = so.predict_tags(model, tokenizer, raw["test"]["text"])
        want = [TAGS[k] for k in raw["test"]["label"]]
        right = sum(p == w for p, w in zip(preds, want, strict=True))
        assert right >= 11, f"{right} of 12 test questions tagged right: {preds}"


@pytest.mark.points(1)
@pytest.mark.number("5.3")
def test_predict_tags_names_and_order(check):
    """predict_tags returns tag names, in the questions' order"""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(kit.model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=4)  # fmt: skip
    model = BertForSequenceClassification(config)
    questions = [f"question number {i} about {tag}" for i, tag in enumerate(TAGS * 2)]
    with torch.no_grad():
        oracle = [
            TAGS[int(model.eval()(**tokenizer([q], return_tensors="pt")).logits.argmax())]
            for q in questions
        ]
    model.train()
    got = so.predict_tags(model, tokenizer, questions)
    with check("tag names from TAGS"):
        assert all(g in TAGS for g in got), got
    with check("the evaluation-mode argmax of each question, in order"):
        assert got == oracle, f"got {got}, expected {oracle}: model.eval() and keep the order"
