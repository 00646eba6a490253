"""``python moto_main.py -H HOST -p PORT``: moto's server, with deleted ECS services gone as in AWS.

Run as a script by :mod:`.server` (not ``-m``: that would import the sandbox package, pyarrow and
all, into the moto process). One fix makes moto answer as AWS does:

* moto 5.2 keeps a deleted ECS service forever, status ``INACTIVE``, in ``ListServices`` and in the
  Resource Groups Tagging API. AWS drops a deleted service from ``ListServices`` at once (it only
  stays visible to ``DescribeServices`` by name for a while), so the ECS collector, which lists
  then describes, no longer sees it. Here both listings skip ``INACTIVE`` services;
  ``DescribeServices`` still returns them when asked by name, as AWS does.

The patch is applied when moto first imports its ECS backend (importing it up front would add a
second to every start). Everything else is moto unchanged, and resources are still created, changed
and deleted through the public APIs (boto3), never through moto internals.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

# Running a file puts its directory first on sys.path: this package's modules must not shadow
# top-level ones (``server``, ``seed``...) inside moto's process.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

ECS_MODELS = "moto.ecs.models"


def patch_ecs(backend: Any) -> None:
    """Make ``backend`` (moto's ECS backend class) leave INACTIVE services out of its listings."""
    list_services = backend.list_services
    iter_tagged_resources = backend.iter_tagged_resources

    def inactive(self: Any) -> set[str]:
        return {service.arn for service in self.services.values() if service.status == "INACTIVE"}

    def list_active_services(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        gone = inactive(self)
        return [arn for arn in list_services(self, *args, **kwargs) if arn not in gone]

    def iter_active_tagged_resources(self: Any) -> Iterator[Any]:
        gone = inactive(self)
        for resource in iter_tagged_resources(self):
            if not (resource.resource_type == "ecs:service" and resource.arn in gone):
                yield resource

    backend.list_services = list_active_services
    backend.iter_tagged_resources = iter_active_tagged_resources


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``moto.ecs.models`` like the other finders would, and patches it once executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != ECS_MODELS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch_ecs(module.EC2ContainerServiceBackend)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if __name__ == "__main__":
    sys.meta_path.insert(0, _PatchOnImport())
    from moto.server import main

    main(sys.argv[1:])
