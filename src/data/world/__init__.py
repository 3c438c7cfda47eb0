"""A seeded, vectorised simulation of a coffee roaster's post-purchase world.

The world sells one-off and subscription products through several carriers and records
everything a brand would observe (the canonical tables of ``ppx.data.schema``). The
generator's own probabilities are written beside them as ground truth so every
benchmark can report the oracle (Bayes) score next to the model's. docs/world.md
describes each mechanism and the ``WorldParams`` field that controls it.

Time is simulated in float days since ``WorldParams.start`` and converted to timestamps
only when the tables are assembled; the loop steps one calendar month at a time and is
vectorised over customers inside a month, which keeps a million orders near a minute.

Modules, in the order a month runs: ``calendar`` (day grid), ``catalogue`` and
``customers`` (made once), ``simulator`` (the month loop and demand), ``subscriptions``,
``orders`` and ``shipments``, ``after_delivery`` (``returns_claims``, reviews, views,
``messages``, ``loyalty``), then ``assemble`` (tables and truth).
"""

from ppx.data.world.calendar import Calendar
from ppx.data.world.catalogue import CATEGORY_SPEC, TASTE_DIM, make_products
from ppx.data.world.customers import make_customers
from ppx.data.world.params import DAY_NS, World, WorldParams, json_ready
from ppx.data.world.simulator import Simulator, generate_world

__all__ = [
    "CATEGORY_SPEC",
    "DAY_NS",
    "TASTE_DIM",
    "Calendar",
    "Simulator",
    "World",
    "WorldParams",
    "generate_world",
    "json_ready",
    "make_customers",
    "make_products",
]
