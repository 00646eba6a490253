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


@dataclasses.dataclass(frozen=True)
class CostMapping:
    """Where Cost Explorer bills one resource type: a SERVICE value and, when several types share
    it, the usage types that are this type's (each matched as a prefix, after the region code
    AWS puts before most usage types, e.g. ``EBS:VolumeUsage`` matches ``USE1-EBS:VolumeUsage.gp3``)."""

    resource_type: str
    service: str
    cost_explorer_service: str
    usage_types: tuple[str, ...] = ()


@cache
def cost_mappings() -> tuple[CostMapping, ...]:
    """Every costed type's mapping, checked: a SERVICE shared by several types is split by usage
    types, so each of its types names its own, and no two of them can claim one usage type."""
    mappings = tuple(
        CostMapping(
            collector.resource_type,
            collector.service,
            collector.cost_explorer_service,
            tuple(collector.cost_usage_types),
        )
        for collector in all_collectors()
        if collector.cost_explorer_service is not None
    )
    by_service: dict[str, list[CostMapping]] = {}
    for mapping in mappings:
        by_service.setdefault(mapping.cost_explorer_service, []).append(mapping)
    for ce_service, sharing in by_service.items():
        if len(sharing) == 1:
            continue
        unsplit = [mapping.resource_type for mapping in sharing if not mapping.usage_types]
        if unsplit:
            raise RuntimeError(
                f"Cost Explorer service {ce_service!r} is shared by {len(sharing)} types: "
                f"{', '.join(unsplit)} must name their usage types (cost_usage_types)"
            )
        markers = [(marker, mapping.resource_type) for mapping in sharing for marker in mapping.usage_types]
        for marker, resource_type in markers:
            for other, other_type in markers:
                if other_type != resource_type and other.startswith(marker):
                    raise RuntimeError(
                        f"Cost Explorer service {ce_service!r}: usage type {marker!r} of {resource_type} "
                        f"also matches {other!r} of {other_type}"
                    )
    return mappings


def cost_explorer_services() -> list[str]:
    """The Cost Explorer SERVICE values some resource type is billed under, sorted."""
    return sorted({mapping.cost_explorer_service for mapping in cost_mappings()})


def split_cost_explorer_services() -> list[str]:
    """The SERVICE values shared by several types: their spend is told apart by usage type."""
    return sorted({mapping.cost_explorer_service for mapping in cost_mappings() if mapping.usage_types})


def cost_mapping_of(resource_type: str) -> CostMapping | None:
    return next((mapping for mapping in cost_mappings() if mapping.resource_type == resource_type), None)
