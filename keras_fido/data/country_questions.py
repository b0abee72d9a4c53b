"""Questions, with gold answers, about a country's facts."""

from keras_fido.data.country_facts import FACT_NAMES
from keras_fido.data.country_facts import format_number

QUESTION_TEMPLATES = {
    "capital": (
        "What is the capital of {name}?",
        "Which city is the capital of {name}?",
        "What city serves as the capital of {name}?",
    ),
    "currency": (
        "What currency is used in {name}?",
        "What is the official currency of {name}?",
        "Which currency does {name} use?",
    ),
    "calling_code": (
        "What is the calling code of {name}?",
        "What is the international dialing code for {name}?",
        "Which telephone country code does {name} use?",
    ),
    "tld": (
        "What is the top-level domain of {name}?",
        "Which internet domain does {name} use?",
        "What is the country code top-level domain of {name}?",
    ),
    "region": (
        "Which region is {name} in?",
        "In which region of the world is {name} located?",
        "What part of the world is {name} in?",
    ),
    "subregion": (
        "Which subregion is {name} in?",
        "What subregion does {name} belong to?",
        "In which subregion is {name} located?",
    ),
    "area": (
        "What is the area of {name}?",
        "How large is {name} in square kilometres?",
        "What is the total area of {name}?",
    ),
    "population": (
        "What is the population of {name}?",
        "How many people live in {name}?",
        "How many inhabitants does {name} have?",
    ),
    "language": (
        "What language is spoken in {name}?",
        "What is an official language of {name}?",
        "Which language is official in {name}?",
    ),
    "demonym": (
        "What are people from {name} called?",
        "What is the demonym for people from {name}?",
        "What are the inhabitants of {name} called?",
    ),
    "neighbour": (
        "Which country borders {name}?",
        "Name a country that shares a border with {name}.",
        "What is a neighbouring country of {name}?",
    ),
}


def fact_answers(facts, fact):
    """The gold answers for one fact, most natural first.

    Args:
        facts: dict. One country's facts, from `load_country_facts`.
        fact: str. One of `FACT_NAMES`.

    Returns:
        A list of non-empty strings; empty when the fact is unknown. For
        example `["euro", "EUR"]` for France's currency, `["+33", "33"]`
        for its calling code and `["640,679", "640,679 square kilometres"]`
        for its area.
    """
    value = facts[fact]
    if not value:
        return []
    if fact == "currency":
        return [item for pair in value for item in pair]
    if fact == "calling_code":
        return [item for code in value for item in (f"+{code}", code)]
    if fact == "area":
        area = format_number(value)
        return [area, f"{area} square kilometres"]
    if fact == "population":
        return [format_number(value)]
    if isinstance(value, str):
        return [value]
    return list(value)


def country_questions(facts, rng, phrasings_per_fact=1):
    """Asks about every known fact of a country.

    Args:
        facts: dict. One country's facts, from `load_country_facts`.
        rng: `random.Random`. Picks the phrasings.
        phrasings_per_fact: int. Distinct phrasings asked per fact, at most
            the number of templates (3). Defaults to `1`.

    Returns:
        A list of `{"question", "answers", "fact", "phrasing"}` dicts, facts
        in `FACT_NAMES` order; `"phrasing"` is the template index.
    """
    questions = []
    for fact in FACT_NAMES:
        answers = fact_answers(facts, fact)
        if not answers:
            continue
        templates = QUESTION_TEMPLATES[fact]
        count = min(phrasings_per_fact, len(templates))
        for phrasing in sorted(rng.sample(range(len(templates)), count)):
            questions.append(
                {
                    "question": templates[phrasing].format(name=facts["name"]),
                    "answers": answers,
                    "fact": fact,
                    "phrasing": phrasing,
                }
            )
    return questions
