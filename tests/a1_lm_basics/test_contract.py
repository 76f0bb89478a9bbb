"""The whole contract of assignment 1's modules, against the reference twin (``tests/twin.py``).

The DAN, the char LSTM LM and the averaged-context LM are built with drawn sizes (a padding id
other than 0, several LSTM layers, a state to continue from), in train and eval mode, and run
beside the instructor's implementation holding the student's own weights: the same outputs, the
same gradient for every parameter and input, and nothing changed by the call. A parameter cut
off the graph or never registered gives the right logits and a model that does not learn; it
fails here, naming the parameter.
"""

import pytest
import torch
from hypothesis import given, settings
from strategies import char_lm_contract_cases, dan_contract_cases
from twin import REFERENCE_ONLY, compare_call, reference, twin_of

from grader.testprocess.deliverables import deliverable

pytestmark = REFERENCE_ONLY

dan = deliverable("a1_lm_basics.dan")
rnn = deliverable("a1_lm_basics.char_rnn")
ctx = deliverable("a1_lm_basics.context_lm")

# Each example builds a module in the student's process and crosses the boundary a few times
# (~30 ms); 12 drawn cases cover the sizes and modes above.
CASES = settings(max_examples=12)


def _mode(module, train: bool):
    return module.train() if train else module.eval()


@pytest.mark.points(2)
@pytest.mark.number("8.5")
@CASES
@given(case=dan_contract_cases())
def test_dan_against_the_reference(case):
    """DAN: outputs, every parameter's gradient and the state after a call, as the reference's"""
    V, C, H, K, pad_id = case["V"], case["C"], case["H"], case["K"], case["pad_id"]
    torch.manual_seed(case["seed"])
    mine = _mode(dan.DAN(V, C, H, K, pad_id=pad_id).double(), case["train"])
    what = f"DAN(V={V}, C={C}, H={H}, K={K}, pad_id={pad_id}) in {'train' if case['train'] else 'eval'} mode"
    ref = reference("a1_lm_basics.dan")
    twin = _mode(twin_of(mine, lambda: ref.DAN(V, C, H, K, pad_id=pad_id), what), case["train"])
    compare_call(
        mine,
        twin,
        (case["idx"],),
        what=f"{what} on idx {case['idx'].tolist()}",
        seed=case["seed"],
        hint="mean of the real tokens' embeddings (idx != pad_id), then hidden, ReLU, out",
    )


@pytest.mark.points(2)
@pytest.mark.number("7.8")
@CASES
@given(case=char_lm_contract_cases())
def test_char_rnn_against_the_reference(case):
    """CharRNN: logits and state, every parameter's gradient and the state after, as the reference's"""
    V, C, H, layers = case["V"], case["C"], case["H"], case["layers"]
    torch.manual_seed(case["seed"])
    mine = _mode(rnn.CharRNN(V, C, H, layers).double(), case["train"])
    what = f"CharRNN(V={V}, C={C}, H={H}, num_layers={layers}) in {'train' if case['train'] else 'eval'} mode"
    ref = reference("a1_lm_basics.char_rnn")
    twin = _mode(twin_of(mine, lambda: ref.CharRNN(V, C, H, layers), what), case["train"])
    state = case.get("state")
    args = (case["idx"],) if state is None else (case["idx"], state)
    where = "from zeros" if state is None else "from a given (h, c)"
    compare_call(
        mine,
        twin,
        args,
        what=f"{what} on idx {case['idx'].tolist()} {where}",
        seed=case["seed"],
        hint="embed, the LSTM from the given state, the head at every "
        "step; return the LSTM's new state",
    )


@pytest.mark.points(1)
@pytest.mark.number("6.5")
@CASES
@given(case=char_lm_contract_cases(recurrent=False))
def test_averaged_context_lm_against_the_reference(case):
    """AveragedContextLM: outputs, every parameter's gradient and the state after, as the reference's"""
    V, C = case["V"], case["C"]
    torch.manual_seed(case["seed"])
    mine = _mode(ctx.AveragedContextLM(V, C).double(), case["train"])
    what = f"AveragedContextLM(V={V}, C={C}) in {'train' if case['train'] else 'eval'} mode"
    ref = reference("a1_lm_basics.context_lm")
    twin = _mode(twin_of(mine, lambda: ref.AveragedContextLM(V, C), what), case["train"])
    compare_call(
        mine,
        twin,
        (case["idx"],),
        what=f"{what} on idx {case['idx'].tolist()}",
        seed=case["seed"],
        hint="embed, averaged_context, then W",
    )
