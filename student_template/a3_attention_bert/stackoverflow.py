"""Stack Overflow tag classification with a pretrained encoder and ``Trainer`` (handout H5).

The data set: 16,000 questions, each with exactly one tag of four. Its canonical archive
(``stack_overflow_16k.tar.gz``; ``coursekit.a3_attention_bert.stackoverflow.data_root`` fetches it) unpacks to
``train/<tag>/<n>.txt`` and ``test/<tag>/<n>.txt``, 2,000 questions per tag in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import ClassLabel, Dataset, DatasetDict
from torch import nn
from transformers import Trainer, TrainingArguments

TAGS = ("csharp", "java", "javascript", "python")  # label i is TAGS[i]


def load_stackoverflow(
    root: str | Path, validation_fraction: float = 0.2, seed: int = 42
) -> DatasetDict:
    """Read the archive's layout into train / validation / test splits.

    Inputs:
        root: the folder holding ``train/`` and ``test/``, each with one folder per tag.
        validation_fraction: the share of ``train`` held out as ``validation``, stratified by tag.
        seed: makes the split reproducible.
    Returns:
        A ``DatasetDict`` with splits ``train``, ``validation``, ``test``; columns ``text`` (str)
        and ``label`` (a ``ClassLabel`` with names ``TAGS``); files read in sorted order.
    """

    # TODO: for each split and each tag in TAGS, read every root/split/tag/*.txt (sorted) into
    #       rows of text and label (the tag's index); Dataset.from_dict, cast "label" to
    #       ClassLabel(names=list(TAGS)); then train_test_split(test_size=validation_fraction,
    #       stratify_by_column="label", seed=seed) for the validation split.
    raise NotImplementedError("load_stackoverflow: fill in the TODO above")


def build_trainer(
    model: nn.Module,
    tokenized: DatasetDict,
    output_dir: str | Path,
    *,
    epochs: float = 1.0,
    lr: float = 5e-5,
    batch_size: int = 16,
    seed: int = 0,
) -> Trainer:
    """A ``Trainer`` for ``model`` on the tokenised ``train`` split, evaluated on ``validation``.

    Inputs:
        tokenized: splits with ``input_ids``, ``attention_mask`` and ``label`` (equal lengths,
            e.g. from ``finetune.tokenize_dataset``).
    Returns:
        A ``transformers.Trainer`` whose ``TrainingArguments`` train on the CPU for ``epochs``
        with learning rate ``lr`` and batch size ``batch_size``, evaluate once per epoch, save
        no checkpoints and report to no tracker; ``compute_metrics`` gives ``accuracy``.
    """
    # TODO: TrainingArguments(output_dir=..., num_train_epochs=..., learning_rate=...,
    #       per_device_train_batch_size=..., eval_strategy="epoch", save_strategy="no",
    #       report_to=[], use_cpu=True, seed=...), and a compute_metrics(eval_pred) returning
    #       {"accuracy": mean of argmax(logits) == labels}.
    raise NotImplementedError("build_trainer: fill in the TODO above")


@torch.no_grad()
def predict_tags(model: nn.Module, tokenizer, questions: Sequence[str]) -> list[str]:
    """The predicted tag (a name from ``TAGS``) of each question, in order."""
    # TODO: evaluation mode; tokenise with padding and truncation; argmax of the logits; map each
    #       label index to its name in TAGS.
    raise NotImplementedError("predict_tags: fill in the TODO above")
