"""H1.6 — the character-level recurrent LM: causal model, shifted loss, an epoch of training,
seeded temperature sampling, held-out perplexity, and a short run on Tiny Shakespeare.

Oracles: loops written here with the student's own modules (the model's wiring is checked by
its properties: causality and continuing from a state), ``F.cross_entropy``, and the unigram
model as the trivial baseline."""

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from compare import assert_at_most, assert_close, assert_equal
from hypothesis import given
from hypothesis import strategies as st
from instruments import OptimizerWatch
from strategies import token_batches

from grader.testprocess.deliverables import build, deliverable

rnn = deliverable("a1_lm_basics.char_rnn")
SETTINGS = Path(__file__).with_name("assignment.toml")  # which data is held out here ([data])
V = 7  # the vocabulary of token_batches()


def _model(seed: int = 0, layers: int = 1, scale: float = 1.0):
    """A small CharRNN in float64; ``scale`` > 1 makes its predictions depend strongly on the
    characters before (freshly initialised weights are small, and so is their influence)."""
    torch.manual_seed(seed)
    model = rnn.CharRNN(V, 5, 6, layers).double()
    if scale != 1.0:  # written back whole: the model may live in another process
        model.load_state_dict({n: t * scale for n, t in model.state_dict().items()})
    return model


@pytest.mark.points(1)
@pytest.mark.number("7.1")
@given(idx=token_batches(), t=st.integers(0, 8))
def test_model_is_causal(idx, t):
    """logits are (B, T, V) and step t ignores every later character"""
    B, T = idx.shape
    t = min(t, T - 1)
    model = _model(layers=2)
    with torch.no_grad():
        logits, _ = model(idx)
        assert_equal(list(logits.shape), [B, T, V], what=f"logits shape for idx of shape {(B, T)}")
        changed = idx.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % V
        assert_close(
            model(changed)[0][:, : t + 1],
            logits[:, : t + 1],
            what=f"logits at steps 0..{t} after changing the characters after {t}",
            hint="a unidirectional LSTM over the sequence, no look-ahead",
        )


@pytest.mark.points(1)
@pytest.mark.number("7.2")
@given(idx=token_batches().filter(lambda x: x.shape[1] >= 2), t=st.integers(0, 7))
def test_model_continues_from_a_state(idx, t):
    """a text run in two parts, the second from the first's state, gives the logits of one run"""
    B, T = idx.shape
    t = min(t, T - 2)
    model = _model(layers=2)
    with torch.no_grad():
        first, state = model(idx[:, : t + 1])
        rest, _ = model(idx[:, t + 1 :], state)
        assert_close(
            torch.cat([first, rest], dim=1),
            lambda: model(idx)[0],
            what=f"logits of idx[:, :{t + 1}] then idx[:, {t + 1}:] from the state, T={T}",
            hint="forward(idx, state) must start the LSTM from `state` and return the "
            "state after the last step",
        )
        h, c = state
        assert tuple(h.shape) == tuple(c.shape) == (2, B, 6), (
            f"the state of a 2-layer model: h {tuple(h.shape)}, c {tuple(c.shape)}, expected "
            f"(2, {B}, 6) each (layers, batch, hidden): pass num_layers on to nn.LSTM"
        )


