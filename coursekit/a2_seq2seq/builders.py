"""Kit objects of assignment 2 built next to a student's objects (``grader.testprocess.deliverables.build``).

When grading, student code runs in a process of its own and a test holds proxies of its objects
(``grader.boundary``). What student code must hold or call itself is built in that process by
name, and works the same in a plain pytest run (built here):

- ``clipped_adam``: the translation runs' optimizer (``coursekit.a2_seq2seq.translation.fit``), over the
  student's model, clipping the gradients' global norm before each step;
- ``TranslationLoss``: their training loss, computed next to the model so that only the loss
  crosses, not the model's (B, T, V) scores (it only trains the model: the graded figure, dev
  perplexity, is computed by ``coursekit.a2_seq2seq.translation`` from the scores the model gives);
- ``fill_weights``: a model in float64 with every parameter set to values that depend on its name,
  shape and a seed alone (``drawn_weights``), written where the model lives: the tests draw the
  same values on their side for their oracles (``tests/a2_seq2seq/conftest.py``);
- ``ToyEncoder`` / ``ToyDecoder``: a small deterministic encoder and decoder for grading
  ``Seq2Seq``'s loop on its own (``tests/a2_seq2seq/test_seq2seq.py``). The tests build the same
  toys in their own process as the oracle's twins: a toy's weights depend on its arguments only.

Nothing in this module is graded.
"""

from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ClippedAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose ``step`` first clips the gradients of its parameters to a global
    norm of at most ``max_grad_norm`` (``nn.utils.clip_grad_norm_``), as a training loop does
    between ``backward`` and ``step``."""

    def __init__(self, params, *, lr: float, max_grad_norm: float | None) -> None:
        super().__init__(params, lr=lr)
        self.max_grad_norm = max_grad_norm

    def step(self, closure=None):
        if self.max_grad_norm is not None:
            params = [p for group in self.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        return super().step(closure)


def clipped_adam(model: nn.Module, lr: float, max_grad_norm: float | None) -> ClippedAdam:
    """Adam over ``model.parameters()``, gradients clipped before each step."""
    return ClippedAdam(model.parameters(), lr=lr, max_grad_norm=max_grad_norm)


def translation_scores(
    model: nn.Module,
    source: Tensor,
    target: Tensor,
    *,
    transformer: bool,
    teacher_forcing: bool,
    pad: int,
) -> Tensor:
    """(B, T_tgt - 1, V_tgt): what ``model`` gives for target words 1 .. T_tgt - 1 (logits or
    log-probabilities: cross-entropy treats both alike). The Transformer scores target word t at
    position t of the source (both padded to a common length); Seq2Seq is teacher-forced (handed
    the whole target: for training pairs only) or decodes greedily."""
    B, T_src = source.shape
    T_tgt = target.shape[1]
    if not transformer:
        if teacher_forcing:
            return model(source, target=target)
        return model(source, out_seq_len=T_tgt - 1)
    L = max(T_src, T_tgt)  # the target word t is read off position t
    padded = F.pad(source, (0, L - T_src), value=pad)  # (B, L)
    return model(padded, padded == pad)[:, 1:T_tgt]


class TranslationLoss(nn.Module):
    """Mean cross-entropy of ``model``'s scores for the target words after <sos>, padding ignored
    (``translation_scores``): a training step's loss."""

    def __init__(self, model: nn.Module, *, transformer: bool, teacher_forcing: bool, pad: int):
        super().__init__()
        self.model = model
        self.options = {"transformer": transformer, "teacher_forcing": teacher_forcing, "pad": pad}

    def forward(self, source: Tensor, target: Tensor) -> Tensor:
        out = translation_scores(self.model, source, target, **self.options)  # (B, T_tgt - 1, V)
        gold = target[:, 1:]
        return F.cross_entropy(
            out.reshape(-1, out.shape[-1]), gold.reshape(-1), ignore_index=self.options["pad"]
        )


def drawn_weights(shapes: dict[str, list[int]], seed: int, scale: float = 0.5) -> dict[str, Tensor]:
    """scale · N(0, 1) of each shape, float64, drawn from (seed, the parameter's name): the same
    values wherever they are drawn."""
    values = {}
    for name, shape in shapes.items():
        g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        values[name] = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    return values


def fill_weights(model: nn.Module, seed: int, scale: float = 0.5) -> dict[str, list[int]]:
    """``model.double()``, then every parameter it names set to ``drawn_weights``: the names and
    shapes written. One request when grading, where the test's side took three (double, the
    parameters read, the values written back)."""
    model.double()
    shapes = {name: list(p.shape) for name, p in model.named_parameters()}
    model.load_state_dict(drawn_weights(shapes, seed, scale), strict=False)
    return shapes


class ToyEncoder(nn.Module):
    """Any encoder will do for grading Seq2Seq's loop: this one is small and deterministic."""

    def __init__(self, V: int, H: int, lstm: bool, seed: int):
        super().__init__()
        self.lstm = lstm
        self.embedding = nn.Embedding(V, H, dtype=torch.float64)
        nn.init.normal_(self.embedding.weight, generator=torch.Generator().manual_seed(seed))

    def forward(self, source: Tensor):
        out = torch.tanh(self.embedding(source).cumsum(dim=1))  # (B, T, H)
        h = out[:, -1:].transpose(0, 1)  # (1, B, H)
        return out, ((h, -h) if self.lstm else h)


class ToyDecoder(nn.Module):
    """One decoding step that reads the word, the state and (with attention) the encoder outputs."""

    def __init__(self, V: int, H: int, lstm: bool, attention: bool, seed: int):
        super().__init__()
        self.lstm, self.attention = lstm, attention
        g = torch.Generator().manual_seed(seed + 1)
        self.embedding = nn.Embedding(V, H, dtype=torch.float64)
        self.linear = nn.Linear(H, V, dtype=torch.float64)
        for p in self.parameters():
            nn.init.normal_(p, generator=g)

    def forward(self, input: Tensor, hidden, encoder_outputs: Tensor | None = None):
        h, c = hidden if self.lstm else (hidden, None)
        x = self.embedding(input)[:, 0] + h[0]  # (B, H)
        if self.attention:
            if encoder_outputs is None:
                raise ValueError("the decoder attends: pass encoder_outputs")
            x = x + encoder_outputs.mean(dim=1)
        h = torch.tanh(x).unsqueeze(0)  # (1, B, H)
        output = torch.log_softmax(self.linear(h[0]), dim=1)  # (B, V)
        return output, ((h, c + h) if self.lstm else h)
