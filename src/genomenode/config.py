"""Settings, declared once, read from the node's config file and the environment.

Each setting has a name, a type, a default and a help text (``SETTINGS``). A node's
value comes, last one winning, from the default, then ``NODE_DIR/genomenode.yaml``,
then the environment variable ``GENOMENODE_<NAME>`` (upper case). ``docs/settings.md``
documents every one of them; a test fails when one is missing there.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import pathlib
import urllib.parse
from collections.abc import Mapping
from typing import Any

import yaml

from . import setting_types as kinds
from .errors import ConfigError
from .setting_types import Secret, Setting

__all__ = [
    "CONFIG_FILENAME",
    "SETTINGS",
    "NodeConfig",
    "Secret",
    "Setting",
    "check_production_trust",
    "is_development_identity_provider",
    "load_config",
    "public_url_for",
    "resolve_config",
]

CONFIG_FILENAME = "genomenode.yaml"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "node_id", str, "", "Identifier of this node in the network, e.g. fi-node."
    ),
    Setting(
        "country", kinds.country, "", "ISO 3166-1 alpha-2 country code of the node."
    ),
    Setting(
        "db_url",
        kinds.optional_str,
        None,
        "SQLAlchemy URL of the metadata database; default: SQLite file "
        "NODE_DIR/genomenode.db. PostgreSQL: postgresql+psycopg://user@host/db.",
    ),
    Setting(
        "db_schema",
        kinds.optional_str,
        None,
        "PostgreSQL schema for this node's tables (default: the connection's).",
    ),
    Setting(
        "storage",
        kinds.optional_str,
        None,
        "Directory of the node store (datasets, staging); default NODE_DIR/store. "
        "Or s3://bucket/prefix: published datasets in an S3-compatible object "
        "store (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), "
        "staging in NODE_DIR/store.",
    ),
    Setting(
        "storage_endpoint",
        kinds.optional_str,
        None,
        "Endpoint URL of an s3:// storage's service (https://s3.example.org); "
        "default: AWS_ENDPOINT_URL, else AWS.",
    ),
    Setting(
        "storage_region",
        kinds.optional_str,
        None,
        "Region of an s3:// storage; default: AWS_REGION, else us-east-1.",
    ),
    Setting(
        "encrypt_at_rest",
        kinds.boolean,
        False,
        "Encrypt every object of the datasets' VCF Zarr (ChaCha20-Poly1305, key "
        "derived from the node's private key) when they are published.",
    ),
    Setting(
        "dask_scheduler",
        kinds.optional_str,
        None,
        "Address of a Dask distributed scheduler (tcp://host:8786) on which ingest "
        "partitions and the node's computations run; unset: in this process.",
    ),
    Setting(
        "dask_worker_wait",
        kinds.positive_float,
        30.0,
        "Seconds a step on the Dask cluster waits while the cluster has no "
        "workers, then stops with an error (the same command resumes); raise it "
        "for a cluster that starts its workers on demand.",
    ),
    Setting(
        "private_key",
        str,
        "keys/node.sec",
        "The node's Crypt4GH private key, relative to NODE_DIR or absolute.",
    ),
    Setting(
        "public_key",
        str,
        "keys/node.pub",
        "The node's Crypt4GH public key, relative to NODE_DIR or absolute.",
    ),
    Setting(
        "key_passphrase",
        kinds.secret,
        Secret(""),
        "Passphrase of the node's private key (set by environment only; empty: "
        "the key file is not passphrase-protected).",
    ),
    Setting(
        "variants_chunk_size",
        kinds.positive_int,
        10_000,
        "Variants per chunk of the genotype arrays (VCF Zarr).",
    ),
    Setting(
        "samples_chunk_size",
        kinds.positive_int,
        1_000,
        "Samples per chunk of the genotype arrays (VCF Zarr).",
    ),
    Setting(
        "worker_processes",
        kinds.non_negative_int,
        2,
        "Worker processes for ingest conversion; 0 runs in the calling process.",
    ),
    Setting(
        "scan_processes",
        kinds.non_negative_int,
        1,
        "Processes of each server process that scan one person's genotypes "
        "(per-person Beacon queries), at a lower CPU priority than the server "
        "so that other queries keep their pace; 0 scans in the request's thread.",
    ),
    Setting(
        "gene_table",
        kinds.optional_str,
        None,
        "Gene table (TSV: gene_id symbol contig start end, 0-based half-open) for "
        "Beacon geneId queries on datasets without their own genes: file; relative "
        "to NODE_DIR or absolute.",
    ),
    Setting(
        "public_url",
        kinds.url,
        "http://localhost:8080",
        "External URL the node is reached at (no trailing /api); the Beacon map "
        "and identity publish URLs under it.",
    ),
    Setting(
        "beacon_count_threshold",
        kinds.positive_int,
        5,
        "Counts of people below this are never disclosed below record granularity "
        "(reported as the threshold).",
    ),
    Setting(
        "beacon_environment",
        kinds.environment,
        "dev",
        "What the Beacon reports as its environment: dev, test or prod.",
    ),
    Setting(
        "trusted_brokers",
        kinds.trusted_issuers,
        (),
        "Passport brokers the node trusts: a list of {issuer, jku[, userinfo]} "
        "(environment: JSON). Keys come only from each jku.",
    ),
    Setting(
        "trusted_visa_issuers",
        kinds.trusted_issuers,
        (),
        "Visa issuers the node trusts besides itself: a list of {issuer, jku} "
        "(environment: JSON).",
    ),
    Setting(
        "passport_audience",
        kinds.optional_str,
        None,
        "When set, passports must name it in aud.",
    ),
    Setting(
        "registered_visa_types",
        kinds.string_list,
        ("ResearcherStatus", "AcceptedTermsAndPolicies"),
        "Visa types that make a caller registered (REGISTERED datasets).",
    ),
    Setting(
        "trusted_networks",
        kinds.trusted_networks,
        (),
        "Network aggregators the node trusts to relay queries: a list of {issuer, "
        "jku} (environment: JSON). A request's GA4GH-Network-Assertion is verified "
        "with keys from that jku only; the network never grants rights.",
    ),
    Setting(
        "require_network_assertion",
        kinds.boolean,
        False,
        "Answer Beacon queries (/api) only when a trusted network relays them with "
        "a valid GA4GH-Network-Assertion; direct queries get 401.",
    ),
    Setting(
        "network_relay_key_seconds",
        kinds.non_negative_int,
        3600,
        "Lifetime of the relay keys the node issues to its trusted networks (MAC "
        "keys replacing per-request signatures, docs/network-trust.md); 0: issue "
        "none and refuse those issued.",
    ),
    Setting(
        "audit_checkpoint_every_entries",
        kinds.non_negative_int,
        1000,
        "Sign a checkpoint of the audit log whenever an entry id reaches a multiple "
        "of this (0: never); see docs/audit.md.",
    ),
    Setting(
        "audit_checkpoint_every_seconds",
        kinds.non_negative_int,
        600,
        "Also sign one when a process writing entries has signed none for this "
        "long (0: never).",
    ),
    Setting(
        "dev_identity_provider",
        kinds.boolean,
        False,
        "Run the development identity provider under /dev-idp and trust it (demo "
        "and tests only; refused when beacon_environment is prod).",
    ),
    Setting(
        "http_max_body_bytes",
        kinds.positive_int,
        1_048_576,
        "Largest request body the node reads (bytes); a larger one gets 413 and "
        "is not read.",
    ),
    Setting(
        "http_max_json_depth",
        kinds.positive_int,
        64,
        "Deepest nesting of arrays and objects in a JSON request body (400).",
    ),
    Setting(
        "http_max_integer_digits",
        kinds.positive_int,
        100,
        "Most digits of an integer in a JSON body (400).",
    ),
    Setting(
        "http_body_timeout_seconds",
        kinds.positive_float,
        30.0,
        "Longest a client may take to send a request body (408).",
    ),
    Setting(
        "http_header_timeout_seconds",
        kinds.positive_float,
        10.0,
        "Longest a client may take to send its request line and headers (408, "
        "connection closed).",
    ),
    Setting(
        "http_max_header_bytes",
        kinds.positive_int,
        65_536,
        "Largest request line plus headers (431, connection closed).",
    ),
    Setting(
        "beacon_max_filters",
        kinds.positive_int,
        100,
        "Most filters in one Beacon request (400).",
    ),
    Setting(
        "beacon_filter_cpu_seconds",
        kinds.positive_float,
        1.0,
        "CPU time one Beacon request may spend expanding and matching its "
        "filters (ontology descendants, clinical matches) before it is refused "
        "with 400; garbage-collection pauses are the process's and not counted.",
    ),
    Setting(
        "disclosure_enabled",
        kinds.boolean,
        True,
        "Master switch of disclosure control (docs/privacy.md): query budgets, "
        "noise, rounding, the rare-allele policy and the DataSHIELD-style filters. "
        "false leaves only the security levels and beacon_count_threshold.",
    ),
    Setting(
        "disclosure_epsilon_per_query",
        kinds.positive_float,
        0.5,
        "Privacy loss (epsilon) of one released aggregate of cost 1; counts get "
        "Laplace noise of scale 1/epsilon.",
    ),
    Setting(
        "disclosure_epsilon_budget",
        kinds.positive_float,
        10.0,
        "Epsilon one caller may spend on one dataset per budget window; then 429 "
        "with Retry-After.",
    ),
    Setting(
        "disclosure_anonymous_epsilon_budget",
        kinds.positive_float,
        100.0,
        "Epsilon all anonymous callers together may spend on one dataset per budget "
        "window on counts and answers about people (presence answers excepted): "
        "many addresses buy no more than this.",
    ),
    Setting(
        "disclosure_presence_epsilon",
        kinds.positive_float,
        0.05,
        "Budget one answer about which variants a dataset holds spends (no people "
        "selected, not perturbed: the rare-allele policy decides), times its "
        "weighted cost.",
    ),
    Setting(
        "disclosure_budget_window_seconds",
        kinds.positive_int,
        86_400,
        "Length of a budget window (seconds); budgets restart with each window.",
    ),
    Setting(
        "disclosure_rare_cost_allele_count",
        kinds.positive_int,
        20,
        "Weighted cost: an answer about a variant of allele count AC costs "
        "ceil(this / AC) units of epsilon_per_query (at least 1).",
    ),
    Setting(
        "disclosure_small_dataset_individuals",
        kinds.non_negative_int,
        100,
        "Weighted cost: an answer about people in a dataset of N individuals costs "
        "at least ceil(this / N) units of epsilon_per_query (each person is 1/N of "
        "it; 0: off).",
    ),
    Setting(
        "disclosure_count_rounding",
        kinds.positive_int,
        5,
        "Released counts are rounded to a multiple of this (1: no rounding).",
    ),
    Setting(
        "disclosure_rare_allele_count",
        kinds.non_negative_int,
        10,
        "Rare-allele policy: a variant whose allele count in the dataset is below "
        "this is answered as absent to anonymous and registered callers.",
    ),
    Setting(
        "disclosure_rare_allele_frequency",
        kinds.fraction,
        0.005,
        "Rare-allele policy: so is a variant whose allele frequency is below this.",
    ),
    Setting(
        "disclosure_boolean_mechanism",
        kinds.boolean_mechanism,
        "noisy-threshold",
        "How a yes/no answer is perturbed: noisy-threshold (yes when the noisy "
        "count reaches the count threshold) or randomized-response.",
    ),
    Setting(
        "disclosure_trusted_proxies",
        kinds.networks,
        (),
        "Address ranges (CIDR) of reverse proxies whose X-Forwarded-For names the "
        "client that anonymous budgets are kept for (environment: comma-separated).",
    ),
    Setting(
        "disclosure_nfilter_tab",
        kinds.positive_int,
        3,
        "DataSHIELD nfilter.tab: the smallest non-zero cell count a released table "
        "may hold.",
    ),
    Setting(
        "disclosure_nfilter_subset",
        kinds.positive_int,
        3,
        "DataSHIELD nfilter.subset: the fewest people an aggregate over a filtered "
        "subset may be computed on.",
    ),
    Setting(
        "disclosure_nfilter_glm",
        kinds.fraction,
        0.33,
        "DataSHIELD nfilter.glm: the largest ratio of model parameters to "
        "observations.",
    ),
    Setting(
        "disclosure_nfilter_levels_max",
        kinds.positive_int,
        40,
        "DataSHIELD nfilter.levels.max: the most levels a released factor may have.",
    ),
    Setting(
        "disclosure_nfilter_levels_density",
        kinds.fraction,
        0.33,
        "DataSHIELD nfilter.levels.density: the largest ratio of a factor's levels "
        "to observations.",
    ),
    Setting(
        "disclosure_min_minor_allele_count",
        kinds.non_negative_int,
        5,
        "Per-variant statistics of an analysis (regression, table, frequency) are "
        "withheld for a variant whose minor-allele count on this node is below "
        "this (0: none withheld).",
    ),
    Setting(
        "analysis_max_window_variants",
        kinds.positive_int,
        20_000,
        "Most variants one analysis call may name or cover (400).",
    ),
    Setting(
        "reference_release_controlled",
        kinds.boolean,
        False,
        "Publish the allele-frequency reference of CONTROLLED datasets (when their "
        "DUO terms allow aggregate release too; docs/reference.md).",
    ),
    Setting(
        "htsget_max_regions",
        kinds.positive_int,
        100,
        "Most regions in one htsget POST request (400).",
    ),
    Setting(
        "cors_allowed_origins",
        kinds.origins,
        (),
        "Origins (https://igv.org) whose web pages may read the node's htsget and "
        "DRS answers (CORS), or * for any page; empty: none.",
    ),
    Setting(
        "cors_allow_credentials",
        kinds.boolean,
        False,
        "Send Access-Control-Allow-Credentials to the listed CORS origins (never "
        "with *, which is refused).",
    ),
    # Quality control (genomenode qc, docs/qc.md): defaults and their sources.
    Setting(
        "qc_sample_min_call_rate",
        kinds.fraction,
        0.9,
        "A sample with fewer of its genotypes called fails QC (plink2 --mind's "
        "default 0.1 missing).",
    ),
    Setting(
        "qc_sample_min_mean_depth",
        kinds.non_negative_float,
        15.0,
        "A sample whose mean FORMAT/DP is lower fails QC (gnomAD's genome hard "
        "filter, 15x); only where the VCF has DP.",
    ),
    Setting(
        "qc_sample_min_mean_gq",
        kinds.non_negative_float,
        20.0,
        "A sample whose mean FORMAT/GQ is lower fails QC (gnomAD's high-quality "
        "genotype, GQ >= 20, for the mean); only where the VCF has GQ.",
    ),
    Setting(
        "qc_sample_outlier_mads",
        kinds.positive_float,
        4.0,
        "A sample further than this many median absolute deviations from its "
        "population's median heterozygosity, het/hom-alt ratio, Ti/Tv or "
        "singletons fails QC (gnomAD's sample QC, 4 MADs).",
    ),
    Setting(
        "qc_sex_female_max_f",
        kinds.coefficient,
        0.2,
        "X chromosome inbreeding F at most this: genetically female (plink2 "
        "--check-sex default).",
    ),
    Setting(
        "qc_sex_male_min_f",
        kinds.coefficient,
        0.8,
        "X chromosome inbreeding F at least this: genetically male (plink2 "
        "--check-sex default); between the two: ambiguous, which fails QC.",
    ),
    Setting(
        "qc_kinship_duplicate",
        kinds.coefficient,
        0.354,
        "KING kinship above this: duplicates or monozygotic twins (Manichaikul et "
        "al. 2010); one of each pair fails QC.",
    ),
    Setting(
        "qc_kinship_related",
        kinds.coefficient,
        0.0884,
        "KING kinship above this: second-degree relatives or closer (Manichaikul "
        "et al. 2010); all but one of each related group fail QC, as gnomAD keeps "
        "unrelated samples for frequencies.",
    ),
    Setting(
        "qc_common_min_maf",
        kinds.fraction,
        0.05,
        "Minor allele frequency of the common biallelic autosomal SNPs that "
        "kinship and PCA use.",
    ),
    Setting(
        "qc_common_max_variants",
        kinds.positive_int,
        10000,
        "Most common variants kinship and PCA use (evenly spaced along the "
        "genome, which also thins linkage); memory is this × samples bytes.",
    ),
    Setting(
        "qc_pca_components",
        kinds.positive_int,
        10,
        "Principal components computed for ancestry outliers (EIGENSOFT smartpca "
        "numoutlierevec, 10).",
    ),
    Setting(
        "qc_pca_outlier_sd",
        kinds.positive_float,
        6.0,
        "A sample further than this many standard deviations on any component is "
        "an ancestry outlier and fails QC (EIGENSOFT smartpca outliersigmathresh, "
        "6, five iterations).",
    ),
    Setting(
        "qc_variant_min_call_rate",
        kinds.fraction,
        0.9,
        "A variant called in fewer of the passing samples fails QC (plink2 "
        "--geno's default 0.1 missing).",
    ),
    Setting(
        "qc_hwe_min_p",
        kinds.p_value,
        1e-6,
        "A variant whose Hardy-Weinberg exact p-value is below this in any "
        "population fails QC (the usual plink --hwe 1e-6 for unaffected cohorts).",
    ),
    Setting(
        "qc_genotype_min_gq",
        kinds.non_negative_float,
        20.0,
        "A high-quality genotype has GQ at least this (gnomAD's AC0 filter).",
    ),
    Setting(
        "qc_genotype_min_depth",
        kinds.non_negative_float,
        10.0,
        "A high-quality genotype has DP at least this (gnomAD's AC0 filter).",
    ),
    Setting(
        "qc_genotype_min_allele_balance",
        kinds.fraction,
        0.2,
        "A high-quality heterozygous genotype has at least this fraction of its "
        "reads (FORMAT/AD) for the ALT allele (gnomAD's AC0 filter).",
    ),
    Setting(
        "qc_min_inbreeding_coeff",
        kinds.coefficient,
        -0.3,
        "A variant whose InbreedingCoeff (1 - observed / expected heterozygotes) "
        "is below this fails QC (gnomAD's excess-heterozygosity filter).",
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """The resolved settings of one node."""

    node_dir: pathlib.Path
    values: Mapping[str, Any]
    #: The names given in the config file or the environment (not defaults).
    configured: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def path(self, name: str) -> pathlib.Path:
        """A path-valued setting, resolved against the node directory."""
        path = pathlib.Path(self.values[name])
        return path if path.is_absolute() else self.node_dir / path

    @property
    def storage_dir(self) -> pathlib.Path:
        storage = self.values["storage"]
        if not storage or str(storage).startswith("s3://"):
            # An object store keeps the published datasets; staging stays local.
            return self.node_dir / "store"
        return self.path("storage")

    @property
    def database_url(self) -> str:
        url = self.values["db_url"]
        return url or f"sqlite:///{self.node_dir / 'genomenode.db'}"


def parse_settings(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Parse raw values by their declared types; unknown names are errors."""
    parsed = {}
    for name, value in raw.items():
        setting = _BY_NAME.get(name)
        if setting is None:
            known = ", ".join(sorted(_BY_NAME))
            raise ConfigError(f"{source}: unknown setting {name!r} (known: {known})")
        try:
            parsed[name] = setting.parse(value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: setting {name!r} {error}") from None
    return parsed


def load_config(
    node_dir: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Read the settings of the node at ``node_dir``.

    Raises
    ------
    ConfigError
        If the directory is not an initialised node, or a value is invalid.
    """
    node_dir = pathlib.Path(node_dir).absolute()
    config_path = node_dir / CONFIG_FILENAME
    if not config_path.is_file():
        raise ConfigError(
            f"{node_dir} is not a genomenode node (no {CONFIG_FILENAME}); "
            f"create one with: genomenode init {node_dir} --node-id ID --country CC"
        )
    try:
        from_file = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: not valid YAML: {error}") from None
    if not isinstance(from_file, dict):
        raise ConfigError(f"{config_path}: expected a mapping of settings")
    from_file.pop("format_version", None)
    if "key_passphrase" in from_file:
        raise ConfigError(
            f"{config_path}: key_passphrase must not be written in a file; "
            "set GENOMENODE_KEY_PASSPHRASE in the environment instead"
        )
    return resolve_config(node_dir, from_file, str(config_path), environ)


def resolve_config(
    node_dir: pathlib.Path,
    from_file: Mapping[str, Any],
    source: str,
    environ: Mapping[str, str] | None = None,
) -> NodeConfig:
    """Defaults, then ``from_file``, then the environment, parsed by declared type."""
    environ = os.environ if environ is None else environ
    from_env = {
        setting.name: environ[setting.environment_variable]
        for setting in SETTINGS
        if setting.environment_variable in environ
    }
    values = {setting.name: setting.default for setting in SETTINGS}
    values.update(parse_settings(from_file, source))
    values.update(parse_settings(from_env, "environment"))
    return NodeConfig(
        node_dir=node_dir,
        values=values,
        configured=frozenset(from_file) | set(from_env),
    )


def public_url_for(host: str, port: int) -> str:
    """The URL a node bound to ``host``:``port`` is reached at, when no
    ``public_url`` is configured: ``localhost`` for the loopback and wildcard
    addresses, the address itself otherwise."""
    name = host.strip().strip("[]")
    if name in ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"):
        return f"http://localhost:{port}"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return f"http://{name}:{port}"
    if address.version == 6:
        return f"http://[{name}]:{port}"
    return f"http://{name}:{port}"


#: The path segment under which a node serves the development identity provider.
DEV_IDENTITY_PROVIDER_SEGMENT = "dev-idp"


def is_development_identity_provider(url: str) -> bool:
    """Whether ``url`` (an issuer, jku or userinfo URL) is under a genomenode
    development identity provider: a ``dev-idp`` segment in its path.

    Limits: a provider reached under another path (a proxy rewriting it) is not
    recognised here; its tokens carry a marker claim that the verifier refuses.
    """
    path = urllib.parse.urlsplit(str(url)).path
    segments = (
        urllib.parse.unquote(segment).strip().lower() for segment in path.split("/")
    )
    return DEV_IDENTITY_PROVIDER_SEGMENT in segments


def check_production_trust(
    config: NodeConfig,
    *,
    environment: str | None = None,
    dev_identity_provider: bool | None = None,
) -> None:
    """Refuse to serve a ``prod`` node that trusts the development identity provider.

    That provider hands a passport to anyone for any subject, DAC members included,
    so a node trusting it lets anyone approve their own application. ``environment``
    and ``dev_identity_provider`` default to the node's settings.

    Raises
    ------
    ConfigError
        In ``prod``: ``dev_identity_provider`` is on, or an entry of
        ``trusted_brokers`` or ``trusted_visa_issuers`` is a development identity
        provider (:func:`is_development_identity_provider`); the error names the
        setting and the entry.
    """
    # .get: tests build partial configs; the defaults are those of SETTINGS.
    environment = environment or config.values.get("beacon_environment", "dev")
    if environment != "prod":
        return
    if dev_identity_provider is None:
        dev_identity_provider = bool(config.values.get("dev_identity_provider"))
    if dev_identity_provider:
        raise ConfigError(
            "dev_identity_provider: the development identity provider issues "
            "passports to anyone and is refused when beacon_environment is prod"
        )
    for name in ("trusted_brokers", "trusted_visa_issuers"):
        for number, entry in enumerate(config.values.get(name, ())):
            if any(
                is_development_identity_provider(url)
                for key, url in entry.items()
                if key in ("issuer", "jku", "userinfo")
            ):
                raise ConfigError(
                    f"{name}: entry {number} ({entry['issuer']}) is a genomenode "
                    "development identity provider (its URL has a /dev-idp path), "
                    "which issues passports to anyone, DAC members included; a node "
                    "whose beacon_environment is prod refuses to trust it"
                )
