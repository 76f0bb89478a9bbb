"""An LSTM from ``nn.Parameter``s (handout H3.3): the textbook equations, one step at a time.

    i_t = σ(x_t W_ii + b_ii + h_{t-1} W_hi + b_hi)       input gate
    f_t = σ(x_t W_if + b_if + h_{t-1} W_hf + b_hf)       forget gate
    g_t = tanh(x_t W_ig + b_ig + h_{t-1} W_hg + b_hg)    cell gate (the candidate)
    o_t = σ(x_t W_io + b_io + h_{t-1} W_ho + b_ho)       output gate
    c_t = f_t ∘ c_{t-1} + i_t ∘ g_t
    h_t = o_t ∘ tanh(c_t)

The weights are stored (in, out), so a batch of rows multiplies from the left (``x @ W_ii``).
``torch.nn.LSTM`` keeps the same numbers transposed and stacked in the gate order i, f, g, o:
``weight_ih_l0 = cat([W_ii, W_if, W_ig, W_io], dim=1).T`` (4H, C), ``weight_hh_l0`` likewise from
the ``W_h*``, ``bias_ih_l0 = cat([b_ii, b_if, b_ig, b_io])`` and ``bias_hh_l0`` from the ``b_h*``.

Shapes: B batch, T time, C input features, H hidden size.
"""

import math

import torch
from torch import Tensor, nn

GATES = ("i", "f", "g", "o")  # input, forget, cell, output: torch.nn.LSTM's order


class LSTM(nn.Module):
    """Parameters (names are part of the contract), for each gate k in i, f, g, o:
    ``W_ik`` (C, H), ``b_ik`` (H,), ``W_hk`` (H, H), ``b_hk`` (H,)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        # BEGIN SOLUTION
        # TODO: for every gate k in GATES create nn.Parameter(torch.empty(...)) attributes
        #       W_ik (C, H), b_ik (H,), W_hk (H, H), b_hk (H,) (setattr helps), then call
        #       self.init_hidden().
        for k in GATES:
            setattr(self, f"W_i{k}", nn.Parameter(torch.empty(input_size, hidden_size)))
            setattr(self, f"b_i{k}", nn.Parameter(torch.empty(hidden_size)))
            setattr(self, f"W_h{k}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            setattr(self, f"b_h{k}", nn.Parameter(torch.empty(hidden_size)))
        self.init_hidden()
        # END SOLUTION

    def init_hidden(self) -> None:
        """Every parameter uniform in [-1/√H, 1/√H], as ``torch.nn.LSTM`` initialises."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x: Tensor, init_states: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run the sequence (batch first).

        Inputs:
            x: (B, T, C).
            init_states: (h_0, c_0), each (B, H); None starts from zeros.
        Returns:
            (h_t, c_t): the hidden and cell states after the last step, each (B, H).
        """
        # BEGIN SOLUTION
        # TODO: start from init_states (or zeros of x's dtype); for each t apply the four gate
        #       equations of the module docstring to x[:, t] and the previous h, then update c and
        #       h. torch.sigmoid and torch.tanh are the activations.
        B, T, _ = x.shape
        if init_states is None:
            h_t = x.new_zeros(B, self.hidden_size)
            c_t = x.new_zeros(B, self.hidden_size)
        else:
            h_t, c_t = init_states
        for t in range(T):
            x_t = x[:, t]  # (B, C)
            i_t = torch.sigmoid(x_t @ self.W_ii + self.b_ii + h_t @ self.W_hi + self.b_hi)
            f_t = torch.sigmoid(x_t @ self.W_if + self.b_if + h_t @ self.W_hf + self.b_hf)
            g_t = torch.tanh(x_t @ self.W_ig + self.b_ig + h_t @ self.W_hg + self.b_hg)
            o_t = torch.sigmoid(x_t @ self.W_io + self.b_io + h_t @ self.W_ho + self.b_ho)
            c_t = f_t * c_t + i_t * g_t  # (B, H)
            h_t = o_t * torch.tanh(c_t)  # (B, H)
        return h_t, c_t
        # END SOLUTION