@pytest.mark.points(1)
@pytest.mark.number("7.3")
@given(idx=token_batches().filter(lambda x: x.shape[1] >= 2), seed=st.integers(0, 3))
def test_loss_predicts_the_next_character(idx, seed):
    """lm_loss is the mean cross-entropy of logits[:, t] against idx[:, t + 1]"""
    B, T = idx.shape
    logits = torch.randn(
        B, T, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    assert_close(
        rnn.lm_loss(logits, idx),
        lambda: F.cross_entropy(logits[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1)),
        what=f"lm_loss for idx of shape {(B, T)}",
        hint="the logits at step t predict character t + 1: logits[:, :-1] vs idx[:, 1:]",
    )


def _reference_epoch(model, batches, lr, max_grad_norm, applied=None):
    """SGD written out here: the student's forward and backward, then clipping and the step on
    the gradients read back (``clip_grad_norm_``'s formula), written with load_state_dict.
    ``applied``: a list that receives the (clipped) gradients of every step."""
    losses = []
    for idx in batches:
        model.zero_grad()
        logits, _ = model(idx)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1))
        loss.backward()
        params = dict(model.named_parameters())
        grads = {
            n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in params.items()
        }
        if max_grad_norm is not None:
            total = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])
            )
            scale = min(1.0, max_grad_norm / (float(total) + 1e-6))
            grads = {n: g * scale for n, g in grads.items()}
        if applied is not None:
            applied.append(grads)
        model.load_state_dict(
            {n: p.detach() - lr * grads[n] for n, p in params.items()}, strict=False
        )
        losses.append(loss.item())
    return sum(losses) / len(losses)


@pytest.mark.points(2)
@pytest.mark.number("7.4")
def test_train_epoch(check):
    """train_epoch takes one clipped optimizer step per batch and returns the mean batch loss"""
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(V, (3, 6), generator=g) for _ in range(4)]
    for max_grad_norm in (None, 0.05):
        model = _model(seed=1)
        twin = copy.deepcopy(model)
        with check(f"max_grad_norm={max_grad_norm}"):
            optimizer = build("coursekit.builders.optimizer", model, "SGD", lr=0.5)
            got = rnn.train_epoch(model, batches, optimizer, max_grad_norm)
            want = _reference_epoch(twin, batches, 0.5, max_grad_norm)
            assert_close(
                torch.tensor(float(got), dtype=torch.float64),
                torch.tensor(want, dtype=torch.float64),
                what=f"the returned mean of the 4 batch losses (clip {max_grad_norm})",
                hint="average the losses of all batches (loss.item() of each)",
            )
            for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
                assert_close(
                    p.detach(),
                    q.detach(),
                    what=f"{name} after 4 steps of SGD (lr 0.5, clip {max_grad_norm})",
                    hint="optimizer.zero_grad() before each backward (gradients add up "
                    "otherwise), clip after backward and before step",
                )


@pytest.mark.points(1)
@pytest.mark.number("7.9")
def test_train_epoch_contract(check):
    """train_epoch, watched step by step: train mode, one step per batch, each with this batch's clipped gradients"""
    g = torch.Generator().manual_seed(4)
    batches = [torch.randint(V, (2, 5), generator=g) for _ in range(3)]
    for max_grad_norm in (None, 0.05):
        model = _model(seed=2).eval()  # handed over in eval mode: the loop must switch to train
        twin = copy.deepcopy(model)
        applied: list[dict] = []
        _reference_epoch(twin, batches, 0.5, max_grad_norm, applied)
        optimizer = build("coursekit.builders.optimizer", model, "SGD", lr=0.5)
        watch = OptimizerWatch(optimizer, model)
        rnn.train_epoch(model, batches, watch, max_grad_norm)
        with check(f"one step per batch (max_grad_norm={max_grad_norm})"):
            assert_equal(
                len(watch.steps),
                len(batches),
                what=f"optimizer steps for {len(batches)} batches",
                hint="call optimizer.step() once per batch, after backward",
            )
        with check(
            f"train mode at every step (the model came in eval mode; max_grad_norm={max_grad_norm})"
        ):
            assert_equal(
                [s.training for s in watch.steps],
                [True] * len(watch.steps),
                what="model.training at each optimizer step",
                hint="call model.train() at the start of the epoch: the caller's model may "
                "be in eval mode (dropout and batch norm behave differently there)",
            )
        with check(
            f"each step applies this batch's gradients, clipped (max_grad_norm={max_grad_norm})"
        ):
            for k, (step, want) in enumerate(zip(watch.steps, applied, strict=False)):
                for name, grad in want.items():
                    assert_close(
                        step.grads[name],
                        grad,
                        what=f"the gradient of {name} at step {k + 1} "
                        f"(max_grad_norm={max_grad_norm})",
                        rtol=1e-6,
                        atol=1e-9,
                        why="the same float64 backward; clipping scales by a norm that "
                        "rounds differently",
                        hint="optimizer.zero_grad() before each "
                        "backward (else the gradients of earlier batches add up), "
                        "clip_grad_norm_ after backward and before step",
                    )


