"""Notebook submissions: definitions move into the modules by name (or by cell tag)."""

import nbformat

from grader import course
from grader.controller import grading
from grader.intake import notebook, submission

A = "a1_lm_basics"
TEMPLATE = course.TEMPLATE / A


def reference_function(name: str) -> str:
    import ast

    source = (course.REFERENCE / A / "softmax.py").read_text()
    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == name)
    return ast.get_source_segment(source, node)


def write_notebook(path, cells, tags=None):
    nb = nbformat.v4.new_notebook()
    for i, text in enumerate(cells):
        cell = nbformat.v4.new_code_cell(text)
        if tags and tags[i]:
            cell.metadata["tags"] = tags[i]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_definitions_move_into_modules_and_missing_ones_are_named(tmp_path):
    nb = write_notebook(
        tmp_path / "hw.ipynb",
        [
            "%matplotlib inline\nimport torch\nfrom torch import Tensor",
            "SHIFT = True\n\n\ndef _row_max(x, dim):\n    return x.amax(dim=dim, keepdim=True)",
            reference_function("softmax").replace(
                "x - x.amax(dim=dim, keepdim=True)", "x - _row_max(x, dim)"
            ),
            "def cross_entropy(logits, targets)\n    return 0",  # a syntax error
            "print('exploring')  # not a definition: never runs in grading",
        ],
    )
    extracted = notebook.extract(nb, TEMPLATE)
    assert extracted.defined == ["softmax"]
    # Every other deliverable of the assignment (other modules too) is named as missing.
    assert {"cross_entropy", "cross_entropy_backward"} <= set(extracted.missing)
    assert "softmax" not in extracted.missing
    assert any("Cell 4 has a syntax error" in p for p in extracted.problems)
    assert "print('exploring')" not in extracted.modules["softmax.py"]
    g = _grade(tmp_path, nb)
    by_name = {r.nodeid.rsplit("::", 1)[1]: r for r in g.results.values()}
    assert by_name["test_softmax_rows"].status == "passed", by_name["test_softmax_rows"].output
    assert by_name["test_softmax_any_shape_and_dim"].status == "passed"
    assert "NotImplementedError" in by_name["test_cross_entropy_values"].output


def test_tagged_cells_only_when_any_cell_is_tagged(tmp_path):
    nb = write_notebook(
        tmp_path / "hw.ipynb",
        ["import torch", reference_function("softmax"), reference_function("cross_entropy")],
        tags=[["deliverable"], None, ["deliverable"]],
    )
    extracted = notebook.extract(nb, TEMPLATE)
    assert extracted.defined == ["cross_entropy"]


def test_an_unreadable_notebook_is_reported_not_crashed(tmp_path):
    bad = tmp_path / "hw.ipynb"
    bad.write_text("{not json")
    extracted = notebook.extract(bad, TEMPLATE)
    assert extracted.modules == {} and "could not be read as a notebook" in extracted.problems[0]


def _grade(tmp_path, nb):
    sub = tmp_path / "submission"
    sub.mkdir(exist_ok=True)
    (sub / nb.name).write_bytes(nb.read_bytes())
    placed = submission.overlay(sub, TEMPLATE, tmp_path / "tree" / A)
    assert "hw.ipynb: softmax" in placed.report()
    return grading.grade(A, tmp_path / "tree", files={"test_softmax.py"})
