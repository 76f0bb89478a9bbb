"""H5 — Stack Overflow tag classification: loading into a DatasetDict, Trainer, predicted tags.

The real data set cannot be fetched on the course machines, so the tests write a small one in the
archive's own layout (train/<tag>/<n>.txt, test/<tag>/<n>.txt) and train a tiny random BERT.
Your code reads those files and trains in its own process; the accuracy that counts is computed
here, from your model's logits, against the tags this test wrote.
"""

import pytest
import torch
from twin import decisive_classifier

from coursekit.a3_attention_bert import finetune as kit
from coursekit.a3_attention_bert import stackoverflow as kso
from grader.boundary.proxy import remote_isinstance
from grader.testprocess.deliverables import build, deliverable

so = deliverable("a3_attention_bert.stackoverflow")

TAGS = ("csharp", "java", "javascript", "python")
SNIPPETS = {  # one unmistakable phrase per tag, so a tiny model can learn them in seconds
    "csharp": "using System.Linq; var list = new List<int>(); Console.WriteLine(list);",
    "java": "public static void main(String[] args) { System.out.println(args); }",
    "javascript": "const x = document.getElementById('app'); console.log(x); npm install",
    "python": "def f(self): import numpy as np; print(dict.keys()) pip install",
}
SIZES = {"train": 10, "test": 3}  # questions per tag


def _questions(split: str) -> dict[str, str]:
    """The questions this test writes for ``split``: {file text: its tag}."""
    return {
        f"question {i} in {split}: {SNIPPETS[tag]}": tag
        for tag in TAGS
        for i in range(SIZES[split])
    }


@pytest.fixture(scope="module")
def so_root(shared_tmp_path_factory):
    """10 train and 3 test questions per tag, in the canonical archive's layout, in a folder your
    code can read (not write). Files are created out of name order (1, 2, …, 0), so a folder
    listing is not sorted on file systems that list by creation time, either way round."""
    root = shared_tmp_path_factory.mktemp("stackoverflow")
    kso.write_archive(root, SNIPPETS, SIZES)
    return root


def _tokenizers():
    """(the tokenizer here, the same one where your code runs)."""
    from transformers import AutoTokenizer

    here = AutoTokenizer.from_pretrained(kit.model_path())
    return here, build("transformers.AutoTokenizer.from_pretrained", kit.model_path())


@pytest.mark.points(2)
@pytest.mark.number("5.1")
def test_load_stackoverflow(check, so_root):
    """load_stackoverflow: train / validation / test splits with a 4-name ClassLabel"""
    dsd = so.load_stackoverflow(str(so_root), validation_fraction=0.25, seed=0)
    with check("three splits"):
        assert set(dsd) == {"train", "validation", "test"}, sorted(dsd)
    with check("sizes: 25% of train held out, stratified; test as written"):
        # 25% of 10 questions per tag is 2.5: a split of the whole (10 of 40) and one per tag that
        # rounds (2 or 3 each) are both right, so each tag may give 2 or 3.
        assert len(dsd["train"]) + len(dsd["validation"]) == 40, (
            len(dsd["train"]),
            len(dsd["validation"]),
        )
        assert len(dsd["test"]) == 12, len(dsd["test"])
        labels = list(dsd["validation"]["label"])
        counts = [labels.count(k) for k in range(4)]
        assert all(c in (2, 3) for c in counts), (
            f"validation tags {counts}: hold out 25% of each tag"
        )
    with check("label names are the four tags, in order"):
        assert list(dsd["train"].features["label"].names) == list(TAGS)
    with check("each text carries its tag's label"):
        for split in ("train", "test"):
            for row in dsd[split]:
                assert SNIPPETS[TAGS[row["label"]]] in row["text"], row
    with check("test rows in file order: tags in TAGS order, file names sorted"):
        want = [
            f"question {i} in test: {SNIPPETS[tag]}" for tag in TAGS for i in range(SIZES["test"])
        ]
        got = list(dsd["test"]["text"])
        assert got == want, (
            f"test rows {[t.split(':')[0] for t in got]}: read each folder's files in sorted order "
            "(a folder listing comes in whatever order the file system keeps)"
        )
    with check("validation and train do not overlap; the split is reproducible"):
        assert not set(dsd["train"]["text"]) & set(dsd["validation"]["text"])
        again = so.load_stackoverflow(str(so_root), validation_fraction=0.25, seed=0)
        assert list(again["validation"]["text"]) == list(dsd["validation"]["text"])
    with check("validation_fraction 0.2: 2 of each tag's 10 questions held out"):
        # 0.25 is also datasets' own default test_size: a fraction not passed on went unseen.
        labels = list(
            so.load_stackoverflow(str(so_root), validation_fraction=0.2)["validation"]["label"]
        )
        counts = [labels.count(k) for k in range(4)]
        assert counts == [2, 2, 2, 2], (
            f"validation tags {counts} with validation_fraction=0.2: pass the fraction on to the split"
        )


@torch.no_grad()
def _accuracy(model, tokenizer, questions: dict[str, str], max_length: int = 32) -> float:
    """The share of ``questions`` ({text: tag}, the tags this test wrote) whose argmax of the
    model's logits is their tag, on inputs encoded here as the Trainer's were."""
    texts = list(questions)
    enc = tokenizer(
        texts, truncation=True, padding="max_length", max_length=max_length, return_tensors="pt"
    )
    model.eval()
    logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])["logits"]
    preds = torch.as_tensor(logits).argmax(dim=-1).tolist()
    right = sum(p == TAGS.index(questions[t]) for p, t in zip(preds, texts, strict=True))
    return right / len(texts)


