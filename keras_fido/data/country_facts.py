"""Clean per-country facts from the `countryinfo` package's bundled data."""

import unicodedata

from keras_fido.data.iso_names import CURRENCY_NAMES
from keras_fido.data.iso_names import LANGUAGE_NAMES

# The facts that questions are asked about, in a fixed order.
FACT_NAMES = (
    "capital",
    "currency",
    "calling_code",
    "tld",
    "region",
    "subregion",
    "area",
    "population",
    "language",
    "demonym",
    "neighbour",
)


def _clean(text):
    """Drops invisible format characters (e.g. right-to-left marks)."""
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split())


def _strings(value):
    """A list of the non-empty, cleaned strings in `value`."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    strings = [_clean(v) for v in value if isinstance(v, str)]
    return [v for v in strings if v]


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if value > 0 else None


def format_number(value):
    """`66078000` -> `"66,078,000"`; non-integral values keep decimals."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,}"


def _unique(items):
    seen, result = set(), []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            result.append(item)
    return result


def _country_facts(entry, names_by_alpha3):
    name = _strings(entry.get("name"))
    if not name:
        return None
    name = name[0]
    iso = entry.get("ISO") if isinstance(entry.get("ISO"), dict) else {}
    alpha3 = iso.get("alpha3") if isinstance(iso.get("alpha3"), str) else ""
    capitals = []
    for capital in _strings(entry.get("capital")):
        capitals += [c.strip() for c in capital.split(" / ") if c.strip()]
    currencies = [
        (CURRENCY_NAMES[code], code)
        for code in _strings(entry.get("currencies"))
        if code in CURRENCY_NAMES
    ]
    calling_codes = _unique(
        [c.lstrip("+") for c in _strings(entry.get("callingCodes"))]
    )
    tlds = [
        t
        for t in _strings(entry.get("tld"))
        if t.startswith(".") and t.isascii() and len(t) > 1
    ]
    region = (_strings(entry.get("region")) or [None])[0]
    subregion = (_strings(entry.get("subregion")) or [None])[0]
    if subregion:
        subregion = subregion[0] + subregion[1:].replace("-Eastern", "-eastern")
    languages = []
    for code in _strings(entry.get("languages")):
        if code in LANGUAGE_NAMES:
            languages.append(LANGUAGE_NAMES[code])
        elif len(code) > 3:  # Already a name, e.g. "Scottish Gaelic".
            languages.append(code)
    demonyms = [
        d.strip()
        for d in ",".join(_strings(entry.get("demonym"))).split(",")
        if d.strip() and d.strip().lower() != name.lower()
    ]
    neighbours = [
        names_by_alpha3[code]
        for code in _strings(entry.get("borders"))
        if code in names_by_alpha3 and names_by_alpha3[code] != name
    ]
    other_names = [
        n
        for n in _strings(entry.get("altSpellings"))
        if len(n) > 3 and n.lower() != name.lower()
    ]
    native = _strings(entry.get("nativeName"))
    if native and native[0].lower() != name.lower():
        other_names.append(native[0])
    facts = {
        "name": name,
        "group": alpha3 or name.lower(),
        "capital": _unique(capitals),
        "currency": currencies,
        "calling_code": calling_codes,
        "tld": _unique(tlds),
        "region": region,
        "subregion": subregion,
        "area": _number(entry.get("area")),
        "population": _number(entry.get("population")),
        "language": _unique(languages),
        "demonym": _unique(demonyms),
        "neighbour": _unique(neighbours),
        "other_names": _unique(other_names)[:3],
        "provinces": _strings(entry.get("provinces"))[:4],
    }
    facts["num_facts"] = sum(bool(facts[f]) for f in FACT_NAMES)
    return facts


def load_country_facts(min_facts=6):
    """Reads the facts of every country with enough of them.

    Uses only the data bundled with `countryinfo` (no download). ISO codes
    are turned into English names (`iso_names`); codes without a known
    name, empty values and non-ASCII domain names are dropped, and
    invisible format characters are removed from all strings. Each
    country's facts are a dict with the keys of `FACT_NAMES` (a list, a
    string, a number or `None`), plus `"name"`, `"group"` (the ISO
    alpha-3 code, shared by duplicate entries such as "Burma" and
    "Myanmar"), `"other_names"`, `"provinces"` and `"num_facts"` (how many
    of `FACT_NAMES` are known).

    Args:
        min_facts: int. Keep countries with a capital and at least this many
            known facts. Defaults to `6`.

    Returns:
        A list of fact dicts, sorted by country name.
    """
    from countryinfo import CountryInfo

    entries = CountryInfo.all()
    # Border codes point at ISO alpha-3 codes; prefer the fullest entry.
    names_by_alpha3 = {}
    for key in sorted(entries, key=lambda k: -len(entries[k])):
        iso = entries[key].get("ISO")
        code = iso.get("alpha3") if isinstance(iso, dict) else None
        name = _strings(entries[key].get("name"))
        if isinstance(code, str) and name and code not in names_by_alpha3:
            names_by_alpha3[code] = name[0]
    countries = []
    for key in sorted(entries):
        facts = _country_facts(entries[key], names_by_alpha3)
        if facts and facts["capital"] and facts["num_facts"] >= min_facts:
            countries.append(facts)
    return sorted(countries, key=lambda f: f["name"])
