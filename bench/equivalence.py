"""Probe the mutmut survivors called equivalent: run each one beside the reference on many inputs
inside the contract and report whether any output differs.

A survivor is equivalent only if no input in the contract tells it apart; reading the diff is not
enough (``bench/mutation-survivors.md`` lists three that looked equivalent and were not). This
reads ``out/mutation/<a>.survivors.json`` (written by ``make mutation A=<a>``), applies each survivor in a
solution region to a copy of the reference module, and calls the probe of its function on seeded
inputs drawn across the contract's shapes and dtypes, on both versions. It prints, per survivor,
``same on N inputs`` or the first difference; a raised exception must match in type.

    python bench/equivalence.py a1_lm_basics [a2_seq2seq ...]

Devices: this machine has no accelerator, so a dropped ``device=`` cannot be told apart here; such
survivors are reported as "cpu only" rather than equivalent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent


def survivors(assignment: str) -> Iterator[dict]:
    """Each survivor of the last mutmut run in a solution region (``bench/mutation.py`` writes
    them as data): file, line, key, and the lines removed and added, stripped."""
    path = ROOT / "out" / "mutation" / f"{assignment}.survivors.json"
    yield from (v for v in json.loads(path.read_text()) if not v["given"])


def load(assignment: str, files: dict[str, str], name: str) -> ModuleType:
    """The assignment's module ``name`` from sources ``files`` (file name -> text), imported as a
    package of its own so that the reference and a mutant live side by side."""
    folder = Path(tempfile.mkdtemp(prefix="equiv-"))
    package = f"equiv_{abs(hash(tuple(sorted(files.items()))))}"
    (folder / package).mkdir()
    for file, text in files.items():
        (folder / package / file).write_text(text.replace(f"{assignment}.", f"{package}."))
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(f"{package}.{name}")
    finally:
        sys.path.remove(str(folder))


def mutate(source: str, line: int, removed: list[str], added: list[str]) -> str:
    """``source`` with the survivor's change: one line edited in place, or the removed lines
    (whole, from ``line`` on) replaced by the added ones at the first one's indentation."""
    lines = source.splitlines(keepends=True)
    span = lines[line - 1 : line - 1 + len(removed)]
    if len(span) < len(removed) or any(r not in t for r, t in zip(removed, span, strict=True)):
        raise ValueError(f"lines from {line} do not read {removed!r}")
    if len(removed) == 1:
        new = [span[0].replace(removed[0], " ".join(added), 1)]
    else:
        indent = span[0][: len(span[0]) - len(span[0].lstrip())]
        new = [f"{indent}{a}\n" for a in added]
    return "".join(lines[: line - 1] + new + lines[line - 1 + len(removed) :])


# --------------------------------------------------------------------------- probes
# Each probe takes a module and a seed and returns what the contract lets a caller observe.


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dtype(seed: int) -> torch.dtype:
    return (torch.float32, torch.float64)[seed % 2]


def _observe(fn: Callable[[], Any]) -> Any:
    """The result, or the type of the exception raised (messages are for people)."""
    try:
        return fn()
    except Exception as exc:  # a probe compares behaviours, an exception is one
        return ("raised", type(exc).__name__)


def _with_grads(model: torch.nn.Module, out: torch.Tensor) -> dict:
    out.sum().backward()
    return {"out": out.detach(), **{n: p.grad for n, p in model.named_parameters()}}


def p_averaged_context(m, seed):
    g = _g(seed)
    B, T, C = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(3))
    return m.averaged_context(torch.randn(B, T, C, generator=g, dtype=_dtype(seed)))


def p_context_lm(m, seed):
    torch.manual_seed(seed)
    model = m.AveragedContextLM(7, 4).double()
    idx = torch.randint(0, 7, (2, 5), generator=_g(seed))
    return _with_grads(model, model(idx))


def p_masked_mean(m, seed):
    g = _g(seed)
    B, T, C = 3, 5, 4
    mask = torch.rand(B, T, generator=g) > 0.4
    mask[:, 0] = True  # each row has a real token (the contract)
    return m.masked_mean(torch.randn(B, T, C, generator=g, dtype=_dtype(seed)), mask)


