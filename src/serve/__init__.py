"""Running the services and measuring them: the code behind ``ppx serve`` and ``ppx bench serve``.

The services themselves live in ``serving/`` (beside the package, where BentoML imports
them from). Here:

* :mod:`ppx.serve.launch` starts a service as a subprocess on a port, waits for
  ``/readyz`` and stops only the process group it started;
* :mod:`ppx.serve.routes` names the routes the benchmark loads and the documented
  example body each one is sent;
* :mod:`ppx.serve.loadgen` is the closed-loop load generator, run in a *separate
  process* so client and server do not share an interpreter (they do share the
  machine's cores, which the benchmark page states);
* :mod:`ppx.serve.bench` is the HTTP benchmark and the in-process latency benchmark;
* :mod:`ppx.serve.request_ids` is the id of the request being served, which both
  services answer in ``X-Request-ID`` and log a fault under, and the decision service
  sends on to the model service;
* :mod:`ppx.serve.commands` adds ``ppx serve``, ``ppx bench serve`` and
  ``ppx bench latency`` to the root app.

Nothing happens at import.
"""
