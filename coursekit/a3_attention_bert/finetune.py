"""Fine-tuning support for assignment 3: data, the training loop, curves, and artifact evaluation.

Not graded: students call these around their own graded pieces (``tokenize_dataset``,
``build_model``, ``train_step``, ``predict``, ``save_artifact`` / ``load_artifact`` in
``a3_attention_bert/finetune.py``).

The *artifact* a student submits is a safetensors file holding only what they trained:

- for each LoRA-wrapped linear layer at module path ``P``: ``P.lora_A.weight`` (r, in) and
  ``P.lora_B.weight`` (out, r);
- any other trained tensor under its base-model name (e.g. ``classifier.weight``);
- metadata ``lora_scaling`` (alpha / r), ``base_model`` and ``num_labels``.

:func:`evaluate_state` folds the adapters into a fresh copy of the base model
(``W + B @ A * scaling``) and measures accuracy itself, so the accuracy check runs no student
code: a score means the submitted weights classify the held-out sentences.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from coursekit.data import data_file
from coursekit.pretrained import DEFAULT_MODEL, model_path


def load_sst2(split: str) -> tuple[list[str], list[int]]:
    """SST-2 sentences and labels (0 negative, 1 positive) of ``train``, ``dev`` or ``test``."""
    path = data_file("sst2", f"{split}.tsv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


# LoRA on the IMDB subset (H2.3, `make finetune-imdb`): reviews cut to IMDB_MAX_LENGTH tokens (the
# median review has 220), in training and in the accuracy check; IMDB_STEPS batches of 16 (2.4
# epochs of small_train: 8.5 minutes on 2 idle cores) at IMDB_LR, twice SST-2's rate for a budget
# of hundreds of steps, not thousands (150 steps, seed 0: test accuracy 0.866 at 2e-3, 0.849 at
# 1e-3; 300 steps at 2e-3: 0.879).
IMDB_MAX_LENGTH = 256
IMDB_STEPS = 300
IMDB_LR = 2e-3


def load_imdb(split: str) -> tuple[list[str], list[int]]:
    """IMDB reviews and labels (0 negative, 1 positive) of ``small_train`` (2,000, balanced) or
    ``small_test`` (1,000, balanced); ``train``, ``val`` and ``test`` work too.

    Read from ``<data dir>/imdb/`` (JSON lines); online, a missing folder is built from the
    canonical aclImdb archive (``coursekit.a1_lm_basics.dan.build_imdb``). HTML line breaks become spaces.
    """
    from coursekit.a1_lm_basics.dan import load_imdb as load_rows  # the one IMDB reader of the kit

    texts, labels = load_rows(split)
    return [t.replace("<br />", " ") for t in texts], labels


def length_buckets(lengths: Sequence[int], batch_size: int, *, shuffle: bool, seed: int = 0):
    """Batches of indices of similar length: padding dominates the cost otherwise (4x here).

    Sorted by length, cut into batches, and (for training) the batch order shuffled.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        g = torch.Generator().manual_seed(seed)
        batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
    return batches


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad token id lists: input_ids (B, T) and attention_mask (B, T)."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, : len(r)] = 1
    return ids, mask


# bfloat16 margins (logit 1 - logit 0) differ from float32's by at most 0.111 on all 1,821 SST-2
# test sentences (reference artifact, the checks' plain-torch BERT; one sentence changes sides);
# sentences whose bfloat16 margin is below this are classified again in float32, so the
# predictions are float32's (4.5x the largest difference seen).
RECHECK_MARGIN = 0.5
# IMDB's reviews (cut to IMDB_MAX_LENGTH tokens): bfloat16 margins differ from float32's by at most
# 0.043 on the 1,000 held-out reviews (reference artifact; none changes sides), so 0.25 is over 5x
# that; at 0.5 the check re-ran 7 of its 140 reviews in float32 (0.9 s), at 0.25 it re-runs 3.
IMDB_RECHECK_MARGIN = 0.25


def bf16_is_fast() -> bool:
    """True on CPUs with bfloat16 matrix units (AMX or AVX-512 BF16), where it is ~3x faster."""
    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


def _logits(model, encoded: Sequence[Sequence[int]], pad_id: int, batch_size: int, bf16: bool):
    """(N, num_labels) float32 logits, batches of similar length (no padding waste)."""
    out = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for idx in length_buckets([len(e) for e in encoded], batch_size, shuffle=False):
            ids, mask = pad_batch([encoded[i] for i in idx], pad_id)
            logits = model(input_ids=ids, attention_mask=mask).logits.float()  # (B, num_labels)
            if out is None:
                out = torch.empty(len(encoded), logits.shape[-1])
            out[idx] = logits
    return out


