"""HTTP services of ppx: the BentoML model service (and the rules layer's decision service).

``serving`` sits beside the ``ppx`` package (not inside it) because BentoML imports a
service by ``module:Class`` from a working directory; ``ppx serve`` starts it with the
repository root as that directory.
"""
