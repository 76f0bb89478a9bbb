"""H4.2-4 / H2.3 — fine-tuning a pretrained encoder for classification, graded piece by piece,
then the submitted artifacts graded by their accuracy on held-out SST-2 test sentences and
held-out IMDB test reviews.

The fast tests use a tiny random BERT saved to a temporary folder (same tokenizer as the real
model), so they run in seconds; only the accuracy check loads the real model. What your code is
handed — the tokenizer, datasets, models, an optimizer — is built where your code runs; the
oracles run here on twins with the same weights.
"""

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close
from twin import decisive_classifier

from coursekit.a3_attention_bert import finetune as kit
from coursekit.data import heldout_here
from grader.testprocess.deliverables import build, deliverable

ft = deliverable("a3_attention_bert.finetune")
SETTINGS = Path(__file__).with_name("assignment.toml")  # which data is held out here ([data])

# The accuracy check. The reference recipe (`make finetune`: LoRA r=8 on query/value + head,
# 600 s on 2 cores) measured the SST-2 test accuracy recorded in the README. Full marks start a
# margin below it, so a student who runs the same recipe with another seed or a slightly smaller
# budget still earns them; the floor is well above the majority-class rate (~0.50) and the
# frozen-feature baseline (logistic regression on mean-pooled features, 0.81 in DATA.md) would
# earn about half. It scores SST2_SENTENCES of the 1,821 test sentences, a seeded sample
# (sample_for_check): the check must cost seconds (5 ms a sentence at one thread, bfloat16 where
# the CPU has it), and a submission as good as the reference (0.887 on all 1,821) must earn full
# marks on any such sample. On 1,000 its accuracy has a standard error of
# sqrt(0.887 * 0.113 / 1000) = 0.010: full marks from 0.85 sit 3.6 of them below it (probability
# 0.9998); on the 1,000 scored here the reference has 0.884. A handout's public stand-in (dev,
# 872 sentences) is scored whole.
THRESHOLD = 0.85
FLOOR = 0.75
SST2_SENTENCES = 1000
# The IMDB check (H2.3: LoRA on a small IMDB subset). `make finetune-imdb` runs the same code on
# the 2,000 reviews of small_train cut to kit.IMDB_MAX_LENGTH (256) tokens: kit.IMDB_STEPS (300)
# steps of 16 at lr 2e-3, 8.5-10 minutes on 2 cores. The check scores the first IMDB_REVIEWS of
# the 1,000 held-out reviews of imdb/heldout_test.jsonl (a seeded, balanced sample of IMDB's
# 25,000 test reviews outside small_test, which is public: the students' dev data; every even
# prefix is balanced), cut as in training. How many: the check must cost seconds (41 ms a review
# at one thread, bfloat16 where the CPU has it, whatever the batch size: it is compute-bound),
# and a submission as good as the reference must earn full marks on any such sample. The
# reference (seed 0) scores 0.867 on all 1,000 reviews (the SST-2 adapter 0.876); on a random
# sample of 140 its accuracy has a standard error of sqrt(0.867 * 0.133 / 140) = 0.029, so full
# marks from 0.81 — two standard errors below it — reach it with probability 0.975 (on the 140
# scored here it has 0.893; seeds 1 and 2 scored 0.890 and 0.885 on the first 400, the reference
# 0.880). 140 reviews take 5.3 s at one thread against 16 s for 400 (close calls re-run in
# float32 below kit.IMDB_RECHECK_MARGIN: 3 of the 140); the price is resolution:
# one review is 0.7 points of accuracy, and a model five points under the reference (0.817) is
# told apart from it with power 0.4, not 0.85 as with 400. The floor is well above the majority
# class (0.50).
IMDB_REVIEWS = 140
IMDB_BATCH = 16  # peak memory 0.83 GB standalone, against 1.03 GB with the default 64
IMDB_THRESHOLD = 0.81
IMDB_FLOOR = 0.60
IMDB_HELDOUT = ("imdb/heldout_test.jsonl",)
# The SST-2 artifact scores as well on these reviews (0.900: sentiment transfers), so an IMDB
# artifact that changes the model as the submitted SST-2 artifact does is refused. They are
# compared as updates (kit.artifact_update: B @ A * scaling per layer, and the head), never as
# bytes: kit.update_distance is 0 for a re-save with other metadata or A and B rescaled against
# each other, 0.0002 after a float16 round trip, 0.018 and 0.044 with noise of 2% and 5% of each
# tensor's spread. Independently trained adapters are 1.06-1.23 apart (the reference's SST-2
# adapter and IMDB seeds 0-2, every pair); an IMDB adapter trained from the SST-2 adapter, an
# honest transfer, stays closer: 0.448 after the full 300 steps (held-out accuracy 0.915), 0.199
# after 30 (0.890). ADAPTER_COPY refuses copies. Below ADAPTER_CLOSE — a third under the full
# transfer run, so that it is not, but a token amount of IMDB training on the SST-2 adapter is —
# course staff are told.
ADAPTER_COPY = 0.05
ADAPTER_CLOSE = 0.3
SST2_HELDOUT = ("sst2/test.tsv",)
SENTENCES = [
    "a gripping , beautifully shot film",
    "dull and far too long",
    "i loved every minute of it",
    "the plot makes no sense and the acting is worse",
    "an instant classic",
]