@torch.inference_mode()
def classify(
    model,
    tokenizer,
    sentences: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    bf16: bool | None = None,
    recheck_margin: float = RECHECK_MARGIN,
) -> list[int]:
    """Predicted labels, in the order of ``sentences``; the same as a float32 pass gives.

    Each sentence is tokenised once; batches run sorted by length. With ``bf16`` (default: where
    it is fast) the pass runs under bfloat16 autocast and every sentence whose top-two logit
    margin is below ``recheck_margin`` is classified again in float32.
    """
    model.eval()
    encoded = tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]
    bf16 = bf16_is_fast() if bf16 is None else bf16
    logits = _logits(model, encoded, tokenizer.pad_token_id, batch_size, bf16)
    if bf16 and logits.shape[-1] > 1:
        top2 = logits.topk(2, dim=-1).values
        close = (top2[:, 0] - top2[:, 1] < recheck_margin).nonzero().flatten().tolist()
        if close:
            again = _logits(
                model, [encoded[i] for i in close], tokenizer.pad_token_id, batch_size, False
            )
            logits[close] = again
    return logits.argmax(dim=-1).tolist()


def accuracy(preds: Sequence[int], labels: Sequence[int]) -> float:
    return sum(int(p == y) for p, y in zip(preds, labels, strict=True)) / len(labels)


class ArtifactError(ValueError):
    """The artifact does not fit the base model."""


MAX_LABELS = 1000  # a classification head larger than any course task is refused before it is built


