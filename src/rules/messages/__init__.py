"""Messages, rendered and sent: templates, the outbox, the senders, preferences.

* :mod:`.render`: Jinja2 templates (HTML and text) + per-language catalogues -> a message;
* :mod:`.compose`: a decision's planned messages -> rendered outbox rows with their keys;
* :mod:`.outbox`: the outbox table (idempotent, leased claims, back-off);
* :mod:`.sender`: the send loop over a channel's gateway, and SMTP (``ppx messages send``);
* :mod:`.gateways`: SMS (HTTP API in the Twilio Messages shape) and push (JSON gateway);
* :mod:`.short`: SMS and push bodies cut from the email's templates;
* :mod:`.transport`: what a gateway client provides the send loop;
* :mod:`.receipts`: delivery receipts from the SMS and push gateways, on the sent rows;
* :mod:`.preferences`: the preference centre (per channel and per kind);
* :mod:`.unsubscribe`: signed one-click unsubscribe links.
"""
