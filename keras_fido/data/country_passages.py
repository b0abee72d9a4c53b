"""Short encyclopedia-style passages written from a country's facts."""

import random

from keras_fido.data.country_facts import format_number

# Each question fact is stated in exactly one passage theme.
FACT_THEMES = {
    "capital": "government",
    "currency": "economy",
    "calling_code": "economy",
    "tld": "economy",
    "region": "geography",
    "subregion": "geography",
    "area": "geography",
    "neighbour": "geography",
    "population": "people",
    "language": "people",
    "demonym": "people",
}
THEMES = ("government", "economy", "geography", "people")


def join_words(items, conjunction="and"):
    """`["A", "B", "C"]` -> `"A, B and C"`."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


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
    if f["other_names"]:
        sentences.append(
            f"{name} is also known as {join_words(f['other_names'], 'or')}."
        )
    if f["provinces"]:
        sentences.append(
            pick(
                "Its administrative divisions include "
                f"{join_words(f['provinces'])}.",
                f"{name} is divided into regions such as "
                f"{join_words(f['provinces'])}.",
            )
        )
    return sentences


def _economy(f, pick):
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
    if f["calling_code"]:
        codes = join_words([f"+{c}" for c in f["calling_code"]])
        sentences.append(
            pick(
                f"The international calling code of {name} is {codes}.",
                f"Telephone numbers in {name} use the country calling code "
                f"{codes}.",
            )
        )
    if f["tld"]:
        tlds = join_words(f["tld"])
        sentences.append(
            pick(
                f"Websites in {name} use the country code top-level domain "
                f"{tlds}.",
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
                f"{name} lies in {subregion}, a part of {region}.",
                f"{name} is located in {subregion}, in {region}.",
            )
        )
    elif region or subregion:
        sentences.append(f"{name} is located in {region or subregion}.")
    if f["area"]:
        area = format_number(f["area"])
        sentences.append(
            pick(
                f"It covers an area of {area} square kilometres.",
                f"{name} has a total area of {area} square kilometres.",
            )
        )
    if f["neighbour"]:
        neighbours = join_words(f["neighbour"])
        sentences.append(
            pick(
                f"{name} shares land borders with {neighbours}.",
                f"{name} is bordered by {neighbours}.",
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
    languages = f["language"]
    if len(languages) == 1:
        sentences.append(
            pick(
                f"The official language of {name} is {languages[0]}.",
                f"{languages[0]} is the official language of {name}.",
            )
        )
    elif languages:
        sentences.append(
            pick(
                f"The official languages of {name} are "
                f"{join_words(languages)}.",
                f"{join_words(languages)} are official languages in {name}.",
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


_WRITERS = {
    "government": _government,
    "economy": _economy,
    "geography": _geography,
    "people": _people,
}


def country_passages(facts):
    """Writes one short passage per theme for a country.

    The themes are `"government"` (capital, other names, divisions),
    `"economy"` (currency, calling code, internet domain), `"geography"`
    (region, subregion, area, neighbours) and `"people"` (population,
    languages, demonym). Wording varies between countries: each sentence
    picks one of a few phrasings with a generator seeded by the country
    name, so the passages do not depend on any split seed.

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