# Trusted checks run last in a grading run, once the process that runs student code has ended:
# the real model loaded here never shares the grading machine's memory with it.
@pytest.mark.points(6)
@pytest.mark.number("4.7")
@pytest.mark.timeout(120)
@pytest.mark.slow(f"loads the real model and classifies {SST2_SENTENCES:,} sentences")
@pytest.mark.trusted("reads the held-out SST-2 test labels; loads the artifact as data only")
@pytest.mark.leaderboard("SST-2 test accuracy", order="desc")
def test_submitted_artifact_accuracy(award, record_leaderboard, graded_tree):
    """the submitted artifact's accuracy on held-out SST-2 test sentences"""
    state, meta = _submitted_artifact(graded_tree, "sst2_classifier.safetensors", "finetune")
    heldout = heldout_here(SETTINGS, SST2_HELDOUT)
    # Held out: not in the submission. A handout has no test.tsv: there, the public dev split.
    sentences, labels = sample_for_check(
        *kit.load_sst2("test" if heldout else "dev"), SST2_SENTENCES
    )
    scored = (
        f"held-out SST-2 test accuracy ({len(sentences):,} sentences)"
        if heldout
        else "SST-2 dev accuracy (public dev data in this handout; Gradescope scores the "
        "held-out test sentences)"
    )
    acc = kit.evaluate_state(state, meta, sentences, labels)
    record_leaderboard(round(acc, 4))
    fraction = kit.partial_credit(acc, floor=FLOOR, threshold=THRESHOLD)
    award(
        fraction,
        f"{scored} {acc:.4f}: full marks from {THRESHOLD}, none at or below {FLOOR}, "
        f"linear between ({fraction:.0%} of the points).",
    )


@pytest.mark.points(2)
@pytest.mark.number("4.9")
@pytest.mark.timeout(120)
@pytest.mark.slow(f"loads the real model and classifies {IMDB_REVIEWS} long reviews")
@pytest.mark.trusted("reads the held-out IMDB test labels; loads the artifact as data only")
@pytest.mark.leaderboard("IMDB test accuracy", order="desc")
def test_submitted_imdb_artifact_accuracy(award, record_leaderboard, note_for_staff, graded_tree):
    """the submitted IMDB artifact's accuracy on held-out IMDB test reviews (H2.3)"""
    state, meta = _submitted_artifact(graded_tree, "imdb_classifier.safetensors", "finetune-imdb")
    close = _closeness_to_sst2(graded_tree, state, meta, note_for_staff)
    heldout = heldout_here(SETTINGS, IMDB_HELDOUT)
    # Held out: not in the submission. A handout has no held-out reviews: there, small_test.
    reviews, labels = kit.load_imdb("heldout_test" if heldout else "small_test")
    reviews, labels = reviews[:IMDB_REVIEWS], labels[:IMDB_REVIEWS]
    scored = (
        f"{IMDB_REVIEWS} held-out reviews"
        if heldout
        else f"the first {IMDB_REVIEWS} reviews of small_test: public dev data in this handout; "
        f"Gradescope scores {IMDB_REVIEWS} held-out test reviews"
    )
    acc = kit.evaluate_state(
        state,
        meta,
        reviews,
        labels,
        max_length=kit.IMDB_MAX_LENGTH,
        batch_size=IMDB_BATCH,
        recheck_margin=kit.IMDB_RECHECK_MARGIN,
    )
    record_leaderboard(round(acc, 4))
    fraction = kit.partial_credit(acc, floor=IMDB_FLOOR, threshold=IMDB_THRESHOLD)
    award(
        fraction,
        f"IMDB test accuracy {acc:.4f} ({scored}, cut to {kit.IMDB_MAX_LENGTH} tokens): full "
        f"marks from {IMDB_THRESHOLD}, none at or below {IMDB_FLOOR}, linear between "
        f"({fraction:.0%} of the points).{close}",
    )


