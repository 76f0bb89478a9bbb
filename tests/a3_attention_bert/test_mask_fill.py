"""H2.2 — text completion with a masked LM, one [MASK] at a time.

No pretrained masked-LM checkpoint is available offline (the shipped MiniLM has no MLM head), so
the algorithm is graded exactly on small masked LMs the tests build (``coursekit/a3_attention_bert/models.py``:
where your code runs, with twins of the same weights here). Their predictions depend on the
position and on the tokens on both sides, so filling every mask from one forward pass, filling
right to left or reading the logits of the wrong position all give other tokens. The expected
fills come from the algorithm as the handout states it (``_oracle`` below) on the same model.
``python -m coursekit.a3_attention_bert.mask_fill`` runs your code with a real BERT where one can be loaded.
"""

from __future__ import annotations

import pytest
import torch
from compare import assert_equal, assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st
from strategies import masked_lm_prompts

from coursekit.a3_attention_bert import finetune as kit
from coursekit.a3_attention_bert.models import CONTEXT_VOCAB as V
from coursekit.a3_attention_bert.models import MASK, SPECIAL, ContextLM, CountingLM
from grader.testprocess.deliverables import build, deliverable, mutable

mf = deliverable("a3_attention_bert.mask_fill")
# The masked LMs (coursekit/a3_attention_bert/models.py) are built where your code runs, with the state of the
# twins the oracle runs here: ContextLM (vocabulary of masked_lm_prompts: [PAD], [CLS], [SEP],
# [MASK] = 0-3 and 8 words), CountingLM, and a small random BERT.


def _context_lm(seed: int):
    """(ContextLM(seed) where your code runs, its twin here)."""
    twin = ContextLM(seed)
    return build(
        "coursekit.a3_attention_bert.models.context_lm", seed, state=twin.state_dict()
    ), twin


@torch.no_grad()
def _oracle(model, ids, mask_id, *, strategy="greedy", k=5, seed=0, banned=SPECIAL):
    """The algorithm of H2.2: left to right, one forward pass per mask, each seeing earlier fills."""
    model.eval()
    ids = ids.clone()
    g = torch.Generator().manual_seed(seed)
    for p in range(len(ids)):
        if ids[p] != mask_id:
            continue
        logits = model(input_ids=ids[None], attention_mask=torch.ones_like(ids)[None]).logits
        logits = logits[0, p].clone()  # (V,)
        logits[list(banned)] = float("-inf")
        if strategy == "greedy":
            ids[p] = logits.argmax()
        else:
            top = torch.topk(logits, k)
            ids[p] = top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=g)]
    return ids


def _ids(value):
    return value.tolist() if isinstance(value, torch.Tensor) else value


HINT_ORDER = (
    "fill the masks left to right, one forward pass per mask, writing each chosen token into the "
    "ids before the next pass; read the logits at the position being filled"
)
HINT_BANNED = "set the logits of banned_ids to -inf before choosing"
HINT_TOP_K = (
    "top_k: torch.topk(logits, k) (largest first), probabilities softmax(values), one "
    "torch.multinomial(probs, 1, generator=g) per mask, with g = torch.Generator().manual_seed(seed) "
    "made once before the first mask"
)


@given(prompt=masked_lm_prompts(V), seed=st.integers(0, 50))
def _greedy_appended(prompt, seed):
    _check_greedy(prompt, seed)


@given(prompt=masked_lm_prompts(V, anywhere=True), seed=st.integers(0, 50))
def _greedy_anywhere(prompt, seed):
    _check_greedy(prompt, seed)


def _check_greedy(prompt, seed):
    model, twin = _context_lm(seed)
    ids = torch.tensor(prompt)
    got = mf.fill_masks(model, ids, MASK, strategy="greedy", banned_ids=SPECIAL)
    assert_equal(
        _ids(got),
        lambda: _oracle(twin, ids, MASK).tolist(),
        what=f"greedy fill_masks of ids {prompt} (model seed {seed}, [MASK] = {MASK})",
        hint=f"{HINT_ORDER}; greedy takes the argmax; {HINT_BANNED}",
    )