# The Trainer test trains on a split of its own (coursekit.a3_attention_bert.stackoverflow.fixed_splits), the
# same for every submission: which questions a valid stratified split holds out is the student's
# choice, and on the first tiny model (hidden size 32) 3 of 27 valid splits trained to a
# validation accuracy of 0.40 or 0.70. With hidden size 64 the reference reached 1.0 on 40 of 40
# random stratified splits and Trainer seeds at lr 5e-3 (and at 2e-3); on the fixed split, 1.0 for
# each of 40 Trainer seeds (`make so-spread` measures both). The threshold of 0.9 is one
# question below the least seen.
EPOCHS, LR, BATCH_SIZE, HIDDEN = 40, 5e-3, 8, 64


@pytest.mark.points(3)
@pytest.mark.number("5.2")
@pytest.mark.timeout(120)
def test_trainer_learns_the_tags(check, so_root, student_tmp_path):
    """build_trainer: a Trainer whose training separates the four tags"""
    tokenizer, theirs = _tokenizers()
    splits = kso.fixed_splits(so_root, TAGS)  # here, for the held-out tags
    raw = build("coursekit.a3_attention_bert.stackoverflow.fixed_splits", str(so_root), list(TAGS))
    tokenized = build(
        "coursekit.a3_attention_bert.stackoverflow.tokenized", raw, theirs, max_length=32
    )
    torch.manual_seed(0)  # the model is initialised where your code runs, from this seed
    model = build(
        "coursekit.a3_attention_bert.models.bert",
        "sequence_classification",
        vocab_size=tokenizer.vocab_size,
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * HIDDEN,
        max_position_embeddings=64,
        num_labels=4,
    )
    trainer = so.build_trainer(
        model, tokenized, str(student_tmp_path), epochs=EPOCHS, lr=LR, batch_size=BATCH_SIZE
    )
    with check("a transformers Trainer with the asked-for arguments"):
        assert remote_isinstance(trainer, "transformers.Trainer"), trainer
        a = trainer.args
        assert (a.num_train_epochs, a.learning_rate, a.per_device_train_batch_size) == (
            EPOCHS,
            LR,
            BATCH_SIZE,
        ), "pass epochs, lr and batch_size through to TrainingArguments"
        assert str(a.save_strategy).lower().endswith("no"), "save no checkpoints"
        # Invisible on this CPU-only grader, not on a student's machine with a GPU.
        assert a.use_cpu, (
            "train on the CPU, as the docstring says: use_cpu=True in TrainingArguments"
        )
        assert list(a.report_to or []) in ([], ["none"]), (
            f"report_to={a.report_to}: report to no tracker (report_to=[] or 'none')"
        )
    with check("batch_size and seed passed on; evaluation once per epoch"):
        # BATCH_SIZE (8) is TrainingArguments' own default: other values show they are passed on.
        other = so.build_trainer(
            model,
            tokenized,
            str(student_tmp_path / "other"),
            epochs=1,
            lr=1e-4,
            batch_size=3,
            seed=7,
        )
        b = other.args
        assert (b.per_device_train_batch_size, b.seed) == (3, 7), (
            f"batch size {b.per_device_train_batch_size} and seed {b.seed} for batch_size=3, "
            "seed=7: pass both through to TrainingArguments"
        )
        assert str(b.eval_strategy).lower().endswith("epoch"), (
            f"eval_strategy {b.eval_strategy}: evaluate once per epoch"
        )
    trainer.train()
    metrics = trainer.evaluate()
    with check("validation accuracy reported and above chance after training"):
        # chance is 0.25; the reference reaches 1.0 on these unmistakable snippets. The figure
        # that counts is measured here; the Trainer's own report must show it too.
        validation = splits["validation"]
        questions = {
            t: TAGS[y] for t, y in zip(validation["text"], validation["label"], strict=True)
        }
        accuracy = _accuracy(model, tokenizer, questions)
        assert accuracy >= 0.9, (
            f"validation accuracy {accuracy:.2f} (from your model's logits) after training; "
            "the reference reaches 1.0"
        )
        assert metrics.get("eval_accuracy", 0) >= 0.9, (
            f"the Trainer reports {metrics}: compute_metrics must return the accuracy "
            f"(measured here: {accuracy:.2f})"
        )
    with check("the model learnt the test questions' tags"):
        questions = _questions("test")
        preds = so.predict_tags(model, theirs, list(questions))
        want = list(questions.values())
        right = sum(p == w for p, w in zip(preds, want, strict=True))
        assert right >= 11, f"{right} of 12 test questions tagged right: {preds}"


@pytest.mark.points(1)
@pytest.mark.number("5.3")
def test_predict_tags_names_and_order(check):
    """predict_tags returns tag names, in the questions' order, from a batch of mixed lengths"""
    tokenizer, theirs = _tokenizers()
    long = " ".join(["how do i sort a list of dictionaries by one of their values"] * 3)
    questions = [
        f"question number {i} about {tag}" + ("" if i % 2 else " " + long)
        for i, tag in enumerate(TAGS * 2)
    ]
    twin, config, labels = decisive_classifier(
        questions, tokenizer, num_labels=len(TAGS), hidden_dropout_prob=0.3
    )
    oracle = [TAGS[i] for i in labels]
    model = build(
        "coursekit.a3_attention_bert.models.bert",
        "sequence_classification",
        state=twin.state_dict(),
        **config,
    )
    model.train()
    got = so.predict_tags(model, theirs, questions)
    with check("tag names from TAGS"):
        assert all(g in TAGS for g in got), got
    with check("the evaluation-mode argmax of each question, in order, padding masked"):
        assert got == oracle, (
            f"got {got}, expected {oracle} (each question classified alone, in evaluation mode). "
            "Call model.eval(), keep the questions' order, and pass the tokenizer's "
            "attention_mask to the model: without it the short questions attend to their padding."
        )
