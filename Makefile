# The kit's commands. On a fresh machine: `make setup` then `make test` (see README.md).
PY      := .venv/bin/python
STAMP   := .venv/.installed
A       ?=
# On the course machines the data sets sit beside the repo; elsewhere the user cache is used.
export COURSEKIT_DATA_DIR ?= $(wildcard $(abspath ../shared/data))
IMPL    ?= template
ASSIGN  := $(if $(A),--assignment $(A),)

.PHONY: setup test data hardening-all grade grade-reference lint format templates templates-check validate mutants selftest redteam a1-full translate translate-all finetune finetune-full finetune-scratch finetune-imdb mask-fill mlm-head bench so-spread train-spread mutation gradescope-check lock clean

setup: $(STAMP)

# Everything is pinned: direct dependencies in pyproject.toml, the rest in constraints.txt.
# torch comes first, from PyTorch's CPU wheel index (as the Gradescope setup.sh does): from the
# default index the same version pulls several GB of CUDA. A mirror or a folder of wheels can
# stand in: `make setup TORCH_INDEX=file:///path/to/simple`. An index that cannot be reached is
# skipped at once (--retries 0), and pip's own configuration is used as well.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) --retries 0 --extra-index-url $(TORCH_INDEX) torch
	$(PIP) -e ".[dev,transformers,plots]"
	touch $(STAMP)

# The kit's own checks: lint, templates in step with reference/, then the engine's test suite
# (plugin, schema, isolation with bad submissions, validate and mutants of every assignment).
test: setup lint templates-check selftest

# On both cores (pytest-xdist; see grader/tests/conftest.py for how tests are spread).
selftest: setup
	$(PY) -m pytest grader/tests -q --durations=12 -n 2 --dist loadfile --no-loadscope-reorder

# Fetch what is missing and check every data file (md5) ahead of time: COURSEKIT_DATA_DIR, else
# ~/.cache/coursekit/data. Grading never downloads; it stops with this command when data is missing.
data: setup
	$(PY) -m coursekit.data

# The red-team corpus alone (part of selftest): grader/tests/redteam/*.toml.
redteam: setup
	$(PY) -m pytest grader/tests/test_redteam.py -q -rs

# The property over the whole mutant catalogue of assignment 1 (make test samples three mutants):
# an attack that leaves a wrong submission's outputs unchanged never raises its score.
hardening-all: setup
	KIT_MUTANT_PROPERTY=all $(PY) -m pytest grader/tests/test_hardening.py -q -k never_raises

# Grade the student's working copy (student_template/, filled in) with the public tests.
grade: setup
	$(PY) -m grader grade $(ASSIGN) --impl $(IMPL)

grade-reference: setup
	$(PY) -m grader grade $(ASSIGN) --impl reference --hidden

lint: setup
	$(PY) -m ruff check grader coursekit reference tests bench
	$(PY) -m ruff format --check grader coursekit reference tests bench

format: setup
	$(PY) -m ruff format grader coursekit reference tests bench
	$(PY) -m ruff check --fix grader coursekit reference tests bench

templates: setup
	$(PY) -m grader templates

templates-check: setup
	$(PY) -m grader templates --check

validate: setup
	$(PY) -m grader validate $(ASSIGN)

# Every catalogued mutant on every test of the files it targets: its `breaks` must be complete
# (run it after editing a catalogue). `make test` grades each on its named tests and a guard.
mutants: setup
	$(PY) -m grader mutants --exact $(ASSIGN)

# Full-size runs of assignment 1's training deliverables (figures in the README): RUN=bigram
# (WikiText-2 perplexity), charlm (Tiny Shakespeare: perplexity, passages, samples, loss PNG) or
# dan (IMDB accuracy); all three when RUN is not given. Reports go to out/a1/.
RUN ?= bigram charlm dan
a1-full: setup
	for r in $(RUN); do $(PY) -m coursekit.a1_lm_basics.fullsize $$r --impl $(IMPL) || exit 1; done

# Full-size Multi30k de->en runs of assignment 2 (figures in reference/a2_seq2seq/README.md):
# M=transformer, seq2seq or seq2seq-attn; TF=1 trains Seq2Seq with teacher forcing instead.
# One thread: on two cores torch's default oversubscribes and runs several times slower.
M  ?= transformer
TF ?=
translate: setup
	mkdir -p out/a2
	$(PY) -m coursekit.a2_seq2seq.fullsize --impl $(IMPL) --model $(M) --threads 1 \
		$(if $(TF),--teacher-forcing,) --out out/a2/$(M)$(if $(TF),-tf,).json

