"""results.json: the shipped JSON Schema accepts what the spec allows and rejects the rest."""

import json

import jsonschema
import pytest

from grader.controller import results_json
from grader.records import TestMeta, TestResult, validated_result

METAS = [
    TestMeta(
        "t.py::a", "a", 2.0, number="1.1", tags=("x",), leaderboard={"name": "acc", "order": "desc"}
    ),
    TestMeta("t.py::b", "b", 1.0, visibility="hidden"),
]


def test_built_results_follow_the_spec(tmp_path):
    results = {
        "t.py::a": TestResult(
            "t.py::a", 1.0, "failed", "half", leaderboard=[{"name": "acc", "value": 0.9}]
        ),
        "t.py::b": TestResult("t.py::b", 1.0, "passed"),
    }
    data = results_json.build(METAS, results, execution_time=3.2, output="hi")
    results_json.write(tmp_path / "results.json", data)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["score"] == 2.0
    assert written["tests"][0] == {
        "name": "a",
        "score": 1.0,
        "max_score": 2.0,
        "status": "failed",
        "output": "half",
        "visibility": "visible",
        "number": "1.1",
        "tags": ["x"],
    }
    assert written["tests"][1]["visibility"] == "hidden"
    assert written["leaderboard"] == [{"name": "acc", "value": 0.9}]


def test_a_test_without_a_result_scores_zero():
    data = results_json.build(METAS, {}, execution_time=0.0)
    assert [t["score"] for t in data["tests"]] == [0.0, 0.0]
    assert all(t["status"] == "failed" for t in data["tests"])


@pytest.mark.parametrize(
    "reported, kept",
    [(99.0, 2.0), (-3, 0.0), (float("nan"), 0.0), (float("inf"), 0.0), ("2", 0.0), (True, 0.0)],
)
def test_a_childs_score_is_held_to_the_test_range_where_it_enters(reported, kept):
    """Scores are clamped once, when a child's event becomes a result (validated_result); the
    results.json built from it carries that score and a status that agrees with it."""
    meta = METAS[0]  # worth 2 points
    result = validated_result({"score": reported, "status": "passed"}, meta)
    assert result.score == kept and result.status == ("passed" if kept == 2.0 else "failed")
    data = results_json.build([meta], {meta.nodeid: result}, execution_time=0.0)
    assert (data["tests"][0]["score"], data["tests"][0]["status"]) == (kept, result.status)


@pytest.mark.parametrize("score, status", [(99.0, "passed"), (-3.0, "failed"), (1.0, "passed")])
def test_a_result_that_never_went_through_validation_is_refused(score, status):
    meta = METAS[0]
    with pytest.raises(ValueError, match="never validated"):
        results_json.build(
            [meta], {meta.nodeid: TestResult(meta.nodeid, score, status)}, execution_time=0.0
        )


def test_huge_outputs_are_cut_below_the_gradescope_limit():
    metas = [TestMeta(f"t.py::{i}", str(i), 1.0) for i in range(400)]
    results = {m.nodeid: TestResult(m.nodeid, 0.0, "failed", "x" * 10_000) for m in metas}
    data = results_json.build(metas, results, execution_time=0.0)
    assert len(json.dumps(data)) < results_json.MAX_BYTES
    results_json.validate(data)


@pytest.mark.parametrize(
    "bad",
    [
        {"tests": [{"name": "no score"}]},  # neither a top-level score nor per-test scores
        {"score": 1, "visibility": "secret"},
        {"score": 1, "tests": [{"score": 1, "status": "ok"}]},
        {"score": 1, "tests": [{"score": 1, "max_score": -1}]},
        {"score": 1, "leaderboard": [{"name": "acc"}]},
        {"score": 1, "unknown_field": 3},
        {"score": "10"},
    ],
)
def test_schema_rejects_what_gradescope_rejects(bad):
    with pytest.raises(jsonschema.ValidationError):
        results_json.validate(bad)


def test_schema_accepts_the_specs_own_example():
    example = {
        "score": 44.0,
        "execution_time": 136,
        "output": "Text relevant to the entire submission",
        "output_format": "simple_format",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "after_due_date",
        "stdout_visibility": "visible",
        "extra_data": {},
        "tests": [
            {
                "score": 2.0,
                "max_score": 2.0,
                "status": "passed",
                "name": "Your name here",
                "name_format": "text",
                "number": "1.1",
                "output": "Giant multiline string that will be placed in a <pre> tag",
                "output_format": "simple_format",
                "tags": ["tag1", "tag2"],
                "visibility": "visible",
                "extra_data": {},
            }
        ],
        "leaderboard": [
            {"name": "Accuracy", "value": 0.926},
            {"name": "Time", "value": 15.1, "order": "asc"},
            {"name": "Stars", "value": "*****"},
        ],
    }
    results_json.validate(example)
