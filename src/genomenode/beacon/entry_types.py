"""The Beacon v2 entry types this node serves, declared once.

:data:`ENTRY_TYPES` (by id) and :data:`ENTRY_TYPES_BY_ENDPOINT`, the endpoints nested
under each single entry (:data:`NESTED`) and the filtering-terms paths
(:data:`FILTERING_TERMS_PATHS`): the configuration, the map and the entry-types
response (:mod:`.framework`) and the HTTP routes (:mod:`.http`) are all built from
them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from genomenode.beacon.schemas import BASE_URI

if TYPE_CHECKING:
    pass

__all__ = [
    "API_VERSION",
    "ENTRY_TYPES",
    "ENTRY_TYPES_BY_ENDPOINT",
    "FILTERING_TERMS_PATHS",
    "MODEL_URI",
    "NESTED",
    "SPECIFICATION",
    "EntryType",
]

#: The Beacon specification served, in the "v"-prefixed form the schemas ask for.
API_VERSION = "v2.1.1"
SPECIFICATION = "Beacon v2.1.1"
#: Where the default model's schemas are published.
MODEL_URI = BASE_URI + "models/json/beacon-v2-default-model/"


@dataclasses.dataclass(frozen=True)
class EntryType:
    """One entry type of the Beacon v2 default model, as this node serves it.

    Attributes
    ----------
    id, name, description
        The entry type's id (the key used in the configuration and the map), its
        human name and its definition.
    endpoint
        The path segment under the API root (``"individuals"``, ``"g_variants"``).
    ontology_id, ontology_label
        The ontology term for the type, as the reference implementation declares it.
    schema_folder, schema_name
        The default-model folder holding its schema, and that schema's name.
    set_type
        ``"dataset"`` or ``"cohort"`` for collections, ``None`` for result entries.
    collection_of
        For collections, the ids of the entry types they group.
    non_filtered_queries_allowed
        Whether a query without any filter or parameter is answered.
    """

    id: str
    name: str
    description: str
    endpoint: str
    ontology_id: str
    ontology_label: str
    schema_folder: str
    schema_name: str
    schema_key: str
    set_type: str | None = None
    collection_of: tuple[str, ...] = ()
    non_filtered_queries_allowed: bool = True

    @property
    def schema_id(self) -> str:
        """The id of the default schema, as it appears in ``returnedSchemas``."""
        return f"beacon-{self.schema_key}-{API_VERSION}"

    @property
    def schema_url(self) -> str:
        """The official URL of the entry type's default schema."""
        return f"{MODEL_URI}{self.schema_folder}/defaultSchema.json"

    def returned_schema(self) -> dict[str, str]:
        """The ``returnedSchemas`` item of a response returning this entry type."""
        return {"entityType": self.id, "schema": self.schema_id}

    def definition(self) -> dict[str, Any]:
        """The ``entryTypeDefinition`` document of the configuration."""
        document: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "ontologyTermForThisType": {
                "id": self.ontology_id,
                "label": self.ontology_label,
            },
            "partOfSpecification": SPECIFICATION,
            "defaultSchema": {
                "id": self.schema_id,
                "name": self.schema_name,
                "referenceToSchemaDefinition": self.schema_url,
                "schemaVersion": API_VERSION,
            },
            "additionallySupportedSchemas": [],
            "nonFilteredQueriesAllowed": self.non_filtered_queries_allowed,
        }
        if self.collection_of:
            document["aCollectionOf"] = [
                {"id": member, "name": ENTRY_TYPES[member].name}
                for member in self.collection_of
            ]
        return document


