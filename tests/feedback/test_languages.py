"""Language from the script, and the packaged multilingual model reading across languages."""

from __future__ import annotations

import numpy as np

from ppx.feedback.languages import detect_language, detect_languages, embed_e5


def test_language_is_read_from_the_script():
    assert detect_language("The grinder broke after a month.") == "en"
    assert detect_language("グラインダーが1か月で壊れました。") == "ja"
    assert detect_language("Кофемолка сломалась через месяц.") == "ru"
    # a Russian comment quoting a product name in Latin letters is still Russian
    assert detect_language("Кофемолка Baratza сломалась") == "ru"
    assert list(detect_languages(["", None, "ok"])) == ["en", "en", "en"]


def test_e5_puts_one_complaint_in_two_languages_closer_than_two_complaints():
    texts = [
        "The grinder broke after three weeks.",
        "Кофемолка сломалась через три недели.",
        "The shoes are too small, order a size up.",
        "Обувь маломерит, берите на размер больше.",
    ]
    e = embed_e5(texts)
    assert e.shape == (4, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    sim = e @ e.T
    # the same complaint across languages beats a different complaint in the same language
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 3]
    assert sim[2, 3] > sim[2, 0] and sim[2, 3] > sim[3, 1]
    # identical strings are embedded once and get the same vector
    again = embed_e5([texts[0], texts[0]])
    assert np.array_equal(again[0], again[1])
