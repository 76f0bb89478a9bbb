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

Only local BERT checkpoints with absolute positions and gelu are read here (:func:`supports`);
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


def supports(path: str | Path) -> bool:
    """Whether ``path`` is a local BERT checkpoint this module reads (else: transformers)."""
    folder = Path(path)
    if not all((folder / f).is_file() for f in FILES):
        return False
    config = json.loads((folder / "config.json").read_text())
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
    )


@dataclass(frozen=True)
class Config:
    C: int  # hidden size
    nh: int  # attention heads
    layers: int
    eps: float  # LayerNorm's epsilon
    pad_id: int

    @classmethod
    def read(cls, folder: Path) -> Config:
        c = json.loads((folder / "config.json").read_text())
        assert c["hidden_size"] % c["num_attention_heads"] == 0, c
        return cls(
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


def load(path: str | Path, weights: dict[str, Tensor]) -> tuple[BertClassifier, Tokenizer]:
    """The classifier of ``weights`` (classification-model names: the checkpoint's, folded with
    an artifact) and the tokenizer of the checkpoint at ``path``."""
    config = Config.read(Path(path))
    missing = [n for n in ("bert.pooler.dense.weight", "classifier.weight") if n not in weights]
    if missing:
        raise KeyError(f"no {missing}: a classifier needs a pooler and a classification head")
    return BertClassifier(config, weights).eval(), Tokenizer(path, config.pad_id)


def base_weights(path: str | Path, num_labels: int) -> dict[str, Tensor]:
    """The checkpoint's tensors under the classification model's names (``bert.…``), and the
    classification head's slots (zeros, in place of any head the checkpoint has), which an
    artifact fills."""
    from safetensors.torch import load_file

    weights = load_file(str(Path(path) / "model.safetensors"))
    # float32 whatever the checkpoint stores (some hold float16): the checks predict as float32 does
    weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    if not any(k.startswith("bert.") for k in weights):  # an encoder's checkpoint (BertModel)
        weights = {f"bert.{k}": v for k, v in weights.items()}
    C = Config.read(Path(path)).C
    return weights | {
        "classifier.weight": torch.zeros(num_labels, C),
        "classifier.bias": torch.zeros(num_labels),
    }
