"""Messages, rendered and sent: templates, the outbox, the SMTP sender, preferences.

* :mod:`.render`: Jinja2 templates (HTML and text) + per-language catalogues -> a message;
* :mod:`.compose`: a decision's planned messages -> rendered outbox rows with their keys;
* :mod:`.outbox`: the outbox table (idempotent, leased claims, back-off);
* :mod:`.sender`: SMTP delivery of outbox rows (``ppx messages send``);
* :mod:`.preferences`: the preference centre (per channel and per kind);
* :mod:`.unsubscribe`: signed one-click unsubscribe links.
"""