def _oracle_sample(model, prompt, n, temperature, seed, greedy=False):
    g = torch.Generator().manual_seed(seed)
    ids = prompt.tolist()
    with torch.no_grad():
        for _ in range(n):  # re-reads the whole text each step: slow, but obviously right
            logits = model(torch.tensor([ids]))[0][0, -1]
            if greedy:
                ids.append(int(logits.argmax()))
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                ids.append(int(torch.multinomial(probs, 1, generator=g)))
    return torch.tensor(ids)


@pytest.mark.points(2)
@pytest.mark.number("7.5")
def test_sample(check):
    """seeded temperature sampling: prompt kept, same text for the same seed, near-greedy when cold"""
    model = _model(seed=2, scale=4.0)
    prompt = torch.tensor([1, 4, 2])
    for t in (1.0, 0.6):
        with check(f"temperature {t}, seed 5"):
            got = rnn.sample(
                model, prompt, 12, temperature=t, generator=torch.Generator().manual_seed(5)
            )
            assert_equal(
                got.tolist(),
                lambda t=t: _oracle_sample(model, prompt, 12, t, 5).tolist(),
                what=f"sample(prompt=[1, 4, 2], n=12, temperature={t}) with seed 5",
                hint="softmax(logits / temperature), one torch.multinomial(probs, 1, "
                "generator=generator) per character, feeding each back with the "
                "state",
            )
    with check("the continuation depends on the whole prompt, not its last character"):
        # Two prompts that end alike, and a model (seed 1, scale 4) that remembers how they
        # began: for some seed their continuations differ (the set-up asserts it), so sampling
        # from a state that saw only the last character, or the first, gets one of them wrong.
        memory = _model(seed=1, scale=4.0)
        prompts = (torch.tensor([1, 4, 2]), torch.tensor([6, 0, 3, 3, 2]))
        seeds = (5, 6, 7)
        expected = {
            (i, seed): _oracle_sample(memory, p, 6, 1.0, seed)[len(p) :].tolist()
            for i, p in enumerate(prompts)
            for seed in seeds
        }
        assert any(expected[0, s] != expected[1, s] for s in seeds), (
            "test set-up: the prompts should lead apart for some seed"
        )
        for (i, seed), want in expected.items():
            p = prompts[i]
            got = rnn.sample(memory, p, 6, generator=torch.Generator().manual_seed(seed))
            assert_equal(
                got[len(p) :].tolist(),
                want,
                what=f"the 6 characters sampled after prompt {p.tolist()} (seed {seed})",
                hint="run the whole prompt through the model once and sample the first "
                "character from the logits at its last position, with the state it "
                "leaves",
            )
    with check("temperature 0.01 is greedy"):
        got = rnn.sample(
            model, prompt, 12, temperature=0.01, generator=torch.Generator().manual_seed(5)
        )
        assert_equal(
            got.tolist(),
            lambda: _oracle_sample(model, prompt, 12, 1.0, 5, greedy=True).tolist(),
            what="sample(prompt=[1, 4, 2], n=12, temperature=0.01)",
            hint="divide the logits by the temperature (a small one sharpens)",
        )