def sample_for_check(texts: list[str], labels: list[int], n: int) -> tuple[list[str], list[int]]:
    """``n`` of the examples, a sample seeded once for all (in their order); all when fewer."""
    if len(texts) <= n:
        return texts, labels
    keep = sorted(random.Random(0).sample(range(len(texts)), n))
    return [texts[i] for i in keep], [labels[i] for i in keep]


def _closeness_to_sst2(graded_tree, state, meta, note_for_staff) -> str:
    """Fails the test if the IMDB artifact changes the model as the submitted SST-2 artifact
    does (within ADAPTER_COPY); a note for course staff if the two are unusually close (and a
    line for the student saying so)."""
    path = graded_tree / "a3_attention_bert" / "artifacts" / "sst2_classifier.safetensors"
    try:
        sst2_state, sst2_meta = kit.read_artifact(path)
    except Exception:  # missing or damaged: test 4.7 says so; nothing to compare here
        return ""
    distance = kit.update_distance(
        kit.artifact_update(state, meta), kit.artifact_update(sst2_state, sst2_meta)
    )
    if distance <= ADAPTER_COPY:
        pytest.fail(
            "imdb_classifier.safetensors changes the model as sst2_classifier.safetensors does "
            f"(relative distance of their updates {distance:.4f}, at most {ADAPTER_COPY} is the "
            "same adapter re-saved, rounded or nudged): train on IMDB with `make finetune-imdb`."
        )
    if distance <= ADAPTER_CLOSE:
        note_for_staff(
            f"imdb_classifier.safetensors is unusually close to sst2_classifier.safetensors "
            f"(relative distance of their updates {distance:.3f}; independent adapters are "
            "1.06-1.23 apart, an honest 300-step transfer from the SST-2 adapter 0.45)"
        )
        return (
            f"\nNote: this adapter is unusually close to your SST-2 adapter (relative distance "
            f"of their updates {distance:.3f}; adapters trained independently are about 1.1 "
            "apart): course staff will look at the two."
        )
    return ""


def _submitted_artifact(graded_tree, name: str, target: str):
    """The tensors and metadata of ``a3_attention_bert/artifacts/<name>``; fails if it is missing,
    damaged, or adapts another base model."""
    # The test, not the submission, decides where the artifact is, and reads it itself: no
    # student code runs here, so the held-out labels stay out of the student's reach.
    path = graded_tree / "a3_attention_bert" / "artifacts" / name
    try:
        state, meta = kit.read_artifact(path)
    except FileNotFoundError:
        pytest.fail(f"No artifact at a3_attention_bert/artifacts/{name}: run `make {target}`.")
    except Exception as exc:  # a damaged or foreign file
        pytest.fail(f"a3_attention_bert/artifacts/{name} is not a safetensors artifact: {exc}")
    if meta.get("base_model", kit.DEFAULT_MODEL) != kit.DEFAULT_MODEL:
        pytest.fail(
            f"The artifact was trained on {meta['base_model']!r}; this course grades adapters of "
            f"{kit.DEFAULT_MODEL!r} (another base model, e.g. one already fine-tuned on the task, "
            "would not show what you trained)."
        )
    return state, meta


