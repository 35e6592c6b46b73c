"""``PlatformCollector``: the ``python_info`` gauge, as prometheus_client writes it.

``python_info{implementation,major,minor,patchlevel,version} 1``, read once from the
``platform`` module (``prometheus_client/platform_collector.py``). Its Jython branch is kept:
on a platform whose ``system()`` is ``"Java"`` the ``jvm_version``, ``jvm_release``,
``jvm_vendor`` and ``jvm_name`` labels from ``java_ver()`` join them. No Jython runs Python
3.9, but an injected ``platform`` object can say ``"Java"``, and the family then matches
prometheus_client's for the same object.
"""

import platform as _platform_module
from typing import Any, Optional

from ..errors import InvalidValueError
from ..model import GAUGE, Family, Sample

NAME = "python_info"
HELP = "Python platform information"


class PlatformCollector:
    """One gauge family, ``python_info``, computed at construction.

    ``platform`` is any object with the ``platform`` module's ``python_version()``,
    ``python_version_tuple()``, ``python_implementation()`` and ``system()`` (and
    ``java_ver()`` when ``system()`` is ``"Java"``); the default is the module itself.
    An object that lacks them, or whose calls raise, raises ``InvalidValueError`` here,
    so ``collect()`` never does. Label values are written as ``str``. Never registers
    itself; ``collect()`` and ``describe()`` are thread-safe and re-entrant.
    """

    def __init__(self, platform: Optional[Any] = None) -> None:
        source = _platform_module if platform is None else platform
        try:
            info = _info(source)
        except Exception as exc:
            raise InvalidValueError(
                f"platform must provide the platform module's functions, got {platform!r}: {exc}"
            ) from exc
        labels = tuple(sorted((k, str(v)) for k, v in info.items()))
        self._family = Family(NAME, GAUGE, HELP, (Sample(NAME, labels, 1),))

    def describe(self) -> list[Family]:
        """The one family ``collect()`` produces, with no samples."""
        return [self._family._replace(samples=())]

    def collect(self) -> list[Family]:
        """``[python_info]``, the same record at every call."""
        return [self._family]


def _info(source: Any) -> dict[str, object]:
    major, minor, patchlevel = source.python_version_tuple()
    info: dict[str, object] = {
        "version": source.python_version(),
        "implementation": source.python_implementation(),
        "major": major,
        "minor": minor,
        "patchlevel": patchlevel,
    }
    if source.system() == "Java":
        java_version, _, vminfo, _ = source.java_ver()
        vm_name, vm_release, vm_vendor = vminfo
        info.update(
            jvm_version=java_version,
            jvm_release=vm_release,
            jvm_vendor=vm_vendor,
            jvm_name=vm_name,
        )
    return info