@pytest.mark.points(1)
@pytest.mark.number("7.6")
def test_heldout_perplexity(check):
    """held-out perplexity scores every character but the first exactly once, token-weighted"""
    model = _model(seed=3)
    for n, seq_len in ((20, 6), (13, 4), (9, 8), (2, 5)):
        ids = torch.randint(V, (n,), generator=torch.Generator().manual_seed(n))

        def expected(ids=ids, n=n, seq_len=seq_len):
            with torch.no_grad():
                nll, count = 0.0, 0
                for s in range(0, n - 1, seq_len):
                    w = ids[s : s + seq_len + 1]
                    logits = model(w[:-1].view(1, -1))[0][0]
                    nll += F.cross_entropy(logits, w[1:], reduction="sum").item()
                    count += len(w) - 1
                return torch.tensor(math.exp(nll / count), dtype=torch.float64)

        with check(f"{n} characters, windows of {seq_len}"):
            got = rnn.heldout_perplexity(model, ids, seq_len)
            assert_close(
                torch.as_tensor(got, dtype=torch.float64),
                expected,
                what=f"heldout_perplexity of {n} characters in windows of {seq_len}",
                hint="windows ids[s : s + seq_len + 1] for s = 0, seq_len, ...; pool NLL and "
                "counts over all windows before exp (corpus_perplexity)",
            )


# The fast run: 3 epochs of 50 batches (32 windows of 64 characters, Adam lr 1e-2) on 90,000
# characters of Tiny Shakespeare, a 1-layer LSTM (C = 16, H = 64); perplexity on the first 5,000
# characters of the held-out last 10% (input.txt is root's alone on Gradescope; a handout holds
# train.txt, the first 90%, alone). The slice trained on ends 5,000 characters before train.txt
# does, so that the text scored continues the text trained on (the same play); in a handout the
# run scores those last 5,000 characters of train.txt instead, and says so.
# Seeds 0-9 (`make train-spread`, one thread): held-out perplexity median 7.98, worst 8.21
# (seed 7; unigram baseline 27.3); a handout's stand-in: median 7.38, worst 7.72 (unigram 28.1).
# The threshold is 14% above the worst held-out seed (22% above the stand-in's). (Before, the
# run scored characters 90,000-95,000 of the text its first 90,000 trained on: worst 7.20.)
FAST = {
    "embed_dim": 16,
    "hidden_size": 64,
    "num_layers": 1,
    "seq_len": 64,
    "batch_size": 32,
    "batches_per_epoch": 50,
    "epochs": 3,
    "lr": 1e-2,
}
THRESHOLD = 9.4
HELDOUT = ("tinyshakespeare/input.txt",)
TRAIN_CHARS, SCORED_CHARS = 90_000, 5_000


def graded_run(module, seed: int = 0, heldout: bool | None = None) -> tuple[dict, str]:
    """The graded run of ``module``'s char LM: (the run's figures, what was scored).
    ``heldout``: score the held-out part (default: wherever assignment.toml declares input.txt)."""
    from coursekit.a1_lm_basics import charlm as kit
    from coursekit.data import heldout_here

    heldout = heldout_here(SETTINGS, HELDOUT) if heldout is None else heldout
    train, held = kit.load_parts(heldout)
    end = len(train) - SCORED_CHARS  # the slice ends here; a handout scores what follows
    scored = held[:SCORED_CHARS] if heldout else train[end:]
    parts = (train[end - TRAIN_CHARS : end], scored)
    result = kit.run(module, kit.CharConfig(seed=seed, **FAST), parts=parts)
    what = (
        "5,000 held-out characters"
        if heldout
        else "the last 5,000 characters of train.txt (public data in this handout; Gradescope "
        "scores 5,000 held-out characters)"
    )
    return result, what


@pytest.mark.points(2)
@pytest.mark.number("7.7")
@pytest.mark.timeout(60)  # a few seconds here; its own limit, whatever a run's default
def test_training_beats_the_threshold(check):
    """150 steps on Tiny Shakespeare bring held-out perplexity to 9.4 or less (unigram: 27.3)"""
    result, scored = graded_run(rnn.module())
    with check("below the unigram baseline"):
        assert_at_most(
            result["perplexity"],
            result["unigram_perplexity"],
            what=f"perplexity on {scored} after training",
            why="the unigram model's",
            hint="worse than character frequencies: is the loss shifted, and does "
            "each step zero the gradients?",
        )
    with check(f"at most {THRESHOLD}"):
        assert_at_most(
            result["perplexity"],
            THRESHOLD,
            what=f"perplexity on {scored} after training",
            why="the reference reaches 8.12 (worst of seeds 0-9: 8.21); 14% margin",
        )
