"""The one exception the anonymisation boundary raises for input it will not anonymise."""

from __future__ import annotations


class AnonymizationRefused(ValueError):
    """An object rtbank will not anonymise, with a message that names the object and what to do.

    Raised for burned-in annotation, unsupported SOP classes, missing identifying UIDs and encodings the
    engine cannot rewrite safely. Nothing is written for a refused object.
    """