translate-all: setup
	for m in transformer seq2seq seq2seq-attn; do $(MAKE) --no-print-directory translate M=$$m || exit 1; done

# Full-size fine-tuning on SST-2 (assignment 3). `finetune` writes the artifact the accuracy
# check grades (IMPL=reference writes the reference's; by default your student_template/).
FT_STEPS ?= 4000
finetune: setup
	HF_HUB_OFFLINE=1 $(PY) -m coursekit.a3_attention_bert.fullsize --impl $(IMPL) --recipe lora --steps $(FT_STEPS)

# Full fine-tuning (every weight, lr 1e-4, bfloat16 autocast): the handout's 90% target.
finetune-full: setup
	HF_HUB_OFFLINE=1 $(PY) -m coursekit.a3_attention_bert.fullsize --impl $(IMPL) --recipe full --bf16 --steps $(FT_STEPS)

finetune-scratch: setup
	HF_HUB_OFFLINE=1 $(PY) -m coursekit.a3_attention_bert.fullsize --impl $(IMPL) --recipe scratch --bf16 --steps $(FT_STEPS)

# LoRA on the IMDB subset (handout H2.3): the same code and recipe on imdb small_train (2,000
# reviews cut to 256 tokens, batches of 16, bfloat16 where fast; ~10 min on 2 cores), scored on
# small_test (1,000). Writes artifacts/imdb_classifier.safetensors, which test 4.9 grades.
finetune-imdb: setup
	HF_HUB_OFFLINE=1 $(PY) -m coursekit.a3_attention_bert.fullsize --impl $(IMPL) --task imdb --recipe lora

# [MASK] completion (assignment 3) with bert-base-uncased where it can be loaded, else (offline)
# the kit's MiniLM-L6 masked-LM head from coursekit/a3_attention_bert/artifacts/ (weak; see the README).
PROMPT ?= the capital of france is
mask-fill: setup
	$(PY) -m coursekit.a3_attention_bert.mask_fill --impl $(IMPL) "$(PROMPT)"

# Retrain that head (frozen MiniLM-L6, one thread, a few minutes) and rewrite the artifact;
# prints top-1/top-5 on held-out WikiText-2 against the unigram baseline (out/a3/mlm_head_report.json).
mlm-head: setup
	HF_HUB_OFFLINE=1 $(PY) -m coursekit.a3_attention_bert.mlm_head train

# Speed, measured as ratios against baselines; writes bench/results.md (quoted in the README).
bench: setup
	HF_HUB_OFFLINE=1 $(PY) bench/run.py $(BENCH)

# The spread of the Stack Overflow Trainer test's accuracy over valid splits and Trainer seeds
# (the figures quoted in tests/a3_attention_bert/test_stackoverflow.py); RUNS per kind.
RUNS ?= 40
so-spread: setup
	HF_HUB_OFFLINE=1 $(PY) bench/so_spread.py --runs $(RUNS)

# Each training test's figure over seeds 0..SEEDS-1 with the reference, against its threshold
# (the margins table in the README).
SEEDS ?= 10
train-spread: setup
	HF_HUB_OFFLINE=1 $(PY) bench/train_spread.py --seeds $(SEEDS)

# Mutation score of one assignment's graded suite (mutmut over reference/$(A)/*.py, each mutant
# against the tests that call the mutated function): out/mutation/$(A).md lists the survivors.
# Installs the `mutation` extra on demand; not part of `make test`. SKIP_SLOW=1 leaves out @slow.
# The Gradescope flow inside the default container's limits (768 MB for the whole process tree,
# half a CPU): score, time, peak memory, OOM kills. Needs root (a cgroup and a student user).
# COLD=1 drops the page cache first, as in a fresh container.
gradescope-check: setup
	@test -n "$(A)" || { echo "usage: make gradescope-check A=a1_lm_basics [IMPL=template]"; exit 2; }
	$(PY) bench/gradescope_check.py $(A) --impl $(if $(filter command line,$(origin IMPL)),$(IMPL),reference) $(if $(COLD),--cold,)

mutation: setup
	@test -n "$(A)" || { echo "usage: make mutation A=a1_lm_basics"; exit 2; }
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[mutation]'
	HF_HUB_OFFLINE=1 $(PY) bench/mutation.py $(A) $(if $(SKIP_SLOW),--skip-slow,)

# Re-pin every transitive dependency after changing pyproject.toml.
lock: setup
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==.*/torch==2.13.0/' > constraints.txt

clean:
	rm -rf .venv *.egg-info .pytest_cache .hypothesis
