"""Short encyclopedia-style passages written from a country's facts."""

import random

from keras_fido.data.country_facts import format_number

# Each question fact is stated in exactly one passage theme. Passages are
# short (one or two sentences) so a reader's passage length can stay small.
FACT_THEMES = {
    "capital": "government",
    "currency": "currency",
    "calling_code": "communications",
    "tld": "communications",
    "region": "geography",
    "subregion": "geography",
    "area": "area",
    "neighbour": "borders",
    "population": "people",
    "demonym": "people",
    "language": "languages",
}
THEMES = (
    "government",
    "currency",
    "communications",
    "geography",
    "area",
    "borders",
    "people",
    "languages",
)
# Long lists are cut in the text (the gold answers of a question keep the
# whole list, and at least one of them is always written).
MAX_LISTED = {"provinces": 2, "neighbour": 4, "language": 3, "other_names": 2}


def join_words(items, conjunction="and"):
    """`["A", "B", "C"]` -> `"A, B and C"`."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _listed(f, key):
    return list(f[key])[: MAX_LISTED[key]]


def _government(f, pick):
    name, capitals = f["name"], f["capital"]
    if len(capitals) == 1:
        sentences = [
            pick(
                f"{capitals[0]} is the capital of {name}.",
                f"The capital of {name} is {capitals[0]}.",
                f"The capital and seat of government of {name} is "
                f"{capitals[0]}.",
            )
        ]
    else:
        sentences = [f"The capitals of {name} are {join_words(capitals)}."]
    if f["provinces"]:
        provinces = join_words(_listed(f, "provinces"))
        sentences.append(
            pick(
                f"Its administrative divisions include {provinces}.",
                f"{name} is divided into regions such as {provinces}.",
            )
        )
    elif f["other_names"]:
        others = join_words(_listed(f, "other_names"), "or")
        sentences.append(f"{name} is also known as {others}.")
    return sentences


def _currency(f, pick):
    name, sentences = f["name"], []
    if f["currency"]:
        money = [f"the {n} ({code})" for n, code in f["currency"]]
        if len(money) == 1:
            sentences.append(
                pick(
                    f"The currency of {name} is {money[0]}.",
                    f"{name} uses {money[0]} as its currency.",
                    f"The official currency of {name} is {money[0]}.",
                )
            )
        else:
            sentences.append(
                f"The currencies used in {name} are {join_words(money)}."
            )
    return sentences


def _communications(f, pick):
    name, sentences = f["name"], []
    if f["calling_code"]:
        codes = join_words([f"+{c}" for c in f["calling_code"]])
        sentences.append(
            pick(
                f"The international telephone calling code of {name} is "
                f"{codes}.",
                f"Telephone numbers in {name} use the country calling code "
                f"{codes}.",
            )
        )
    if f["tld"]:
        tlds = join_words(f["tld"])
        sentences.append(
            pick(
                f"Its websites use the country code top-level domain {tlds}.",
                f"The internet top-level domain of {name} is {tlds}.",
            )
        )
    return sentences


def _geography(f, pick):
    name, sentences = f["name"], []
    region, subregion = f["region"], f["subregion"]
    if region and subregion:
        sentences.append(
            pick(
                f"{name} lies in {subregion}, a subregion of the {region} "
                "region of the world.",
                f"{name} is located in the {subregion} subregion, part of "
                f"the world region of {region}.",
            )
        )
    elif region or subregion:
        sentences.append(f"{name} is located in {region or subregion}.")
    return sentences


def _area(f, pick):
    if not f["area"]:
        return []
    name, area = f["name"], format_number(f["area"])
    return [
        pick(
            f"{name} covers an area of {area} square kilometres.",
            f"{name} has a total area of {area} square kilometres.",
        )
    ]


def _borders(f, pick):
    name, sentences = f["name"], []
    if f["neighbour"]:
        neighbours = join_words(_listed(f, "neighbour"))
        more = len(f["neighbour"]) > MAX_LISTED["neighbour"]
        sentences.append(
            pick(
                f"{name} shares land borders with neighbouring countries "
                f"{'such as ' if more else ''}{neighbours}.",
                f"{name} borders the neighbouring countries "
                f"{'of ' if not more else 'such as '}{neighbours}.",
            )
        )
    return sentences


def _people(f, pick):
    name, sentences = f["name"], []
    if f["population"]:
        population = format_number(f["population"])
        sentences.append(
            pick(
                f"{name} has a population of about {population}.",
                f"About {population} people live in {name}.",
            )
        )
    if f["demonym"]:
        demonyms = join_words(f["demonym"], "or")
        sentences.append(
            pick(
                f"People from {name} are called {demonyms}.",
                f"The inhabitants of {name} are known as {demonyms}.",
            )
        )
    return sentences


def _languages(f, pick):
    name, languages = f["name"], _listed(f, "language")
    if len(languages) == 1:
        return [
            pick(
                f"The official language of {name} is {languages[0]}.",
                f"{languages[0]} is the official language spoken in {name}.",
            )
        ]
    if languages:
        return [
            pick(
                f"The official languages of {name} include "
                f"{join_words(languages)}.",
                f"{join_words(languages)} are official languages in {name}.",
            )
        ]
    return []


_WRITERS = {
    "government": _government,
    "currency": _currency,
    "communications": _communications,
    "geography": _geography,
    "area": _area,
    "borders": _borders,
    "people": _people,
    "languages": _languages,
}


def country_passages(facts):
    """Writes one short passage per theme for a country.

    The themes are `"government"` (capital, and a few divisions or other
    names), `"currency"`, `"communications"` (calling code, internet
    domain), `"geography"` (region, subregion), `"area"`, `"borders"` (up to
    four neighbours), `"people"` (population, demonym) and `"languages"`
    (up to three). Each passage is one or two sentences. Wording varies
    between countries: each sentence picks one of a few phrasings with a
    generator seeded by the country name, so the passages do not depend on
    any split seed.

    Args:
        facts: dict. One country's facts, from `load_country_facts`.

    Returns:
        A list of `{"id", "title", "text", "theme"}` dicts, one per theme
        with at least one known fact. The title is the country name, and
        every text names the country.
    """
    rng = random.Random(f"passages:{facts['name']}")

    def pick(*options):
        return options[rng.randrange(len(options))]

    name = facts["name"]
    passages = []
    for theme in THEMES:
        sentences = _WRITERS[theme](facts, pick)
        if not sentences:
            continue
        text = " ".join(sentences)
        if name not in text:
            text = f"{name}. {text}"
        passages.append(
            {
                "id": f"{name}/{theme}",
                "title": name,
                "text": text,
                "theme": theme,
            }
        )
    return passages