def p_dan(m, seed):
    torch.manual_seed(seed)
    pad = seed % 3
    model = m.DAN(9, 4, 5, 3, pad_id=pad).double()
    with torch.no_grad():  # every weight random (an untouched padding row included)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=_g(seed + 1), dtype=p.dtype))
    idx = torch.randint(0, 9, (3, 6), generator=_g(seed))
    idx[:, 0] = (pad + 1) % 9
    return _with_grads(model, model(idx))


def p_numerical_gradient(m, seed):
    x = torch.randn(3, generator=_g(seed), dtype=(torch.float32, torch.float64)[seed % 2])
    return _observe(lambda: m.numerical_gradient(lambda z: (z**2).sum(), x))


def _network_case(seed):
    g = _g(seed)
    B, D, H, V = 4, 3, 5, 6
    return [
        torch.randn(B, D, generator=g, dtype=torch.float64),
        torch.randint(0, V, (B,), generator=g),
        *(torch.randn(*s, generator=g, dtype=torch.float64) for s in ((D, H), (H,), (H, V), (V,))),
    ]


def p_network_forward(m, seed):
    loss, cache = m.network_forward(*_network_case(seed))
    return loss, m.network_backward(cache)


def p_cross_entropy(m, seed):
    g = _g(seed)
    logits = torch.randn(4, 6, generator=g, dtype=_dtype(seed)) * 50
    targets = torch.randint(0, 6, (4,), generator=g)
    return m.cross_entropy(logits, targets), m.cross_entropy_backward(logits, targets)


def p_bptt(m, seed):
    g = _g(seed)
    B, T, D, H, V = 2, 4, 3, 5, 6
    f = torch.float64
    x, h0 = torch.randn(B, T, D, generator=g, dtype=f), torch.randn(B, H, generator=g, dtype=f)
    y = torch.randint(0, V, (B, T), generator=g)
    U, W, Vw = (torch.randn(*s, generator=g, dtype=f) for s in ((H, D), (H, H), (V, H)))
    b, c = torch.randn(H, generator=g, dtype=f), torch.randn(V, generator=g, dtype=f)
    loss, cache = m.rnn_forward(x, y, h0, U, W, Vw, b, c)
    return loss, m.rnn_backward(cache)


def p_lstm(m, seed):
    torch.manual_seed(seed)
    model = m.LSTM(3, 4).double()
    T = 1 + seed % 4  # T >= 1: the contract's sequences are not empty
    x = torch.randn(2, T, 3, generator=_g(seed), dtype=torch.float64)
    h, c = model(x)
    return _with_grads(model, h + c)


def p_vanilla_rnn(m, seed):
    torch.manual_seed(seed)
    model = m.VanillaRNN(3, 4, 5).double()
    g = _g(seed)
    out, h = model(
        torch.randn(2, 3, generator=g, dtype=torch.float64),
        torch.randn(2, 4, generator=g, dtype=torch.float64),
    )
    return _with_grads(model, out.exp().sum() + h.sum())


def p_decoder(m, seed):
    torch.manual_seed(seed)
    kind, attention = ("RNN", "LSTM")[seed % 2], bool(seed % 3)
    model = m.Decoder(3, 4, 4, 6, 0.0, kind, attention).double()
    g = _g(seed)
    h = torch.randn(1, 2, 4, generator=g, dtype=torch.float64)
    hidden = (h, torch.randn(1, 2, 4, generator=g, dtype=torch.float64)) if kind == "LSTM" else h
    enc = torch.randn(2, 5, 4, generator=g, dtype=torch.float64)
    inp = torch.randint(0, 6, (2, 1), generator=g)
    missing = _observe(lambda: model(inp, hidden, None))
    out, _ = model(inp, hidden, enc)
    return missing, _with_grads(model, out)