@pytest.fixture(scope="module")
def tiny(shared_tmp_path_factory):
    """A tiny random BERT classifier saved like a pretrained one, with the real tokenizer, in a
    folder your code can read (not write)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    path = shared_tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        hidden_dropout_prob=0.3,  # dropout on, so train/eval mode matters
        attention_probs_dropout_prob=0.0,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(kit.model_path())
    tokenizer.save_pretrained(path)
    return str(path), tokenizer


@pytest.fixture(scope="module")
def tiny_encoder(shared_tmp_path_factory, tiny):
    """The tiny BERT's encoder alone (no classification head), saved like the real base model:
    ``from_pretrained(..., num_labels=V)`` gives it a new V-way head for any V."""
    from transformers import AutoModelForSequenceClassification

    path = shared_tmp_path_factory.mktemp("tiny-encoder")
    AutoModelForSequenceClassification.from_pretrained(tiny[0]).bert.save_pretrained(path)
    tiny[1].save_pretrained(path)
    return str(path)


def _tokenizer(path: str):
    """The tiny model's tokenizer where your code runs (a fresh one in each test)."""
    return build("transformers.AutoTokenizer.from_pretrained", path)


def _classifier(path: str, num_labels: int = 2, **options):
    """(the tiny classifier loaded where your code runs, its twin loaded here)."""
    from transformers import AutoModelForSequenceClassification

    twin = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=num_labels, **options
    )
    model = build(
        "transformers.AutoModelForSequenceClassification.from_pretrained",
        path,
        num_labels=num_labels,
        **options,
    )
    model.load_state_dict(twin.state_dict())  # the same weights, whatever loading did there
    return model, twin


def _batch(tokenizer, labels=(1, 0, 1, 0, 1)):
    enc = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "labels": torch.tensor(labels),
    }


def _rows(column) -> list:
    """A dataset column as a list (datasets 5 returns a Column object)."""
    return [list(v) if isinstance(v, list | tuple) else v for v in column]


@pytest.mark.points(2)
@pytest.mark.number("4.1")
def test_tokenize_dataset(check, tiny):
    """tokenize_dataset truncates and pads every row to max_length through Dataset.map"""
    path, tokenizer = tiny
    long = " ".join(["word"] * 100)
    rows = {"sentence": [*SENTENCES, long], "label": [1, 0, 1, 0, 1, 0]}
    ds = build("datasets.Dataset.from_dict", rows)
    out = ft.tokenize_dataset(ds, _tokenizer(path), max_length=16)
    expected = tokenizer([*SENTENCES, long], truncation=True, padding="max_length", max_length=16)
    with check("columns: input_ids, attention_mask, label; the text removed"):
        columns = list(out.column_names)
        assert {"input_ids", "attention_mask", "label"} <= set(columns), columns
        assert "sentence" not in columns, "remove the text column (remove_columns=...)"
    with check("input_ids equal the tokenizer's, padded and truncated to 16"):
        assert_close(
            torch.tensor(_rows(out["input_ids"])),
            torch.tensor(expected["input_ids"]),
            what="input_ids of the tokenised rows",
            hint="truncation=True and padding='max_length' with max_length",
        )
    with check("attention_mask marks real tokens"):
        assert_close(
            torch.tensor(_rows(out["attention_mask"])),
            torch.tensor(expected["attention_mask"]),
            what="attention_mask of the tokenised rows",
        )
    with check("labels unchanged"):
        assert _rows(out["label"]) == [1, 0, 1, 0, 1, 0]
    short = ["so good", "not for me", "fine"]
    with check("short sentences only: still padded to max_length (not to the longest)"):
        ds = build("datasets.Dataset.from_dict", {"sentence": short, "label": [1, 0, 1]})
        out = ft.tokenize_dataset(ds, _tokenizer(path), max_length=12)
        assert_close(
            torch.tensor(_rows(out["input_ids"])),
            torch.tensor(
                tokenizer(short, truncation=True, padding="max_length", max_length=12)["input_ids"]
            ),
            what="input_ids of three short sentences, max_length=12",
            hint="padding='max_length' (padding=True pads only to the longest row)",
        )
    with check("text_column names the text (here 'text')"):
        ds = build("datasets.Dataset.from_dict", {"text": short, "label": [1, 0, 1]})
        out = ft.tokenize_dataset(ds, _tokenizer(path), max_length=12, text_column="text")
        assert "text" not in list(out.column_names), "remove the text column (text_column)"
        assert_close(
            torch.tensor(_rows(out["input_ids"])),
            torch.tensor(
                tokenizer(short, truncation=True, padding="max_length", max_length=12)["input_ids"]
            ),
            what="input_ids with text_column='text'",
            hint="read batch[text_column], not a fixed column name",
        )


