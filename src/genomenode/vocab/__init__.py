"""Vocabularies every layer may use: ontology terms and hierarchies, DUO terms.

:mod:`.ontology` holds the vocabularies of filtering terms and their hierarchies,
:mod:`.duo` the Data Use Ontology terms genomenode knows. Nothing here imports
another genomenode module: this is the lowest layer (``tests/test_layers.py``).
"""
