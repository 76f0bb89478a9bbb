"""The kit's masked-LM head (``coursekit/a3_attention_bert/artifacts/minilm_mlm_head.safetensors``) and the offline
[MASK] completion demo that uses it (``make mask-fill``)."""

import os
import re
import subprocess
import sys

import pytest

from coursekit.a3_attention_bert import finetune as a3_finetune
from coursekit.a3_attention_bert import mlm_head as a3_mlm_head
from grader.course import KIT_ROOT

HELDOUT_MASKED = 400  # a few hundred held-out masked tokens: about 3 s of MiniLM's first layers


@pytest.fixture(scope="module")
def meta():
    return a3_mlm_head.read_metadata()


def test_artifact_is_small_and_names_its_base_model(meta):
    size = a3_mlm_head.ARTIFACT.stat().st_size
    assert size < 1_000_000, f"the shipped head is {size:,} bytes; it should stay under 1 MB"
    assert meta["base_model"] == a3_finetune.DEFAULT_MODEL, meta
    assert meta["train_mask_embedding"] == "True" and int(meta["layers"]) >= 1, meta
    for key in ("steps", "seed", "top1", "top5", "unigram_top1", "unigram_top5", "unigram_ids"):
        assert key in meta, f"metadata lacks {key!r}: {sorted(meta)}"


def test_head_beats_the_unigram_baseline_on_heldout_text(meta):
    """On masked tokens of ``wiki.test.tokens`` (disjoint from the training text), the shipped head
    ranks the right token first more often than always guessing the training text's most frequent
    token, by at least half the margin the artifact records on 5,000 tokens (a head loaded without
    its [MASK] row, or not at all, is within a point of the baseline)."""
    model, tokenizer = a3_mlm_head.load_head()
    ids = a3_mlm_head.unigram_ids(meta)
    got = a3_mlm_head.evaluate(model, tokenizer, ids, n_masked=HELDOUT_MASKED)
    assert got["heldout_masked"] == HELDOUT_MASKED
    margin = (float(meta["top1"]) - float(meta["unigram_top1"])) / 2
    assert got["top1"] > got["unigram_top1"] + margin, (
        f"top-1 {got['top1']:.3f} on {HELDOUT_MASKED} held-out masked tokens is not {margin:.3f} "
        f"above the unigram baseline {got['unigram_top1']:.3f} (the artifact records "
        f"{float(meta['top1']):.3f} against {float(meta['unigram_top1']):.3f}): the artifact or "
        "load_head is broken (is the [MASK] row loaded?); retrain with `make mlm-head`"
    )
    assert got["top5"] > got["unigram_top5"], got


def test_mask_fill_demo_completes_a_prompt_offline():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    prompt = "the capital of france is"
    proc = subprocess.run(
        [sys.executable, "-m", "coursekit.a3_attention_bert.mask_fill", prompt],
        capture_output=True,
        text=True,
        env=env,
        cwd=KIT_ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert "minilm-head" in proc.stderr, f"it should say it uses the kit's head:\n{proc.stderr}"
    match = re.fullmatch(rf"'{prompt}' -> '(.*)'\n", proc.stdout)
    assert match, f"expected one completion line, got:\n{proc.stdout}"
    completion = match.group(1)
    assert completion.startswith(prompt) and len(completion.split()) > len(prompt.split()), (
        f"the completion {completion!r} does not continue the prompt {prompt!r}"
    )