def _lora_count(model, r: int) -> int:
    """A and B of every query and value projection: r * (in + out) each."""
    count = 0
    for name, module in model.named_modules():
        if name.endswith((".query", ".value")) and isinstance(module, torch.nn.Linear):
            count += r * (module.in_features + module.out_features)
    return count


@pytest.mark.points(2)
@pytest.mark.number("4.2")
def test_build_model_with_lora(check, tiny):
    """build_model: pretrained weights, LoRA on query/value, only adapters and head trainable"""
    from transformers import AutoModelForSequenceClassification

    path, _ = tiny
    model = ft.build_model(path, 2, pretrained=True, lora_r=4, lora_alpha=8)
    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    parameters = list(model.named_parameters())  # (name, tensor) pairs
    trainable = {n for n, p in parameters if p.requires_grad}
    with check("the encoder keeps the pretrained weights"):
        assert_close(
            model.bert.embeddings.word_embeddings.weight,
            base.bert.embeddings.word_embeddings.weight,
            what="word embeddings after build_model",
            hint="load with from_pretrained, not from_config",
        )
    with check("only LoRA A/B and the classifier train"):
        bad = sorted(n for n in trainable if "lora_" not in n and not n.startswith("classifier"))
        assert not bad, f"these should be frozen: {bad[:5]}"
        assert any(n.startswith("classifier") for n in trainable), "train the new classifier head"
    with check("trainable count = adapters + head"):
        n_trainable = sum(p.numel() for _, p in parameters if p.requires_grad)
        head = sum(p.numel() for p in base.classifier.parameters())
        assert n_trainable == _lora_count(base, 4) + head, (
            f"{n_trainable} trainable parameters, expected {_lora_count(base, 4)} (LoRA r=4 on "
            f"query and value) + {head} (classifier)"
        )


@pytest.mark.points(1)
@pytest.mark.number("4.8")
def test_build_model_options(check, tiny, tiny_encoder):
    """build_model: num_labels=3 (LoRA and from scratch), other target_modules, lora_r=None"""
    path, tokenizer = tiny
    enc = _batch(tokenizer)
    inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    for pretrained in (True, False):
        with check(f"num_labels=3, pretrained={pretrained}: logits (B, 3)"):
            model = ft.build_model(tiny_encoder, 3, pretrained=pretrained, lora_r=4, lora_alpha=8)
            logits = model.eval()(**inputs)["logits"]
            assert list(logits.shape) == [5, 3], (
                f"logits of shape {list(logits.shape)} for 5 sentences, expected [5, 3]: pass "
                "num_labels on to from_pretrained / the config"
            )
    with check("target_modules=('key',): LoRA on key only"):
        model = ft.build_model(
            path, 2, pretrained=True, lora_r=4, lora_alpha=8, target_modules=("key",)
        )
        lora_names = sorted(
            {n.rsplit(".lora_", 1)[0] for n, _ in model.named_parameters() if ".lora_" in n}
        )
        want = [f"bert.encoder.layer.{i}.attention.self.key" for i in range(2)]
        assert lora_names == want, f"LoRA on {lora_names}, expected {want}: pass target_modules on"
    with check("lora_r=None: full fine-tuning, every parameter trains, no LoRA"):
        model = ft.build_model(path, 2, pretrained=True, lora_r=None)
        parameters = list(model.named_parameters())
        frozen = [n for n, p in parameters if not p.requires_grad]
        assert not frozen, f"frozen with lora_r=None: {frozen[:3]} ({len(frozen)} in all)"
        lora_names = [n for n, _ in parameters if "lora_" in n]
        assert not lora_names, f"LoRA parameters with lora_r=None: {lora_names[:3]}"


