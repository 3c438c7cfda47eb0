"""The planted feedback themes of the synthetic world and the phrases that express them.

Each theme is a problem (or a praise) a product team would act on. A text is written by
picking an opener, one *core* phrase of its theme and a closer, in the customer's
language; the core carries the theme, openers and closers are shared noise. Several
paraphrases per theme (different words for the same complaint) make discovery a real
semantic task rather than a keyword match.

``NOISE`` texts carry no theme (thanks, gift notes, one-word verdicts): a good clusterer
leaves them unassigned or in their own groups.
"""

from __future__ import annotations

from dataclasses import dataclass

NOISE = "none"
LANGUAGES = ("en", "ja", "ru")


@dataclass(frozen=True)
class Theme:
    """One planted theme: who can write it and how it reads."""

    name: str
    label: str  # the words a product team would use
    polarity: int  # -1 complaint, +1 praise
    categories: tuple[str, ...]  # product categories it can be said about
    cores: dict[str, tuple[str, ...]]  # language -> paraphrases
    titles: dict[str, tuple[str, ...]]


COFFEE = ("beans", "ground", "tea")

THEMES: tuple[Theme, ...] = (
    Theme(
        "stale_beans",
        "stale, flat-tasting coffee",
        -1,
        COFFEE,
        {
            "en": (
                "the beans tasted stale and flat",
                "it tasted old, like it was roasted months ago",
                "no aroma at all, the coffee was stale when it arrived",
                "the roast date was ancient and the flavour was gone",
                "flat and dull taste, clearly not fresh",
                "stale coffee, zero crema and a cardboard taste",
                "the bag smelled musty and the beans were past their best",
            ),
            "ja": (
                "豆が古くて風味がありませんでした",
                "香りがまったくなく、鮮度が悪いです",
                "焙煎日がかなり前で味が落ちていました",
            ),
            "ru": (
                "зёрна несвежие, вкус плоский",
                "кофе выдохся, никакого аромата",
                "дата обжарки очень старая, вкуса нет",
            ),
        },
        {
            "en": ("Stale", "Not fresh", "Tastes old", "Flat flavour"),
            "ja": ("鮮度が悪い", "古い豆"),
            "ru": ("Несвежий кофе", "Выдохся"),
        },
    ),
    Theme(
        "great_taste",
        "great taste and aroma",
        1,
        COFFEE,
        {
            "en": (
                "the taste is wonderful, rich and smooth",
                "lovely aroma and a delicious chocolatey flavour",
                "best cup I have had in years, so flavourful",
                "smooth, balanced and full of flavour",
                "the flavour is amazing, fruity and bright",
                "delicious every morning, great depth of taste",
            ),
            "ja": (
                "味がとても豊かでおいしいです",
                "香りが素晴らしく、毎朝の楽しみです",
                "まろやかでバランスの良い味です",
            ),
            "ru": (
                "вкус отличный, насыщенный и мягкий",
                "чудесный аромат и шоколадный вкус",
                "очень вкусно, пью каждое утро",
            ),
        },
        {
            "en": ("Delicious", "Great taste", "Lovely flavour", "Superb"),
            "ja": ("おいしい", "最高の味"),
            "ru": ("Очень вкусно", "Отличный вкус"),
        },
    ),
    Theme(
        "grinder_breaks",
        "grinder breaks after a few weeks",
        -1,
        ("equipment",),
        {
            "en": (
                "the grinder broke after a month",
                "the motor stopped working after three weeks",
                "burrs jammed and it will not turn on anymore",
                "it died after a few uses, the grinder just stopped",
                "the grinding mechanism snapped within weeks",
                "started making a grinding noise then broke completely",
                "the switch failed and the machine no longer starts",
            ),
            "ja": (
                "グラインダーが1か月で壊れました",
                "数週間でモーターが動かなくなりました",
                "刃が詰まって電源が入りません",
            ),
            "ru": (
                "кофемолка сломалась через месяц",
                "мотор перестал работать через три недели",
                "жернова заклинило, больше не включается",
            ),
        },
        {
            "en": ("Broke quickly", "Stopped working", "Defective", "Died after a month"),
            "ja": ("すぐ壊れた", "故障"),
            "ru": ("Сломалась", "Брак"),
        },
    ),
    Theme(
        "easy_to_use",
        "easy to use and clean",
        1,
        ("equipment", "accessories"),
        {
            "en": (
                "really easy to use and simple to clean",
                "set up in minutes, very intuitive",
                "works perfectly and is a breeze to clean",
                "well built, easy to operate every day",
                "simple, sturdy and does exactly what it should",
            ),
            "ja": (
                "使いやすく、掃除も簡単です",
                "すぐに使えて、とても便利です",
            ),
            "ru": (
                "очень удобно пользоваться и легко мыть",
                "простая в использовании и надёжная",
            ),
        },
        {
            "en": ("Easy to use", "Works great", "Simple and sturdy"),
            "ja": ("使いやすい",),
            "ru": ("Удобно",),
        },
    ),
    Theme(
        "packaging_leaks",
        "packaging leaks or splits",
        -1,
        ("beans", "ground", "tea", "accessories"),
        {
            "en": (
                "the bag was split and coffee leaked everywhere",
                "packaging leaked, grounds all over the box",
                "the seal was broken and half the contents spilled",
                "the pouch tore open in transit and made a mess",
                "the valve leaked and the package arrived half empty",
                "torn packaging, contents spilled into the parcel",
            ),
            "ja": (
                "袋が破れて中身がこぼれていました",
                "包装から漏れて箱の中が粉だらけでした",
                "封が開いていて半分こぼれていました",
            ),
            "ru": (
                "пакет порвался и кофе рассыпался",
                "упаковка протекла, всё в коробке в кофе",
                "пломба сломана, половина высыпалась",
            ),
        },
        {
            "en": ("Leaking bag", "Spilled everywhere", "Torn packaging"),
            "ja": ("包装が破れていた",),
            "ru": ("Порванная упаковка",),
        },
    ),
    Theme(
        "runs_small",
        "sizing runs small",
        -1,
        ("merch",),
        {
            "en": (
                "it runs small, order a size up",
                "way too tight, the sizing is off",
                "much smaller than the size chart says",
                "the fit is tiny, my usual size did not fit",
                "sleeves too short and tight across the chest, runs small",
                "size chart is wrong, it is at least one size smaller",
            ),
            "ja": (
                "サイズが小さめです。ワンサイズ上がおすすめ",
                "きつくて普段のサイズが入りません",
                "サイズ表より小さいです",
            ),
            "ru": (
                "маломерит, берите на размер больше",
                "слишком тесно, размер не соответствует",
                "меньше, чем в таблице размеров",
            ),
        },
        {
            "en": ("Runs small", "Too tight", "Sizing is off"),
            "ja": ("小さめ",),
            "ru": ("Маломерит",),
        },
    ),
    Theme(
        "late_delivery",
        "late delivery",
        -1,
        ("beans", "ground", "tea", "equipment", "accessories", "merch"),
        {
            "en": (
                "delivery was late, it took far longer than promised",
                "arrived days after the promised date",
                "shipping was slow and the parcel was delayed",
                "the courier was late again, waited a week extra",
                "tracking said delayed for days, very late arrival",
            ),
            "ja": (
                "配達が予定より遅れました",
                "約束の日から数日遅れて届きました",
                "配送が遅く、荷物が遅延しました",
            ),
            "ru": (
                "доставка опоздала, намного дольше обещанного",
                "пришло через несколько дней после срока",
                "посылка задержалась, доставка медленная",
            ),
        },
        {
            "en": ("Late delivery", "Slow shipping", "Delayed"),
            "ja": ("配達遅延",),
            "ru": ("Опоздание доставки",),
        },
    ),
    Theme(
        "wrong_item",
        "wrong item sent",
        -1,
        ("beans", "ground", "tea", "equipment", "accessories", "merch"),
        {
            "en": (
                "I received the wrong item, not what I ordered",
                "they sent a different product by mistake",
                "wrong variant in the box, I ordered something else",
                "the package contained someone else's order",
            ),
            "ja": (
                "注文と違う商品が届きました",
                "間違った商品が送られてきました",
            ),
            "ru": (
                "прислали не тот товар",
                "в посылке был другой товар, не мой заказ",
            ),
        },
        {
            "en": ("Wrong item", "Not what I ordered"),
            "ja": ("商品違い",),
            "ru": ("Не тот товар",),
        },
    ),
)

