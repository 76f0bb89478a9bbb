"""A vanilla RNN unit from ``nn.Linear`` layers and activations (handout H3.2).

One step reads the input and the previous hidden state side by side:

    combined = [x_t ; h_{t-1}]
    h_t = tanh(i2h(combined)),   output_t = log_softmax(i2o(combined))

(the handout's unit, as in PyTorch's character-RNN tutorial: the output is computed from the same
``combined`` vector as the new hidden state, not from h_t). Run it over a sequence by feeding the
hidden state back; ``i2h`` is ``nn.RNNCell``'s ``[W_ih | W_hh]`` side by side.

Shapes: B batch, C input features, H hidden size, V output classes.
"""

import torch
from torch import Tensor, nn


class VanillaRNN(nn.Module):
    """Attribute names are part of the contract: ``i2h`` (C + H → H), ``i2o`` (C + H → V),
    ``tanh`` and ``softmax`` (``nn.LogSoftmax(dim=1)``)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        # TODO: self.i2h = nn.Linear(C + H, H); self.i2o = nn.Linear(C + H, V);
        #       self.tanh = nn.Tanh(); self.softmax = nn.LogSoftmax(dim=1).
        raise NotImplementedError("VanillaRNN.__init__: fill in the TODO above")

    def forward(self, input: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """One step.

        Inputs:
            input: (B, C); hidden: (B, H), the previous hidden state.
        Returns:
            output: (B, V) log-probabilities; hidden: (B, H), the new hidden state.
        """
        # TODO: concatenate input and hidden along dim 1 (input first); the new hidden state is
        #       tanh(i2h(...)), the output log_softmax(i2o(...)) of the same concatenation.
        raise NotImplementedError("VanillaRNN.forward: fill in the TODO above")