def p_seq2seq(m, seed):
    torch.manual_seed(seed)
    enc, dec = m.Encoder(5, 3, 4, 4, 0.0, "LSTM"), m.Decoder(3, 4, 4, 6, 0.0, "LSTM", True)
    model = m.Seq2Seq(enc, dec, "cpu").double()
    g = _g(seed)
    source, target = (
        torch.randint(0, 5, (2, 4), generator=g),
        torch.randint(0, 5, (2, 3), generator=g),
    )
    bad = _observe(lambda: model(source, out_seq_len=5, target=target))
    return bad, model(source, target=target), model(source, out_seq_len=3)


def p_translator(m, seed):
    torch.manual_seed(seed)
    model = m.TransformerTranslator(
        7,
        6,
        "cpu",
        hidden_dim=8,
        num_heads=2,
        dim_feedforward=10,
        dim_k=3,
        dim_v=5,
        dim_q=3,
        max_length=6,
    ).double()
    g = _g(seed)
    inputs = torch.randint(0, 7, (2, 5), generator=g)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, 3:] = True
    return _with_grads(model, model(inputs, mask if seed % 2 else None))


def p_mha(m, seed):
    torch.manual_seed(seed)
    g = _g(seed)
    batch_first, bias = bool(seed % 2), bool(seed % 3)
    model = m.MultiHeadAttention(6, 2, bias=bias, batch_first=batch_first, dtype=torch.float64)
    q, k = (torch.randn(2, T, 6, generator=g, dtype=torch.float64) for T in (3, 4))
    if not batch_first:
        q, k = q.transpose(0, 1), k.transpose(0, 1)
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[0, 2:] = True
    kinds = [
        {},
        {"key_padding_mask": pad},
        {"attn_mask": torch.ones(3, 4, dtype=torch.bool).triu(1)},
        {"average_attn_weights": False},
        {"need_weights": False},
    ]
    out, weights = model(q, k, k, **kinds[seed % len(kinds)])
    return _with_grads(model, out), weights


def p_lora(m, seed):
    torch.manual_seed(seed)
    base = torch.nn.Linear(5, 4, dtype=torch.float64)
    layer = m.LoRALinear(base, r=1 + seed % 3, lora_alpha=2.0, lora_dropout=(0.0, 0.3)[seed % 2])
    with torch.no_grad():
        layer.lora_B.weight.normal_(generator=_g(seed))
    x = torch.randn(2, 3, 5, generator=_g(seed + 1), dtype=torch.float64)
    torch.manual_seed(seed)
    trained = _with_grads(layer, layer(x))
    layer.eval()
    merged = layer.delta_weight().detach()
    layer.merge()
    after = layer(x).detach(), layer.base.weight.detach().clone()
    layer.unmerge()
    return trained, merged, after, layer.base.weight.detach()