@pytest.mark.points(2)
@pytest.mark.number("3.1")
def test_greedy_fills_left_to_right(check):
    """greedy: masks filled left to right, one forward pass each, every step seeing earlier fills"""
    with check("masks appended to a prompt"):
        _greedy_appended()
    with check("masks among the prompt's words"):
        _greedy_anywhere()
    with check("input_ids left unchanged (the fills in a new tensor)"):
        model, _ = _context_lm(0)
        ids = torch.tensor([1, 5, 3, 7, 3, 2])
        before = snapshot(ids)
        mf.fill_masks(model, mutable(ids), MASK, banned_ids=SPECIAL)  # changes to ids come back
        assert_unchanged(
            ids,
            before,
            what="fill_masks's input_ids",
            hint="fill a copy (input_ids.clone()), not the caller's tensor",
        )


@given(
    prompt=masked_lm_prompts(V, anywhere=True),
    seed=st.integers(0, 50),
    k=st.integers(2, 6),
    sample_seed=st.integers(0, 2**16),
)
def _top_k(prompt, seed, k, sample_seed):
    model, twin = _context_lm(seed)
    ids = torch.tensor(prompt)
    torch.manual_seed(sample_seed + 1)  # the global generator must not be the one that decides
    got = mf.fill_masks(
        model, ids, MASK, strategy="top_k", k=k, seed=sample_seed, banned_ids=SPECIAL
    )
    assert_equal(
        _ids(got),
        lambda: _oracle(twin, ids, MASK, strategy="top_k", k=k, seed=sample_seed).tolist(),
        what=f"top-k fill_masks of ids {prompt}, k={k}, seed={sample_seed} (model seed {seed})",
        hint=HINT_TOP_K,
    )


@given(prompt=masked_lm_prompts(V, anywhere=True), seed=st.integers(0, 50))
def _top_1(prompt, seed):
    model, twin = _context_lm(seed)
    ids = torch.tensor(prompt)
    got = mf.fill_masks(model, ids, MASK, strategy="top_k", k=1, seed=0, banned_ids=SPECIAL)
    assert_equal(
        _ids(got),
        lambda: _oracle(twin, ids, MASK).tolist(),
        what=f"top-k fill_masks with k=1 of ids {prompt} (model seed {seed}): greedy's fills",
        hint="with k=1 the only candidate is the argmax",
    )


@pytest.mark.points(2)
@pytest.mark.number("3.2")
def test_top_k_sampling_is_seeded(check):
    """top-k sampling: k candidates, softmax, one seeded torch.multinomial draw per mask"""
    with check("k from 2 to 6, seeded"):
        _top_k()
    with check("k=1 gives the greedy fills"):
        _top_1()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(kit.model_path())  # BERT's uncased WordPiece vocabulary


def _remote_tokenizer():
    """The same tokenizer where your code runs (a fresh one in each test)."""
    return build("transformers.AutoTokenizer.from_pretrained", kit.model_path())


TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
    "hidden_dropout_prob": 0.3,
    "attention_probs_dropout_prob": 0.0,
}


