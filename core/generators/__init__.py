"""Generator registry. Generators are looked up by name; ``default`` needs no weights."""
from __future__ import annotations

from collections.abc import Callable

from ..errors import InputError
from .base import ChunkPlace, Estimates, Estimator, GenerateSettings, Generator, ProgressFn

_FACTORIES: dict[str, Callable[[], Generator]] = {}


def register_generator(name: str, factory: Callable[[], Generator]) -> None:
    _FACTORIES[name] = factory


def available_generators() -> list[str]:
    return sorted(_FACTORIES)


def get_generator(name: str) -> Generator:
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise InputError("--generator", f"unknown generator {name!r}",
                         f"use one of: {', '.join(available_generators())}") from None


def _default_factory() -> Generator:
    # Imported lazily: torch loads only when a generator actually runs.
    from .default import DefaultGenerator

    return DefaultGenerator()


def _rs3dada_factory() -> Generator:
    from .rs3dada.generator import RS3DAdaGenerator

    return RS3DAdaGenerator()


def _sat3dgen_factory() -> Generator:
    from .sat3dgen.generator import Sat3DGenGenerator

    return Sat3DGenGenerator()


register_generator("default", _default_factory)
register_generator("rs3dada", _rs3dada_factory)
register_generator("sat3dgen", _sat3dgen_factory)

__all__ = ["ChunkPlace", "Estimates", "Estimator", "GenerateSettings", "Generator", "ProgressFn",
           "available_generators", "get_generator", "register_generator"]