_ENTRY_TYPE_LIST = (
    EntryType(
        id="analysis",
        name="Bioinformatics analysis",
        description="Apply analytical methods to existing data of a specific type.",
        endpoint="analyses",
        ontology_id="edam:operation_2945",
        ontology_label="Analysis",
        schema_folder="analyses",
        schema_name="Default schema for a bioinformatics analysis",
        schema_key="analysis",
    ),
    EntryType(
        id="biosample",
        name="Biological Sample",
        description=(
            "Any material sample taken from a biological entity for testing, "
            "diagnostic, propagation, treatment or research purposes. [ NCI ]"
        ),
        endpoint="biosamples",
        ontology_id="NCIT:C70699",
        ontology_label="Biospecimen",
        schema_folder="biosamples",
        schema_name="Default schema for a biological sample",
        schema_key="biosample",
    ),
    EntryType(
        id="cohort",
        name="Cohort",
        description="A group of individuals, identified by a common characteristic.",
        endpoint="cohorts",
        ontology_id="NCIT:C61512",
        ontology_label="Cohort",
        schema_folder="cohorts",
        schema_name="Default schema for cohorts",
        schema_key="cohort",
        set_type="cohort",
        collection_of=("individual",),
    ),
    EntryType(
        id="dataset",
        name="Dataset",
        description=(
            "A Dataset is a collection of records, like rows in a database or cards "
            "in a cardholder."
        ),
        endpoint="datasets",
        ontology_id="NCIT:C47824",
        ontology_label="Data set",
        schema_folder="datasets",
        schema_name="Default schema for datasets",
        schema_key="dataset",
        set_type="dataset",
        collection_of=("genomicVariant", "individual", "biosample"),
    ),
    EntryType(
        id="genomicVariant",
        name="Genomic Variants",
        description="The location of a sequence.",
        endpoint="g_variants",
        ontology_id="SO:0000735",
        ontology_label="sequence_location",
        schema_folder="genomicVariations",
        schema_name="Default schema for a genomic variation",
        schema_key="g_variant",
    ),
    EntryType(
        id="individual",
        name="Individual",
        description=(
            "A human being. It could be a Patient, a Tissue Donor, a Participant, "
            "a Human Study Subject, etc."
        ),
        endpoint="individuals",
        ontology_id="NCIT:C25190",
        ontology_label="Person",
        schema_folder="individuals",
        schema_name="Default schema for an individual",
        schema_key="individual",
    ),
    EntryType(
        id="run",
        name="Sequencing run",
        description=(
            "The valid and completed operation of a high-throughput sequencing "
            "instrument for a single sequencing process. [ NCI ]"
        ),
        endpoint="runs",
        ontology_id="NCIT:C148088",
        ontology_label="Sequencing run",
        schema_folder="runs",
        schema_name="Default schema for a sequencing run",
        schema_key="run",
    ),
)

#: The entry types served, by id.
ENTRY_TYPES: dict[str, EntryType] = {entry.id: entry for entry in _ENTRY_TYPE_LIST}
#: The same entry types, by endpoint (the first path segment under the API root).
ENTRY_TYPES_BY_ENDPOINT: dict[str, EntryType] = {
    entry.endpoint: entry for entry in _ENTRY_TYPE_LIST
}

#: For each endpoint, the endpoints nested under one of its entries
#: (``/individuals/{id}/g_variants``), as in the official OpenAPI definitions.
NESTED: dict[str, tuple[str, ...]] = {
    "individuals": ("g_variants", "biosamples"),
    "g_variants": ("individuals", "biosamples"),
    "biosamples": ("g_variants", "analyses", "runs"),
    "runs": ("g_variants", "analyses"),
    "analyses": ("g_variants",),
    "datasets": ("g_variants", "individuals", "biosamples"),
    "cohorts": ("individuals",),
}

#: Endpoints with their own filtering terms, and the path (under the API root) that
#: lists them. The official OpenAPI puts the individuals' terms on the collection
#: (``/individuals/filtering_terms``) but the collections' terms on one entry.
FILTERING_TERMS_PATHS: dict[str, str] = {
    "individuals": "individuals/filtering_terms",
    "datasets": "datasets/{id}/filtering_terms",
    "cohorts": "cohorts/{id}/filtering_terms",
}