def _tiny_bert(tokenizer):
    """A small random BERT masked LM, in training mode with dropout on (as built): its twin here
    (seeded), and a second twin where your code runs (same state)."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    twin = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **TINY_BERT))
    model = build(
        "coursekit.a3_attention_bert.models.bert",
        "masked_lm",
        state=twin.state_dict(),
        vocab_size=len(tokenizer),
        **TINY_BERT,
    )
    return model, twin


def _expected_text(model, tokenizer, prompt, n, **options):
    ids = tokenizer(prompt)["input_ids"]  # [CLS] prompt [SEP]
    ids = torch.tensor([*ids[:-1], *[tokenizer.mask_token_id] * n, ids[-1]])
    filled = _oracle(
        model, ids, tokenizer.mask_token_id, banned=tokenizer.all_special_ids, **options
    )
    return tokenizer.decode(filled, skip_special_tokens=True)


HINT_COMPLETE = (
    "the ids are [CLS] prompt [MASK]*n [SEP] — the masks go before the final [SEP]; fill them with "
    "the tokenizer's special ids banned, then tokenizer.decode(ids, skip_special_tokens=True)"
)


@pytest.mark.points(2)
@pytest.mark.number("3.3")
def test_complete(check, tokenizer):
    """complete(model, tokenizer, prompt, n): the prompt and n generated tokens, as text"""
    theirs = _remote_tokenizer()
    counting = CountingLM(tokenizer)
    # The counting model's favourite word (the successor) has logit 10, the next candidates 1 and
    # 0: top-k draws take it almost surely, so they depend on the context as greedy fills do.
    top_k = {"strategy": "top_k", "k": 3}
    counting_cases = {
        "a counting model: 'one two' + 3 masks": [("one two", 3, {})],
        "a counting model past 'ten', where its favourite is a special token": [
            ("eight nine", 3, {})
        ],
        "a counting model, top_k k=3: the draws follow the context": [
            ("one two", 3, {**top_k, "seed": 0}),
            ("four", 4, {**top_k, "seed": 1}),
        ],
    }
    for label, runs in counting_cases.items():
        with check(label):
            for prompt, n, options in runs:
                model = build(
                    "coursekit.a3_attention_bert.models.counting_lm",
                    theirs,
                    state=counting.state_dict(),
                )
                got = mf.complete(model, theirs, prompt, n, **options)
                shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "greedy"
                assert_equal(
                    got,
                    lambda: _expected_text(counting, tokenizer, prompt, n, **options),  # noqa: B023
                    what=f"complete(counting model, {prompt!r}, {n}, {shown})",
                    hint=f"{HINT_COMPLETE}; {HINT_ORDER}; {HINT_BANNED}"
                    + (f"; {HINT_TOP_K}" if options else ""),
                )
    cases = [
        ("the movie was", 3, {}),
        ("i think that", 4, {}),
        ("the movie was", 3, {"strategy": "top_k", "k": 5, "seed": 7}),
        ("once upon a time", 5, {"strategy": "top_k", "k": 3, "seed": 0}),
    ]
    for prompt, n, options in cases:
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "greedy"
        with check(f"a small random BertForMaskedLM: {prompt!r} + {n} masks, {shown}"):
            model, twin = _tiny_bert(tokenizer)
            got = mf.complete(model, theirs, prompt, n, **options)
            assert_equal(
                got,
                lambda: _expected_text(twin, tokenizer, prompt, n, **options),  # noqa: B023
                what=f"complete(BertForMaskedLM, {prompt!r}, {n}, {shown})",
                hint=f"{HINT_COMPLETE}; put the model in eval mode (dropout off)"
                + (f"; {HINT_TOP_K}" if options else ""),
            )


def _draw(logits, k, seed):
    """The oracle of one top-k draw: torch.topk, softmax of its values, one seeded multinomial."""
    top = torch.topk(logits, k)
    g = torch.Generator().manual_seed(seed)
    return int(top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=g)])


@pytest.mark.points(1)
@pytest.mark.number("3.4")
def test_choose(check):
    """choose(logits): greedy's argmax, top-k draws that follow the logits, a bad strategy refused"""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(10, generator=g) * 2  # (V,)
    with check("greedy: the argmax"):
        assert_equal(
            mf.choose(logits, strategy="greedy"),
            int(logits.argmax()),
            what=f"choose(logits, strategy='greedy') for logits {logits.tolist()}",
        )
    with check("top_k: one seeded draw among the k largest"):
        for seed in range(6):
            got = mf.choose(
                logits, strategy="top_k", k=4, generator=torch.Generator().manual_seed(seed)
            )
            assert_equal(
                got,
                lambda seed=seed: _draw(logits, 4, seed),
                what=f"choose(logits, strategy='top_k', k=4, generator seeded {seed})",
                hint=HINT_TOP_K,
            )
    with check("top_k follows the logits: a candidate 30 above the others is drawn"):
        # softmax gives each other candidate about e^-30: a draw that ignores the values misses
        for favourite in (2, 7):
            peaked = logits.clone()
            peaked[favourite] = logits.max() + 30
            got = mf.choose(
                peaked, strategy="top_k", k=3, generator=torch.Generator().manual_seed(0)
            )
            assert_equal(
                got,
                favourite,
                what=f"choose(logits with token {favourite} 30 above the "
                "rest, strategy='top_k', k=3)",
                hint="the probabilities are softmax(top-k values): draw with them, not uniformly",
            )
    with check("another strategy raises ValueError naming it"):
        with pytest.raises(ValueError, match="nucleus"):
            mf.choose(logits, strategy="nucleus")
    with check("the logits are left unchanged"):
        for options in ({"strategy": "greedy"}, {"strategy": "top_k", "k": 3}):
            x = snapshot(logits)
            mf.choose(mutable(x), generator=torch.Generator().manual_seed(0), **options)
            assert_unchanged(
                x,
                logits,
                what=f"choose(logits, {options})'s logits",
                hint="work on new tensors (logits - logits.max(), not -=)",
            )