THEME_NAMES: tuple[str, ...] = tuple(t.name for t in THEMES)
THEME_BY_NAME = {t.name: t for t in THEMES}

#: Shared noise around the core phrase; an empty string means "nothing".
OPENERS = {
    "en": (
        "",
        "",
        "Honestly, ",
        "Well, ",
        "Second order here. ",
        "Bought this last month. ",
        "As a regular customer, ",
        "Hmm. ",
        "To be fair, ",
    ),
    "ja": ("", "", "正直なところ、", "リピーターです。", "先月購入しました。"),
    "ru": ("", "", "Честно говоря, ", "Заказываю не первый раз. ", "Купила в прошлом месяце. "),
}
#: Closers by polarity: a complaint does not end in "will order again".
CLOSERS = {
    -1: {
        "en": (
            "",
            ".",
            "!",
            ". Would not buy again.",
            ". Please fix this.",
            ". Very disappointed.",
            ". Otherwise fine.",
        ),
        "ja": ("", "。", "。改善をお願いします。", "。残念です。"),
        "ru": ("", ".", ". Исправьте, пожалуйста.", ". Очень разочарована."),
    },
    1: {
        "en": ("", ".", "!", ". Will order again.", ". Highly recommend!", ". Thanks!"),
        "ja": ("", "。", "！", "。また利用します。"),
        "ru": ("", ".", "!", ". Буду заказывать ещё.", ". Рекомендую!"),
    },
    0: {
        "en": ("", "", ".", ". Thanks.", ". Will see next time."),
        "ja": ("", "。"),
        "ru": ("", "."),
    },
}
#: Texts with no theme at all.
NOISE_TEXTS = {
    "en": (
        "Bought as a gift for my dad",
        "ok",
        "Fine.",
        "Second order from this shop",
        "as expected",
        "nothing special to report",
        "My partner picked this one",
        "Ordered for the office kitchen",
        "good",
        "Will update after a few weeks",
        "no comment",
        "It is what it is",
    ),
    "ja": ("プレゼント用に購入しました", "普通です", "特にありません", "会社用に注文しました"),
    "ru": ("Купил в подарок отцу", "нормально", "без комментариев", "заказал для офиса"),
}
NOISE_TITLES = {
    "en": ("Review", "My order", "OK", "Purchase", "Feedback"),
    "ja": ("レビュー", "購入"),
    "ru": ("Отзыв", "Покупка"),
}
