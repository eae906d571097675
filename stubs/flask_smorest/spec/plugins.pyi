"""Types for flask-smorest's path-converter documentation helpers used here."""

from typing import Any

from werkzeug.routing import IntegerConverter

def integerconverter2paramschema(converter: IntegerConverter) -> dict[str, Any]: ...
