"""The template generator: stubs keep signature, docstring and TODO, and raise."""

import textwrap

import pytest

from grader.commands import templates

REFERENCE = textwrap.dedent(
    '''
    import torch

    LIMIT = 3


    class Model:
        def forward(self, x):
            """Docstring with shapes: x (B, T)."""
            # BEGIN SOLUTION
            # TODO: double x.
            #       Use plain multiplication.
            y = x * 2
            return y
            # END SOLUTION


    def helper(x):
        """Kept docstring."""
        # BEGIN SOLUTION
        return x
        # END SOLUTION
    '''
)


def test_stub_keeps_signature_docstring_and_todo_and_raises():
    stub = templates.stub_source(REFERENCE)
    assert "def forward(self, x):" in stub and "Docstring with shapes: x (B, T)." in stub
    assert "# TODO: double x.\n        #       Use plain multiplication.\n" in stub
    assert 'raise NotImplementedError("Model.forward: fill in the TODO above")' in stub
    assert 'raise NotImplementedError("helper: fill in the TODO above")' in stub
    assert "y = x * 2" not in stub and "return x" not in stub
    assert "import torch" in stub and "LIMIT = 3" in stub


def test_stub_functions_raise_not_implemented():
    namespace: dict = {}
    exec(templates.stub_source(REFERENCE.replace("import torch", "")), namespace)
    with pytest.raises(NotImplementedError, match="Model.forward"):
        namespace["Model"]().forward(1)


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "without END"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "without BEGIN"),
        (
            "def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION\n",
            "nested",
        ),
    ],
)
def test_malformed_markers_are_reported_with_their_line(source, message):
    with pytest.raises(templates.MarkerError, match=message):
        templates.stub_source(source, "f.py")


def test_check_reports_drift(tmp_path):
    reference = tmp_path / "reference" / "pkg"
    reference.mkdir(parents=True)
    (reference / "m.py").write_text(REFERENCE)
    template = tmp_path / "student_template"
    assert templates.sync(check=False, reference=reference.parent, template=template).problems
    assert templates.sync(check=True, reference=reference.parent, template=template).problems == []
    (template / "pkg" / "m.py").write_text("edited by hand\n")
    (template / "pkg" / "extra.py").write_text("\n")
    problems = templates.sync(check=True, reference=reference.parent, template=template).problems
    assert any("extra.py" in p for p in problems)
    assert any("edited by hand" in p for p in problems)


def test_regenerating_keeps_student_work(tmp_path):
    """A file changed since it was generated, a student's own file and trained artifacts survive
    `grader templates`; untouched files follow reference/, and a file reference/ dropped goes."""
    reference = tmp_path / "reference" / "pkg"
    reference.mkdir(parents=True)
    for name in ("mine.py", "theirs.py", "dropped.py"):
        (reference / name).write_text(REFERENCE)
    template = tmp_path / "student_template"
    templates.sync(check=False, reference=reference.parent, template=template)
    work = template / "pkg" / "mine.py"
    work.write_text("def double(x):\n    return x + x  # the student's solution\n")
    own = template / "pkg" / "notes.md"
    own.write_text("my notes\n")
    artifact = template / "pkg" / "artifacts" / "model.safetensors"
    artifact.parent.mkdir()
    artifact.write_bytes(b"trained weights")
    for name in ("mine.py", "theirs.py"):  # the instructor changes the handout text
        (reference / name).write_text(REFERENCE.replace("Docstring", "Better docstring"))
    (reference / "dropped.py").unlink()

    done = templates.sync(check=False, reference=reference.parent, template=template)

    assert done.kept == ["pkg/mine.py"]
    assert "the student's solution" in work.read_text()
    assert own.read_text() == "my notes\n" and artifact.read_bytes() == b"trained weights"
    assert "Better docstring" in (template / "pkg" / "theirs.py").read_text()
    assert not (template / "pkg" / "dropped.py").exists()
    # and with force the stub replaces the student's file (still never the other two)
    templates.sync(check=False, reference=reference.parent, template=template, force=True)
    assert "Better docstring" in work.read_text()
    assert own.exists() and artifact.exists()


def test_committed_templates_are_generated_from_reference():
    assert templates.sync(check=True).problems == []
