"""Return-fraud and claim-fraud scoring: one PyTorch network with two heads.

``config`` holds the hyper-parameters, ``network`` the module, ``train`` fitting,
logging, registration and the promotion gate, ``evaluate`` metrics, baselines and the
oracle, ``pyfunc`` the served model, ``commands`` the CLI. Features live in
``ppx.features.fraud``.
"""