@pytest.mark.points(1)
@pytest.mark.number("4.3")
def test_build_model_from_scratch(check, tiny):
    """build_model(pretrained=False): the same architecture, random weights, all trainable"""
    from transformers import AutoModelForSequenceClassification

    path, _ = tiny
    torch.manual_seed(1)
    model = ft.build_model(path, 2, pretrained=False)
    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    parameters = list(model.named_parameters())
    with check("same parameter names and shapes as the pretrained model"):
        shapes = {n: tuple(p.shape) for n, p in parameters}
        assert shapes == {n: tuple(p.shape) for n, p in base.named_parameters()}
    with check("weights are not the pretrained ones"):
        diff = (
            model.bert.embeddings.word_embeddings.weight
            - base.bert.embeddings.word_embeddings.weight
        )
        assert diff.abs().max() > 1e-3, "the from-scratch model must not load pretrained weights"
    with check("every parameter trains"):
        assert all(p.requires_grad for _, p in parameters)


@pytest.mark.points(2)
@pytest.mark.number("4.4")
def test_train_step(check, tiny):
    """train_step returns the batch loss and takes exactly the optimizer's step (twice)"""
    path, tokenizer = tiny
    torch.manual_seed(0)
    # No dropout, so the student's step and the oracle's see the same network in any mode.
    model, oracle = _classifier(path, hidden_dropout_prob=0.0)
    batch = _batch(tokenizer)
    opt = build("coursekit.builders.optimizer", model, "SGD", lr=0.5, momentum=0.9)
    oracle_opt = torch.optim.SGD(oracle.parameters(), lr=0.5, momentum=0.9)
    for step in (1, 2):
        oracle_opt.zero_grad()
        oracle_loss = F.cross_entropy(
            oracle(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
            batch["labels"],
        )
        oracle_loss.backward()
        oracle_opt.step()
        loss = ft.train_step(model, batch, opt)
        with check(f"step {step}: returned loss"):
            assert_close(
                torch.tensor(float(loss)),
                oracle_loss.detach(),
                what=f"the loss returned by train_step (step {step})",
                rtol=1e-5,
                atol=1e-6,
                why="float32 forward passes of two identical models",
            )
        with check(f"step {step}: parameters after the step"):
            assert_close(
                model.classifier.weight,
                oracle.classifier.weight,
                what=f"classifier weights after step {step}",
                rtol=1e-5,
                atol=1e-6,
                why="float32 updates of two identical models",
                hint="clear the gradients (optimizer.zero_grad()) before backward, every step",
            )


@pytest.mark.points(2)
@pytest.mark.number("4.5")
def test_predict(check, tiny, tiny_encoder):
    """predict: evaluation mode, padding masked, labels in order across batches, any number of classes"""
    path, tokenizer = tiny
    with check("three classes: the argmax over all of them"):
        _predict_three_labels(tiny_encoder, tokenizer)
    long = " ".join(["and then it goes on and on about nothing much"] * 3)
    sentences = [s + ("" if i % 2 else " " + long) for i, s in enumerate(SENTENCES * 3)]
    twin, config, expected = decisive_classifier(
        sentences, tokenizer, num_labels=2, hidden_dropout_prob=0.3
    )
    # Built in training mode, as after training: predict must switch dropout off itself.
    model = build(
        "coursekit.a3_attention_bert.models.bert",
        "sequence_classification",
        state=twin.state_dict(),
        **config,
    )
    # The item types are read where predict ran (a NumPy int64 would arrive here as an int).
    got, types = build(
        "coursekit.a3_attention_bert.models.with_item_types",
        ft.predict,
        model,
        _tokenizer(path),
        sentences,
        batch_size=4,
    )
    with check("one int label per sentence"):
        assert isinstance(got, list) and len(got) == 15, f"got {type(got).__name__} of {len(got)}"
        assert all(isinstance(g, int) for g in got) and set(types) == {"int"}, (
            f"labels of types {sorted(set(types))}: return Python ints (.tolist())"
        )
    with check("labels equal the evaluation-mode argmax, in order, padding masked"):
        assert got == expected, (
            f"predicted {got}, expected {expected} (each sentence classified alone, in evaluation "
            "mode). Call model.eval() (dropout changes predictions), keep the sentences' order "
            "across batches, and pass the attention_mask: in a batch of mixed lengths the short "
            "sentences are padded, and without the mask they attend to the padding."
        )


def _predict_three_labels(encoder: str, tokenizer) -> None:
    torch.manual_seed(0)
    model, twin = _classifier(encoder, num_labels=3)
    with torch.no_grad():
        twin.classifier.weight.mul_(50)
        twin.classifier.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    model.load_state_dict(
        {n: p.detach() for n, p in twin.classifier.named_parameters(prefix="classifier")},
        strict=False,
    )
    twin.eval()
    with torch.no_grad():
        expected = [
            int(twin(**tokenizer([s], return_tensors="pt")).logits.argmax(-1)) for s in SENTENCES
        ]
    got = ft.predict(model, _tokenizer(encoder), SENTENCES, batch_size=2)
    assert 2 in expected, "test set-up: the 3-way head should predict label 2 somewhere"
    assert got == expected, (
        f"predicted {got}, expected {expected} with a 3-way head: take the argmax over every "
        "class (logits.argmax(dim=-1)), not a comparison of two logits"
    )


@pytest.mark.points(2)
@pytest.mark.number("4.6")
def test_artifact_round_trip(check, tiny, tiny_encoder, student_tmp_path):
    """save_artifact keeps only trained tensors and metadata; load_artifact reads them back"""
    path, tokenizer = tiny
    with check("no LoRA, 3 labels: lora_scaling '1.0', num_labels '3', the head's tensors"):
        model, twin = _classifier(tiny_encoder, num_labels=3)
        model.bert.requires_grad_(False)  # a trained head on a frozen encoder: no LoRA layers
        target = ft.save_artifact(
            model, str(student_tmp_path / "head.safetensors"), base_model=tiny_encoder, num_labels=3
        )
        state, meta = ft.load_artifact(target)
        assert sorted(state) == ["classifier.bias", "classifier.weight"], sorted(state)[:5]
        assert list(state["classifier.weight"].shape) == [3, 32], state["classifier.weight"].shape
        assert float(meta.get("lora_scaling", "nan")) == 1.0, (
            f"{meta}: without LoRA layers lora_scaling is '1.0'"
        )
        assert meta.get("num_labels") == "3", f"{meta}: num_labels is the argument, here '3'"
    model = ft.build_model(path, 2, pretrained=True, lora_r=4, lora_alpha=8)
    g = torch.Generator().manual_seed(0)
    trained = {  # as after training (B no longer zero): written into the model
        n: (p.detach() + torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.1)
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    model.load_state_dict(trained, strict=False)
    target = ft.save_artifact(
        model, str(student_tmp_path / "a.safetensors"), base_model=path, num_labels=2
    )
    state, meta = ft.load_artifact(target)
    with check("exactly the trainable tensors"):
        assert set(state) == set(trained), (
            f"extra: {sorted(set(state) - set(trained))[:3]}, missing: {sorted(set(trained) - set(state))[:3]}"
        )
    with check("tensor values"):
        for name in trained:
            assert_close(state[name], trained[name], what=f"saved {name}")
    with check("metadata: lora_scaling = alpha / r, base_model, num_labels"):
        assert float(meta.get("lora_scaling", "nan")) == 2.0, meta
        assert meta.get("base_model") == path and meta.get("num_labels") == "2", meta
    with check("the folded artifact reproduces the model's logits"):
        # Folded here from the base model this test saved (metadata naming another is not read).
        assert meta.get("base_model") == path and meta.get("num_labels") == "2", meta
        enc = _batch(tokenizer)
        model.eval()
        with torch.no_grad():
            want = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            folded = kit.fold_artifact(state, meta).eval()
            got = folded(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        assert_close(
            got,
            want["logits"],
            what="logits of base + B @ A * scaling vs the LoRA model",
            rtol=1e-4,
            atol=1e-5,
            why="merging changes float32 rounding order",
        )
