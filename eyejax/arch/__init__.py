"""Architectures: one pytree class and one `Family` record per family, registered here.

A new family is one module (its pytree class and `FAMILY = Family(...)`) plus one line below.
"""
from eyejax.arch import eyeriss_v1, eyeriss_v2, isca16
from eyejax.arch.family import (
    Family,
    families,
    family_of,
    get_family,
    register,
    unregister,
)

register(eyeriss_v1.FAMILY)
register(eyeriss_v2.FAMILY)
register(isca16.FAMILY)

__all__ = ["Family", "families", "family_of", "get_family", "register", "unregister"]
