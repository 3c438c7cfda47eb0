"""The nightly batch: churn scores, recommendations and daily-batch decisions for every
active customer of a store, on one process (``--engine local``) or on Apache Spark
(``--engine spark``).

Both engines split the store's customers into the same customer-hash buckets
(:mod:`ppx.batch.partition`) and run the same function on each bucket
(:func:`ppx.batch.nightly.run_bucket`): point-in-time features from ``ppx.features``,
the registered champions loaded once per worker process, the policy's pure decision
functions. Each bucket's outputs are written as Parquet files that a retried task
overwrites whole; the ledger and outbox rows are then written under their idempotency
keys (:func:`ppx.batch.run.sink`), so running the night twice awards nothing twice. Given a
ledger URL, the driver first reads every customer's loyalty state from the ledger and
ships it with the buckets (:mod:`ppx.batch.ledger_state`).
"""
