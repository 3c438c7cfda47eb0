"""The input example logged with a delivery model is one that model accepts."""

from types import SimpleNamespace

from ppx.models.delivery.model import UNK
from ppx.models.delivery.schemas import REQUEST_EXAMPLE
from ppx.models.delivery.train import example_request


def test_unknown_categoricals_are_swapped_for_known_ones():
    model = SimpleNamespace(
        vocab={
            "warehouse": [UNK, "sp_hub"],
            "dest_region": [UNK, "SP", "RJ"],
            "carrier": [UNK, "olist"],
            "service_level": [UNK, "standard"],
        }
    )
    example = example_request(model, REQUEST_EXAMPLE)
    assert example["warehouse"] == "sp_hub"
    assert example["dest_region"] == "SP"
    assert example["carrier"] == "olist"
    assert example["service_level"] == "standard"  # known already: kept
    assert example["weight_kg"] == REQUEST_EXAMPLE["weight_kg"]


def test_a_known_example_is_left_as_it_is():
    model = SimpleNamespace(
        vocab={c: [UNK, REQUEST_EXAMPLE[c]] for c in ("warehouse", "dest_region", "carrier")}
    )
    assert example_request(model, REQUEST_EXAMPLE) == REQUEST_EXAMPLE
