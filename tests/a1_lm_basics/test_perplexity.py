"""H1.5 — perplexity: its defining properties, drawn by Hypothesis, and agreement with
exp(torch.nn.functional.cross_entropy) over the scored tokens."""

import math

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close
from hypothesis import given
from hypothesis import strategies as st
from strategies import padded_batch, tensors

from grader.testprocess.deliverables import deliverable

pp = deliverable("a1_lm_basics.perplexity")
PAD = -100


def _oracle(logits, targets):
    V = logits.shape[-1]
    return torch.exp(F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=PAD))


@pytest.mark.points(2)
@pytest.mark.number("5.1")
@given(lp=tensors(shape=st.tuples(st.integers(1, 20)), elements=st.floats(-8.0, 0.0, width=64)))
def test_base_does_not_matter(lp):
    """perplexity from log-probabilities is the same in base e, 2 and 10"""
    natural = pp.perplexity_from_log_probs(lp)
    assert_close(
        natural, lambda: torch.exp(-lp.mean()), what="perplexity of natural-log probabilities"
    )
    for base in (2.0, 10.0):
        assert_close(
            pp.perplexity_from_log_probs(lp / math.log(base), base=base),
            natural,
            what=f"perplexity of the same probabilities in log{base:g}",
            hint="raise the given base to the mean negative log-probability",
        )


@pytest.mark.points(3)
@pytest.mark.number("5.2")
@given(batch=padded_batch(pad=PAD))
def test_matches_cross_entropy_and_ignores_padding(batch):
    """perplexity(logits, targets) = exp(mean CE over non-padding tokens); padding never counts"""
    logits, targets = batch
    assert_close(
        pp.perplexity(logits, targets, ignore_index=PAD),
        lambda: _oracle(logits, targets),
        what=f"perplexity of a padded batch {tuple(targets.shape)}",
        hint="average over the scored tokens only: padding (ignore_index) is neither in the "
        "sum nor in the count",
    )
    noisy = logits.clone()
    noisy[targets == PAD] = 123.0  # whatever the model says at padding changes nothing
    assert_close(
        pp.perplexity(noisy, targets, ignore_index=PAD),
        lambda: _oracle(logits, targets),
        what="perplexity after changing the logits at padded positions",
    )


@pytest.mark.points(2)
@pytest.mark.number("5.3")
def test_uniform_and_perfect_models(check):
    """a uniform model's perplexity is V, a perfect model's 1, a confidently wrong one's finite"""
    targets = torch.tensor([[0, 3, 1, PAD], [2, 2, PAD, PAD]])
    with check("uniform over V = 5"):
        assert_close(
            pp.perplexity(torch.zeros(2, 4, 5, dtype=torch.float64), targets, ignore_index=PAD),
            torch.tensor(5.0, dtype=torch.float64),
            what="perplexity of a uniform model",
        )
    with check("perfect model"):
        perfect = torch.full((2, 4, 5), -50.0, dtype=torch.float64)
        keep = targets != PAD
        perfect[keep.nonzero(as_tuple=True) + (targets[keep],)] = 50.0
        assert_close(
            pp.perplexity(perfect, targets, ignore_index=PAD),
            torch.tensor(1.0, dtype=torch.float64),
            what="perplexity of a perfect model",
        )
    for dtype, gap, n in ((torch.float32, 200.0, 50), (torch.float64, 800.0, 200)):
        with check(f"one confidently wrong token among {n}, {dtype}: a finite perplexity"):
            # Its probability, e^-gap, is below the dtype's smallest number: softmax rounds it
            # to 0 and log(0) = -inf, while log_softmax returns -gap. The mean NLL stays ~4.
            logits = torch.full((1, n, 4), -30.0, dtype=dtype)
            logits[..., 0] = 0.0
            wrong = torch.zeros(1, n, dtype=torch.long)
            wrong[0, n // 2] = 1
            logits[0, n // 2] = torch.tensor([0.0, -gap, 0.0, 0.0])
            assert_close(
                pp.perplexity(logits, wrong, ignore_index=PAD),
                lambda lg=logits, w=wrong: _oracle(lg, w),
                what=f"perplexity with logits {gap:g} apart ({dtype})",
                hint="take log-probabilities with log_softmax (or logits minus their "
                "logsumexp): log(softmax(...)) underflows to -inf for a token the "
                "model rules out",
            )
    with check("ignore_index=0 (a class id) is honoured, by perplexity and corpus_perplexity"):
        g = torch.Generator().manual_seed(3)
        logits = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
        zero_pad = torch.tensor(
            [[1, 3, 0, 0], [4, 0, 2, 0]]
        )  # 0 marks padding here, -100 is absent

        def oracle():
            return torch.exp(
                F.cross_entropy(logits.reshape(-1, 5), zero_pad.reshape(-1), ignore_index=0)
            )

        hint = "use the ignore_index argument (not a fixed -100) to choose the scored positions"
        assert_close(
            pp.perplexity(logits, zero_pad, ignore_index=0),
            oracle,
            what="perplexity with ignore_index=0",
            hint=hint,
        )
        assert_close(
            pp.corpus_perplexity([(logits, zero_pad)], ignore_index=0),
            oracle,
            what="corpus_perplexity of one batch with ignore_index=0",
            hint="pass ignore_index on to nll_sum_and_count",
        )


@pytest.mark.points(2)
@pytest.mark.number("5.4")
@given(a=padded_batch(pad=PAD), b=padded_batch(pad=PAD))
def test_a_corpus_is_weighted_by_tokens(a, b):
    """corpus perplexity pools tokens across batches (not an average of batch perplexities)"""
    V = min(a[0].shape[-1], b[0].shape[-1])
    a = (a[0][..., :V], a[1].clamp(max=V - 1).masked_fill(a[1] == PAD, PAD))
    b = (b[0][..., :V], b[1].clamp(max=V - 1).masked_fill(b[1] == PAD, PAD))

    def pooled():
        logits = torch.cat([a[0].reshape(-1, V), b[0].reshape(-1, V)])
        targets = torch.cat([a[1].reshape(-1), b[1].reshape(-1)])
        return torch.exp(F.cross_entropy(logits, targets, ignore_index=PAD))

    assert_close(
        pp.corpus_perplexity([a, b], ignore_index=PAD),
        pooled,
        what="perplexity of two batches together",
        hint="sum the negative log-likelihoods and the token counts over all batches, then "
        "divide once — averaging per-batch (or per-sentence) perplexities is biased",
    )
