"""Page modules of the portal; each exports ``ROUTES`` (and optionally ``NAV``).

The list of modules is :data:`ppx.portal.app.PAGES`.
"""
