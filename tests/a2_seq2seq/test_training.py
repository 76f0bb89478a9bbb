"""H3.6 — training on a small slice of Multi30k German→English, in seconds.

``coursekit.a2_seq2seq.translation`` trains your classes (Adam, clipped gradients, length-bucketed batches)
and measures perplexity on the first 200 held-out pairs of at most 10 words (Multi30k's
test_2016_flickr, root's alone on Gradescope; a handout holds the public train and val splits
alone, and there the run scores val instead, and says so); the trivial baseline is the unigram
model of the training targets. The full-size figures are in the README
(``python -m coursekit.a2_seq2seq.fullsize``). The protocols: the Transformer scores target word t from the
source alone (position t); Seq2Seq here is teacher-forced (it also sees the gold words before t).
The kit computes the perplexity itself, from the scores your model gives; teacher-forced, the model
is shown the gold words one more at a time, never the word it is scoring.
"""

from pathlib import Path

import pytest
from compare import assert_at_most

from grader.testprocess.deliverables import deliverable

seq2seq = deliverable("a2_seq2seq.seq2seq")
transformer = deliverable("a2_seq2seq.transformer")
SETTINGS = Path(__file__).with_name("assignment.toml")  # which data is held out here ([data])
SLICE = {"max_len": 10, "dev_limit": 200, "min_freq": 2, "batch_size": 32, "seed": 0}

# 3 epochs on the first 2,000 training pairs (188 steps), H = 32, 2 heads of 16, F = 64, lr 3e-3.
# Over seeds 0-9 (`make train-spread`) the reference's held-out perplexity has median 24.4 and
# worst 25.6 (seed 3; unigram baseline 88.1; on a handout's val pairs: median 22.4, worst 23.2);
# the threshold is 15% above the worst seed. (It was 26.0 when the run scored val: 2% above the
# worst seed on the held-out pairs.)
TRANSFORMER = {
    "model": "transformer",
    "train_limit": 2000,
    "epochs": 3,
    "lr": 3e-3,
    "hidden_dim": 32,
    "num_heads": 2,
    "dim_k": 16,
    "dim_feedforward": 64,
}
TRANSFORMER_THRESHOLD = 29.5

# 3 epochs on the first 1,500 pairs (141 steps), LSTM with cosine attention, C = H = 32, lr 1e-2,
# teacher forcing. The reference reaches 27.3 with seed 0; over seeds 0-9 the held-out median is
# 29.2 and the worst 41.2 (seed 8; `make train-spread`); unigram 79.0 (on a handout's val pairs:
# median 28.5, worst 39.9). The threshold keeps 15% over the worst seed: an honest solution draws
# its random numbers in its own order, which moves the figure as a new seed would. (With 2
# epochs, seed 8 reached 45.9, above the 38.5 this test had then.)
# A decoder fed the word it must predict scores 400-600.
SEQ2SEQ = {
    "model": "seq2seq-attn",
    "teacher_forcing": True,
    "model_type": "LSTM",
    "train_limit": 1500,
    "epochs": 3,
    "lr": 1e-2,
    "emb_size": 32,
    "hidden_size": 32,
}
SEQ2SEQ_THRESHOLD = 47.5


HELDOUT = ("multi30k/test_2016_flickr.de", "multi30k/test_2016_flickr.en")


def graded_run(
    module, options: dict, seed: int = 0, heldout: bool | None = None
) -> tuple[dict, str]:
    """The graded run of ``module`` with ``options``: (the run's figures, what was scored).
    ``heldout``: score test_2016_flickr (default: wherever assignment.toml declares it)."""
    from coursekit.a2_seq2seq import translation as kit
    from coursekit.data import heldout_here

    heldout = heldout_here(SETTINGS, HELDOUT) if heldout is None else heldout
    cfg = kit.TranslationConfig(**{**SLICE, "seed": seed}, **options)
    result = kit.run(module, cfg, eval_split="test_2016_flickr" if heldout else "val")
    what = (
        "200 held-out test pairs"
        if heldout
        else "200 val pairs (public dev data in this handout; Gradescope scores 200 held-out "
        "test pairs)"
    )
    return result, what


def _check_run(check, module, options, threshold, reference, hint):
    result, scored = graded_run(module, options)
    what = f"perplexity of {options['model']} on {scored} after training on the slice"
    with check("below the unigram baseline"):
        assert_at_most(
            result["perplexity"],
            lambda: result["unigram_perplexity"],
            what=what,
            why="the unigram model of the training targets",
            hint=f"worse than word frequencies: {hint}",
        )
    with check(f"at most {threshold}"):
        assert_at_most(
            result["perplexity"],
            threshold,
            what=what,
            why=f"the reference reaches {reference}; the margin is in the test file",
            hint=hint,
        )


@pytest.mark.points(2)
@pytest.mark.number("6.1")
def test_transformer_learns(check):
    """188 steps on 2,000 pairs bring the Transformer's held-out perplexity to 29.5 or less (unigram: 88.1)"""
    _check_run(
        check,
        transformer.module(),
        TRANSFORMER,
        TRANSFORMER_THRESHOLD,
        24.0,
        "do the scores at position t depend on the source words (attention over all "
        "keys, softmax over the keys)? Is the residual added before each LayerNorm?",
    )


@pytest.mark.points(2)
@pytest.mark.number("6.2")
def test_seq2seq_learns(check):
    """141 steps on 1,500 pairs bring teacher-forced Seq2Seq (LSTM, attention) to 47.5 or less (unigram: 79.0)"""
    _check_run(
        check,
        seq2seq.module(),
        SEQ2SEQ,
        SEQ2SEQ_THRESHOLD,
        27.3,
        "does the decoder carry its hidden state from step to step, and does step t "
        "feed target[:, t] (so that output t predicts word t + 1)?",
    )
