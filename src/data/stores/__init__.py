"""Stores: a brand's own exports turned into the canonical tables (``ppx data import``).

A store is the same folder as a synthetic world (``tables/`` + ``manifest.json``) without
``truth/``: every command reads either. One module per export format:

* :mod:`.canonical` - CSV/Parquet files, optionally renamed by a column-mapping YAML;
* :mod:`.olist` - the public Olist layout (and its partial copy);
* :mod:`.shopify` - a platform orders export plus a carrier tracking-events CSV.

:mod:`.read` sniffs delimiters and encodings; :mod:`.build` holds what the formats share
(ids, empty tables, refusals) and writes the validated store atomically.
"""
