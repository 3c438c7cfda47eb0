"""The file ``spark-submit`` runs: the ``ppx`` command line, arguments as given.

``spark-submit [spark options] $(python -c "import ppx.batch.submit as s; print(s.__file__)")
decide daily-batch --store ... --engine spark`` starts the driver with the cluster's
session, which the nightly run then uses (see docs/scale.md).
"""

from __future__ import annotations

if __name__ == "__main__":
    from ppx.cli import main

    main()
