"""One sub-package per model (see :mod:`ppx.models.registry` for the list and
:mod:`ppx.models.spec` for the contract each package's ``SPEC`` fulfils)."""