def p_inject_lora(m, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential()
    model.add_module("query", torch.nn.Linear(4, 4))
    model.add_module("value", torch.nn.Linear(4, 4))
    model.add_module("dense", torch.nn.Linear(4, 4))
    model.add_module("classifier", torch.nn.Linear(4, 2))
    targets = (("query", "value"), ("dense",))[seed % 2]
    saved = (("classifier",), ())[seed % 2]
    m.inject_lora(model, target_modules=targets, r=2, lora_alpha=4.0, modules_to_save=saved)
    names = sorted((n, p.requires_grad) for n, p in model.named_parameters())
    return names, m.count_parameters(model)


def p_choose(m, seed):
    logits = torch.randn(11, generator=_g(seed)) * 3
    strategy = ("greedy", "top_k", "beam")[seed % 3]
    return _observe(
        lambda: m.choose(logits, strategy=strategy, k=1 + seed % 5, generator=_g(seed + 1))
    )


_TOKENIZER: list = []


def _tokenizer():
    if not _TOKENIZER:
        from transformers import AutoTokenizer

        from coursekit.a3_attention_bert.finetune import model_path

        _TOKENIZER.append(AutoTokenizer.from_pretrained(model_path()))
    return _TOKENIZER[0]


SENTENCES = [
    "a gripping film",
    "dull and far too long, with no end in sight",
    "i loved it",
    "the plot makes no sense",
    "an instant classic",
    "naïve, but café scenes shine",
]


def p_tokenize_dataset(m, seed):
    from datasets import Dataset

    rows = SENTENCES[seed % 3 :] + SENTENCES[: seed % 3]
    ds = Dataset.from_dict({"text": rows, "label": [i % 2 for i in range(len(rows))]})
    out = m.tokenize_dataset(ds, _tokenizer(), max_length=4 + seed % 9, text_column="text")
    return {c: [list(v) if isinstance(v, list) else v for v in out[c]] for c in out.column_names}


def p_save_artifact(m, seed):
    """Within the contract: one LoRA scaling per model, an artifacts folder that exists."""
    lora = m.__name__.rsplit(".", 1)[0] + ".lora"
    torch.manual_seed(seed)
    model = torch.nn.Sequential()
    model.add_module("query", torch.nn.Linear(4, 4))
    model.add_module("classifier", torch.nn.Linear(4, 2))
    if seed % 2:
        sys.modules[lora].inject_lora(
            model, ("query",), r=2, lora_alpha=4.0, modules_to_save=("classifier",)
        )
    folder = Path(tempfile.mkdtemp(prefix="equiv-artifact-"))
    path = m.save_artifact(model, folder / "a.safetensors", base_model="b", num_labels=2)
    return m.load_artifact(path)


def p_complete(m, seed):
    from coursekit.a3_attention_bert.models import bert

    tok = _tokenizer()
    torch.manual_seed(seed)
    model = bert(
        "masked_lm",
        vocab_size=tok.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        train=False,
    )
    strategy = ("greedy", "top_k")[seed % 2]
    return m.complete(model, tok, SENTENCES[seed % 6], 1 + seed % 3, strategy=strategy, seed=seed)


def p_load_stackoverflow(m, seed):
    root = Path(tempfile.mkdtemp(prefix="equiv-so-"))
    for split in ("train", "test"):
        for t, tag in enumerate(m.TAGS):
            (root / split / tag).mkdir(parents=True)
            for i in range(5):
                text = f"{SENTENCES[(i + t) % 6]} — {tag} ünïcode {i}"
                (root / split / tag / f"{i}.txt").write_text(text, encoding="utf-8")
    d = m.load_stackoverflow(root, validation_fraction=0.2, seed=seed)
    return {k: (list(v["text"]), list(v["label"])) for k, v in d.items()}


def p_build_trainer(m, seed):
    """What the docstring states: the arguments, and the metric on the validation split."""
    from datasets import Dataset, DatasetDict

    from coursekit.a3_attention_bert.models import bert

    tok = _tokenizer()
    torch.manual_seed(seed)
    model = bert(
        "sequence_classification",
        vocab_size=tok.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=4,
    )
    rows = {"text": SENTENCES * 2, "label": [i % 4 for i in range(12)]}
    split = Dataset.from_dict(rows).map(
        lambda b: tok(b["text"], truncation=True, padding="max_length", max_length=12),
        batched=True,
        remove_columns=["text"],
    )
    trainer = m.build_trainer(
        model,
        DatasetDict(train=split, validation=split),
        tempfile.mkdtemp(prefix="equiv-trainer-"),
        epochs=1.0,
        lr=1e-3,
        batch_size=4,
        seed=seed,
    )
    a = trainer.args
    stated = (
        a.num_train_epochs,
        a.learning_rate,
        a.per_device_train_batch_size,
        a.seed,
        str(a.eval_strategy),
        str(a.save_strategy),
        a.use_cpu,
        list(a.report_to or []),
    )
    logits = torch.randn(7, 4, generator=_g(seed)).numpy()
    labels = torch.randint(0, 4, (7,), generator=_g(seed + 1)).numpy()
    metric = trainer.compute_metrics((logits, labels))
    return stated, metric, round(trainer.evaluate()["eval_accuracy"], 6)


PROBES: dict[tuple[str, str], Callable] = {
    ("finetune.py", "tokenize_dataset"): p_tokenize_dataset,
    ("finetune.py", "save_artifact"): p_save_artifact,
    ("mask_fill.py", "complete"): p_complete,
    ("stackoverflow.py", "load_stackoverflow"): p_load_stackoverflow,
    ("stackoverflow.py", "build_trainer"): p_build_trainer,
    ("mha.py", "MultiHeadAttention"): p_mha,
    ("mha.py", "_apply_mask"): p_mha,
    ("lora.py", "LoRALinear"): p_lora,
    ("lora.py", "inject_lora"): p_inject_lora,
    ("lora.py", "count_parameters"): p_inject_lora,
    ("mask_fill.py", "choose"): p_choose,
    ("context_lm.py", "averaged_context"): p_averaged_context,
    ("context_lm.py", "AveragedContextLM"): p_context_lm,
    ("dan.py", "masked_mean"): p_masked_mean,
    ("dan.py", "DAN"): p_dan,
    ("gradcheck.py", "numerical_gradient"): p_numerical_gradient,
    ("network.py", "network_forward"): p_network_forward,
    ("network.py", "network_backward"): p_network_forward,
    ("softmax.py", "cross_entropy"): p_cross_entropy,
    ("softmax.py", "cross_entropy_backward"): p_cross_entropy,
    ("bptt.py", "rnn_forward"): p_bptt,
    ("bptt.py", "rnn_backward"): p_bptt,
    ("lstm.py", "LSTM"): p_lstm,
    ("rnn.py", "VanillaRNN"): p_vanilla_rnn,
    ("seq2seq.py", "Decoder"): p_decoder,
    ("seq2seq.py", "Seq2Seq"): p_seq2seq,
    ("transformer.py", "TransformerTranslator"): p_translator,
}


def _probe_for(entry: dict) -> Callable | None:
    """The probe of the function or class the mutant key names (``x_f__mutmut_3``,
    ``xǁClassǁmethod__mutmut_3``)."""
    name = entry["key"].rsplit(".", 1)[-1]
    owner = name.split("ǁ")[1] if "ǁ" in name else re.sub(r"^x_|__mutmut_\d+$", "", name)
    return PROBES.get((entry["file"], owner))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def judge(assignment: str, seeds: int) -> list[str]:
    folder = ROOT / "reference" / assignment
    sources = {p.name: p.read_text() for p in folder.glob("*.py")}
    reference: dict[str, ModuleType] = {}
    rows = []
    for entry in survivors(assignment):
        removed, added = " / ".join(entry["removed"]), " / ".join(entry["added"]) or "(deleted)"
        where = f"{entry['file']}:{entry['line']} `{removed}` -> `{added}`"
        dropped = re.search(r"\bdevice=", removed) and not re.search(r"\bdevice=(?!None)", added)
        if dropped:
            rows.append(f"cpu only  {where}: a device cannot be told apart without an accelerator")
            continue
        probe = _probe_for(entry)
        if probe is None:
            rows.append(f"no probe  {where}")
            continue
        module = entry["file"].removesuffix(".py")
        if module not in reference:
            reference[module] = load(assignment, sources, module)
        text = mutate(sources[entry["file"]], entry["line"], entry["removed"], entry["added"])
        try:
            mutant = load(assignment, {**sources, entry["file"]: text}, module)
        except SyntaxError:  # a deletion that leaves no statement, say
            rows.append(f"by hand   {where}: not valid Python on its own line")
            continue
        for seed in range(seeds):
            a, b = (
                _observe(lambda m=m, p=probe, s=seed: p(m, s)) for m in (reference[module], mutant)
            )
            if not same(a, b):
                rows.append(f"DIFFERS   {where}: seed {seed}")
                break
        else:
            rows.append(f"same      {where}: on {seeds} inputs ({probe.__name__})")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("assignments", nargs="+")
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--out", help="also write the verdicts to this file")
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")  # LogSoftmax(dim=None) warns, as the reference would not
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    lines = []
    with tempfile.TemporaryDirectory(prefix="equivalence-") as scratch:
        tempfile.tempdir = scratch  # every module copy and probe folder, removed with it
        try:
            for a in args.assignments:
                lines += [f"## {a}", *judge(a, args.seeds)]
        finally:
            tempfile.tempdir = None
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
