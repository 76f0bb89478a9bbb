"""BERT's sequence classifier in plain torch: the model of the trusted accuracy checks.

The accuracy checks (``tests/a3_attention_bert/test_finetune.py``) classify held-out text with a
submitted artifact folded into the pretrained encoder. transformers' ``BertForSequenceClassification``
computes the same logits, but importing it brings torch._dynamo, sympy and scipy along: 131 MB and
3 s at one core, in a process that needs none of them (on Gradescope's 768 MB the checks' peak sits
on top of it). This module reads the checkpoint's tensors by their transformers names and computes,
in eval mode (no dropout),

    h_0    = LayerNorm(E_word[ids] + E_pos[0..T) + E_type[0])               (B, T, C)
    a_l    = LayerNorm(h_{l-1} + W_o · MHA(h_{l-1}; padding masked))        (B, T, C)
    h_l    = LayerNorm(a_l + W_2 · gelu(W_1 · a_l))                         (B, T, C)
    logits = W_c · tanh(W_p · h_L[:, 0])                                    (B, num_labels)

with the same torch operations as transformers (``F.linear``, ``scaled_dot_product_attention``,
exact gelu), so bfloat16 autocast lowers the same ones (the sums still run in another order: the
recheck margins against float32 were measured on this module, ``finetune.RECHECK_MARGIN``). The
tokenizer is the checkpoint's own ``tokenizer.json`` read by the ``tokenizers`` library, which
transformers' fast tokenizer wraps.

Only local BERT checkpoints with absolute positions and gelu are read here (:func:`checkpoint_config`);
for any other model the checks use transformers itself. The kit's tests hold both to the same
logits (``grader/tests/test_bert_classifier.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FILES = ("config.json", "model.safetensors", "tokenizer.json")


@dataclass(frozen=True)
class Config:
    C: int  # hidden size
    nh: int  # attention heads
    layers: int
    eps: float  # LayerNorm's epsilon
    pad_id: int


def checkpoint_config(path: str | Path) -> Config | None:
    """The configuration of the local BERT checkpoint at ``path``; None when this module does not
    read it (not a folder with ``FILES``, not BERT, other positions or activation): then the
    checks use transformers."""
    folder = Path(path)
    if not all((folder / f).is_file() for f in FILES):
        return None
    c = json.loads((folder / "config.json").read_text())
    if (
        c.get("model_type") != "bert"
        or c.get("hidden_act") != "gelu"
        or c.get("position_embedding_type", "absolute") != "absolute"
    ):
        return None
    assert c["hidden_size"] % c["num_attention_heads"] == 0, c
    return Config(
        c["hidden_size"],
        c["num_attention_heads"],
        c["num_hidden_layers"],
        c.get("layer_norm_eps", 1e-12),
        c.get("pad_token_id") or 0,
    )


class BertClassifier(nn.Module):
    """``model(input_ids=(B, T), attention_mask=(B, T)).logits`` -> (B, num_labels), as
    transformers' model is called (so ``finetune.classify`` serves both)."""

    def __init__(self, config: Config, weights: dict[str, Tensor]):
        super().__init__()
        self.config = config
        self.w = weights  # classification-model names -> tensors; read, never trained

    def _ln(self, x: Tensor, name: str) -> Tensor:
        w = self.w
        return F.layer_norm(
            x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], self.config.eps
        )

    def _linear(self, x: Tensor, name: str) -> Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _layer(self, h: Tensor, keep: Tensor, i: int) -> Tensor:
        B, T, C = h.shape
        nh = self.config.nh
        p = f"bert.encoder.layer.{i}"
        q, k, v = (
            self._linear(h, f"{p}.attention.self.{n}").view(B, T, nh, C // nh).transpose(1, 2)
            for n in ("query", "key", "value")
        )  # (B, nh, T, hs)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, nh, T, hs)
        att = att.transpose(1, 2).reshape(B, T, C)
        a = self._ln(
            h + self._linear(att, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm"
        )
        up = F.gelu(self._linear(a, f"{p}.intermediate.dense"))  # (B, T, 4C)
        return self._ln(a + self._linear(up, f"{p}.output.dense"), f"{p}.output.LayerNorm")

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> SimpleNamespace:
        w = self.w
        B, T = input_ids.shape
        e = "bert.embeddings"
        h = (
            F.embedding(input_ids, w[f"{e}.word_embeddings.weight"])
            + w[f"{e}.position_embeddings.weight"][:T]
            + w[f"{e}.token_type_embeddings.weight"][0]
        )  # (B, T, C)
        h = self._ln(h, f"{e}.LayerNorm")
        keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): keys that are not padding
        for i in range(self.config.layers):
            h = self._layer(h, keep, i)
        pooled = torch.tanh(self._linear(h[:, 0], "bert.pooler.dense"))  # (B, C)
        return SimpleNamespace(logits=self._linear(pooled, "classifier"))  # (B, num_labels)


class Tokenizer:
    """``tokenizer(texts, truncation=True, max_length=n)["input_ids"]`` and ``pad_token_id``, as
    transformers' fast tokenizer is called, from the checkpoint's ``tokenizer.json``."""

    def __init__(self, path: str | Path, pad_id: int):
        from tokenizers import Tokenizer as Fast

        self.fast = Fast.from_file(str(Path(path) / "tokenizer.json"))
        self.fast.no_padding()
        self.pad_token_id = pad_id

    def __call__(
        self, texts: Sequence[str], *, truncation: bool = True, max_length: int = 512
    ) -> dict[str, list[list[int]]]:
        if truncation:
            self.fast.enable_truncation(max_length)
        else:
            self.fast.no_truncation()
        return {"input_ids": [e.ids for e in self.fast.encode_batch(list(texts))]}


def load(
    path: str | Path, config: Config, weights: dict[str, Tensor]
) -> tuple[BertClassifier, Tokenizer]:
    """The classifier of ``weights`` (``base_weights`` with an artifact folded in) and the
    tokenizer of the checkpoint at ``path``."""
    if "bert.pooler.dense.weight" not in weights:
        raise KeyError("the checkpoint has no pooler (bert.pooler.dense): a classifier needs one")
    return BertClassifier(config, weights).eval(), Tokenizer(path, config.pad_id)


def checkpoint_tensors(path: str | Path, keys: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The tensors of the checkpoint at ``path`` under the classification model's names
    (``bert.…``: an encoder's checkpoint stores them without the prefix), floats in float32
    whatever the file stores (some hold float16; the checks predict as float32 does): every one,
    or those of ``keys`` it holds (a new head's are left out)."""
    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), framework="pt") as f:
        stored = list(f.keys())
        encoder = not any(n.startswith("bert.") for n in stored)  # a BertModel's checkpoint
        wanted = {(f"bert.{n}" if encoder else n): n for n in stored}
        if keys is not None:
            wanted = {k: wanted[k] for k in keys if k in wanted}
        tensors = {k: f.get_tensor(n) for k, n in wanted.items()}
    return {k: t.float() if t.is_floating_point() else t for k, t in tensors.items()}


def base_weights(path: str | Path, config: Config, num_labels: int) -> dict[str, Tensor]:
    """The checkpoint's tensors (``checkpoint_tensors``) and the classification head's slots
    (zeros, in place of any head the checkpoint has), which an artifact fills."""
    return checkpoint_tensors(path) | {
        "classifier.weight": torch.zeros(num_labels, config.C),
        "classifier.bias": torch.zeros(num_labels),
    }
