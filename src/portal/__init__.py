"""The shopper's side: a branded tracking page and a customer portal (server-rendered).

See :mod:`ppx.portal.app` for how it starts and how a page plugs in, and
:mod:`ppx.portal.access` for the magic links and sessions.
"""