def read_artifact(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of a submitted artifact, read by the kit itself (safetensors
    holds only data: reading an untrusted file runs no code)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


HEAD = ("classifier.weight", "classifier.bias")  # what an artifact must hold: the task's head


def fold_into(
    weights: dict[str, Tensor], state: dict[str, Tensor], metadata: dict[str, str]
) -> dict[str, Tensor]:
    """``weights`` (a base model's, by classification-model name, with a head of ``num_labels``
    rows to fill) with the artifact applied: ``W + B @ A * scaling`` for each LoRA pair, any
    other tensor replaced. The artifact must hold the classification head it trained: the base
    model has none."""
    missing = [k for k in HEAD if k not in state]
    if missing:
        raise ArtifactError(
            f"no {' or '.join(missing)}: an artifact holds the classification head it trained "
            "(the pretrained model has none; without it the predictions are a random head's)"
        )
    scaling = float(metadata.get("lora_scaling", 1.0))
    weights = dict(weights)
    for key, tensor in state.items():
        if key.endswith(".lora_A.weight"):
            prefix = key[: -len(".lora_A.weight")]
            b_key = prefix + ".lora_B.weight"
            if b_key not in state or prefix + ".weight" not in weights:
                raise ArtifactError(f"{key}: no matching lora_B or base layer {prefix}")
            delta = state[b_key].float() @ tensor.float() * scaling  # (out, in)
            base = weights[prefix + ".weight"]
            if delta.shape != base.shape:
                raise ArtifactError(
                    f"{prefix}: B @ A has shape {tuple(delta.shape)}, base {tuple(base.shape)}"
                )
            weights[prefix + ".weight"] = base + delta
        elif key.endswith(".lora_B.weight"):
            continue
        elif key in weights:
            if tensor.shape != weights[key].shape:
                raise ArtifactError(
                    f"{key}: shape {tuple(tensor.shape)}, base model {tuple(weights[key].shape)}"
                )
            weights[key] = tensor.float()
        else:
            raise ArtifactError(f"{key}: the base model has no such tensor")
    return weights


def _num_labels(metadata: dict[str, str]) -> int:
    num_labels = int(metadata.get("num_labels", 2))
    if not 1 <= num_labels <= MAX_LABELS:  # the metadata is a submission's: a head is built of it
        raise ArtifactError(f"num_labels {num_labels}: not between 1 and {MAX_LABELS}")
    return num_labels


def fold_artifact(state: dict[str, Tensor], metadata: dict[str, str]):
    """A fresh base model (transformers') with the artifact's tensors loaded and its LoRA
    adapters merged."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        model_path(metadata.get("base_model", DEFAULT_MODEL)), num_labels=_num_labels(metadata)
    )
    model.load_state_dict(fold_into(model.state_dict(), state, metadata))
    return model


def folded_classifier(state: dict[str, Tensor], metadata: dict[str, str]):
    """(model, tokenizer): the artifact folded into its base model, and that model's tokenizer.

    A local BERT checkpoint (the embedded MiniLM) is read in plain torch (``bert_classifier``:
    the same logits without importing transformers' models); any other model through
    transformers."""
    from coursekit.a3_attention_bert import bert_classifier

    path = model_path(metadata.get("base_model", DEFAULT_MODEL))
    config = bert_classifier.checkpoint_config(path)
    if config is not None:
        weights = bert_classifier.base_weights(path, config, _num_labels(metadata))
        return bert_classifier.load(path, config, fold_into(weights, state, metadata))
    from transformers import AutoTokenizer

    return fold_artifact(state, metadata), AutoTokenizer.from_pretrained(path)


def predict_state(
    state: dict[str, Tensor],
    metadata: dict[str, str],
    sentences: Sequence[str],
    *,
    max_length: int = 128,
    batch_size: int = 64,
    recheck_margin: float = RECHECK_MARGIN,
) -> list[int]:
    """The labels the artifact ``state`` predicts (no student code runs here), each text cut to
    ``max_length`` tokens (as in training), ``batch_size`` at a time (long texts: smaller batches
    keep the attention scores, (B, nh, T, T), small)."""
    model, tokenizer = folded_classifier(state, metadata)
    return classify(
        model,
        tokenizer,
        sentences,
        max_length=max_length,
        batch_size=batch_size,
        recheck_margin=recheck_margin,
    )


def evaluate_state(
    state: dict[str, Tensor],
    metadata: dict[str, str],
    sentences: Sequence[str],
    labels: Sequence[int],
    **options,
) -> float:
    """Accuracy of the artifact ``state`` on labelled sentences (``predict_state``'s options)."""
    return accuracy(predict_state(state, metadata, sentences, **options), labels)


def artifact_update(state: dict[str, Tensor], metadata: dict[str, str]) -> dict[str, Tensor]:
    """What an artifact changes in its base model, tensor by tensor (float32): ``B @ A * scaling``
    for each LoRA pair; for a tensor it replaces, its value minus the pretrained one (a new
    classification head, which the pretrained checkpoint lacks, counts from zero).

    Two artifacts that change the model alike have close updates whatever their bytes: other
    metadata, another dtype, the rank's factors split another way (``A * c``, ``B / c``), or the
    scaling moved between metadata and ``B``."""
    scaling = float(metadata.get("lora_scaling", 1.0))
    update: dict[str, Tensor] = {}
    replaced = []
    for key, tensor in state.items():
        if key.endswith(".lora_A.weight"):
            prefix = key[: -len(".lora_A.weight")]
            b = state.get(prefix + ".lora_B.weight")
            if (
                b is not None
                and b.dim() == 2
                and tensor.dim() == 2
                and b.shape[1] == tensor.shape[0]
            ):
                update[prefix + ".weight"] = b.float() @ tensor.float() * scaling  # (out, in)
        elif not key.endswith(".lora_B.weight"):
            replaced.append(key)
    pretrained = _pretrained_tensors(metadata.get("base_model", DEFAULT_MODEL), replaced)
    for key in replaced:
        value = state[key].float()
        base = pretrained.get(key)
        delta = value - base if base is not None and base.shape == value.shape else value
        update[key] = update[key] + delta if key in update else delta
    return update


def _pretrained_tensors(name: str, keys: Sequence[str]) -> dict[str, Tensor]:
    """The pretrained values of ``keys`` (classification-model names, ``bert.…``) read from the
    base model's checkpoint; keys it lacks (a new head) are left out."""
    from coursekit.a3_attention_bert.bert_classifier import checkpoint_tensors

    path = model_path(name)
    if not keys or not (Path(path) / "model.safetensors").is_file():
        return {}
    return checkpoint_tensors(path, keys)


def update_distance(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """``||a - b|| / max(||a||, ||b||)`` over every tensor either update changes (a tensor only
    one changes, or of another shape, counts as unrelated): 0 for the same change, about 1.4 for
    independent changes of equal size, 1 when one changes nothing."""
    diff = norm_a = norm_b = 0.0
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        nx = float(x.double().square().sum()) if x is not None else 0.0
        ny = float(y.double().square().sum()) if y is not None else 0.0
        norm_a, norm_b = norm_a + nx, norm_b + ny
        if x is not None and y is not None and x.shape == y.shape:
            diff += float((x.double() - y.double()).square().sum())
        else:
            diff += nx + ny
    scale = max(norm_a, norm_b) ** 0.5
    return diff**0.5 / scale if scale > 0 else 0.0


def partial_credit(acc: float, *, floor: float, threshold: float) -> float:
    """Fraction of the points: 0 at or below ``floor``, 1 at ``threshold``, linear between."""
    if acc >= threshold:
        return 1.0
    if acc <= floor:
        return 0.0
    return (acc - floor) / (threshold - floor)


# --------------------------------------------------------------------------- the training loop


@dataclass
class History:
    """What ``fit`` measured: the curves' data."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_train_seconds: list[float] = field(default_factory=list)  # training time (no evals) so far
    seconds: float = 0.0


@dataclass
class FitConfig:
    batch_size: int = 32
    max_length: int = 64  # SST-2 sentences are short; 64 tokens cut almost none
    lr: float = 1e-3  # LoRA wants a larger rate than full fine-tuning (1e-4)
    weight_decay: float = 0.01
    max_steps: int = 4000  # the budget: steps, not seconds, so results do not depend on load
    max_seconds: float = 3600.0  # a safety stop only
    max_epochs: int = 3
    warmup_fraction: float = 0.06
    eval_every: int = 200  # steps
    bf16: bool = False  # autocast to bfloat16 on the CPU: ~1.3x faster here, same accuracy
    seed: int = 0
    target_accuracy: float | None = None  # stop at the first evaluation that reaches it


def fit(
    model,
    tokenizer,
    train: tuple[Sequence[str], Sequence[int]],
    train_step: Callable,
    cfg: FitConfig,
    *,
    dev: tuple[Sequence[str], Sequence[int]] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` with the student's ``train_step(model, batch, optimizer) -> loss``.

    ``batch`` is a dict of ``input_ids`` (B, T), ``attention_mask`` (B, T) and ``labels`` (B,).
    Length-bucketed batches, AdamW with linear warm-up and decay, a tqdm progress bar, dev
    accuracy every ``eval_every`` steps. Stops after ``max_steps`` (or ``max_epochs``; ``max_seconds``
    is only a safety stop), or at the first evaluation that reaches ``target_accuracy``. The learning rate decays linearly to zero at the last step.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    sentences, labels = train
    encoded = tokenizer(list(sentences), truncation=True, max_length=cfg.max_length)["input_ids"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(encoded) // cfg.batch_size)
    total = min(steps_per_epoch * cfg.max_epochs, cfg.max_steps)
    warmup = max(1, int(cfg.warmup_fraction * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    history, start, step, evaluating = History(), time.monotonic(), 0, 0.0
    bar = tqdm(total=total, disable=not progress, desc="fine-tuning", unit="step")
    for epoch in range(cfg.max_epochs):
        for idx in length_buckets(
            [len(e) for e in encoded], cfg.batch_size, shuffle=True, seed=cfg.seed + epoch
        ):
            ids, mask = pad_batch([encoded[i] for i in idx], tokenizer.pad_token_id)
            batch = {
                "input_ids": ids,
                "attention_mask": mask,
                "labels": torch.tensor([labels[i] for i in idx]),
            }
            model.train()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = float(train_step(model, batch, optimizer))
            schedule.step()
            step += 1
            history.steps.append(step)
            history.losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            reached = False
            if dev is not None and step % cfg.eval_every == 0:
                began = time.monotonic()
                history.eval_train_seconds.append(began - start - evaluating)
                history.eval_steps.append(step)
                history.eval_accuracy.append(accuracy(classify(model, tokenizer, dev[0]), dev[1]))
                bar.set_postfix(loss=f"{loss:.3f}", dev_acc=f"{history.eval_accuracy[-1]:.3f}")
                evaluating += time.monotonic() - began
                target = cfg.target_accuracy
                reached = target is not None and history.eval_accuracy[-1] >= target
            if reached or step >= total or time.monotonic() - start > cfg.max_seconds:
                break
        else:
            continue
        break
    bar.close()
    history.seconds = time.monotonic() - start
    return history


def plot_history(history: History, path: str | os.PathLike, title: str = "fine-tuning") -> Path:
    """Training loss per step (mean of each stretch of steps) and dev accuracy, as a PNG with a
    legend for both lines and both axes labelled with their units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    k = max(1, len(history.losses) // 50)
    smooth = [
        sum(history.losses[i : i + k]) / len(history.losses[i : i + k])
        for i in range(0, len(history.losses), k)
    ]
    lines = ax.plot(
        history.steps[::k][: len(smooth)],
        smooth,
        color="tab:blue",
        label=f"training loss (mean of {k} steps)",
    )
    ax.set_xlabel("training step (one batch each)")
    ax.set_ylabel("cross-entropy loss (nats)")
    if history.eval_steps:
        acc_ax = ax.twinx()
        lines += acc_ax.plot(
            history.eval_steps, history.eval_accuracy, "o-", color="tab:green", label="dev accuracy"
        )
        acc_ax.set_ylabel("dev accuracy (fraction correct)")
        acc_ax.set_ylim(0.4, 1.0)  # chance is 0.5: a flat line there is a model that did not learn
    # Below the axes, where no curve can be hidden under it.
    ax.legend(
        lines,
        [line.get_label() for line in lines],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=2,
        frameon=False,
    )
    ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
