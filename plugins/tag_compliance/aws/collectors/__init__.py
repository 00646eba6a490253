"""Collector registry: every ``Collector`` subclass defined in a module of this package."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from functools import cache

from tag_compliance.aws.collectors.base import Collector

FRAMEWORK_MODULES = frozenset({"base", "described"})


@cache
def all_collectors() -> tuple[Collector, ...]:
    """One instance of every collector, ordered by resource type: each ``Collector`` subclass a
    module defines, and each ``Collector`` instance (a ``DescribedType``) it holds at module level
    or in a module-level tuple."""
    found: dict[str, Collector] = {}

    def add(collector: Collector) -> None:
        if collector.resource_type in found:
            raise RuntimeError(f"two collectors claim resource type {collector.resource_type!r}")
        found[collector.resource_type] = collector

    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name in FRAMEWORK_MODULES:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for _, member in inspect.getmembers(module):
            if inspect.isclass(member):
                if (
                    issubclass(member, Collector)
                    and not inspect.isabstract(member)
                    and not dataclasses.is_dataclass(member)
                    and member.__module__ == module.__name__
                ):
                    add(member())
            elif isinstance(member, Collector):
                add(member)
            elif isinstance(member, tuple) and member and all(isinstance(item, Collector) for item in member):
                for collector in member:
                    add(collector)
    return tuple(found[key] for key in sorted(found))


def resource_types() -> list[str]:
    """Every resource type some service collector collects (``service:type``), sorted; the Tagging
    API's breadth collector (``tagging:*``) adds the types it finds, which are not known here."""
    return [
        collector.resource_type
        for collector in all_collectors()
        if not collector.resource_type.endswith(":*")
    ]


def services() -> list[str]:
    """Services with at least one collector, each one mapped task and one pool in the DAG."""
    return sorted({collector.service for collector in all_collectors()})


def collectors_for(service: str) -> list[Collector]:
    chosen = [collector for collector in all_collectors() if collector.service == service]
    if not chosen:
        raise ValueError(f"no collector for service {service!r}; known: {services()}")
    return chosen


def is_global_service(service: str) -> bool:
    flags = {collector.is_global for collector in collectors_for(service)}
    if len(flags) != 1:
        raise RuntimeError(f"collectors of service {service!r} disagree on being global")
    return flags.pop()


def cost_explorer_services() -> dict[str, tuple[str, str]]:
    """Cost Explorer SERVICE value -> (service, resource_type) for every costed collector."""
    mapping: dict[str, tuple[str, str]] = {}
    for collector in all_collectors():
        if collector.cost_explorer_service is None:
            continue
        if collector.cost_explorer_service in mapping:
            raise RuntimeError(
                f"two collectors claim Cost Explorer service {collector.cost_explorer_service!r}"
            )
        mapping[collector.cost_explorer_service] = (collector.service, collector.resource_type)
    return mapping
