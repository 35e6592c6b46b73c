"""PlatformCollector: python_info exactly as prometheus_client writes it."""

import platform

import prometheus_client
import pytest

import dyn_metrics as dm
from dyn_metrics.collectors import PlatformCollector
from dyn_metrics.model import Family, Sample
from tests.collectors import assert_round_trips, client_view, our_view

HELP = "Python platform information"


class FakePlatform:
    """The platform functions the collectors read, answering fixed values; counts calls."""

    def __init__(self, system="Linux", version=("3", "9", "18"), implementation="CPython"):
        self._system = system
        self._version = version
        self._implementation = implementation
        self.calls = 0

    def _call(self, value):
        self.calls += 1
        return value

    def python_version_tuple(self):
        return self._call(self._version)

    def python_version(self):
        return self._call(".".join(str(v) for v in self._version))

    def python_implementation(self):
        return self._call(self._implementation)

    def system(self):
        return self._call(self._system)

    def java_ver(self):
        return self._call(("1.8.0_292", "Oracle", ("OpenJDK 64-Bit", "25.292", "AdoptOpenJDK"), ()))


def client_collector(**kwargs):
    """prometheus_client's own collector, registered nowhere."""
    return prometheus_client.PlatformCollector(registry=None, **kwargs)


def test_default_matches_prometheus_client_exactly():
    ours = PlatformCollector().collect()
    assert our_view(ours) == client_view(client_collector().collect())
    labels = dict(ours[0].samples[0].labels)
    assert labels == {
        "implementation": platform.python_implementation(),
        "major": platform.python_version_tuple()[0],
        "minor": platform.python_version_tuple()[1],
        "patchlevel": platform.python_version_tuple()[2],
        "version": platform.python_version(),
    }


def test_fake_platform_gives_the_exact_family():
    got = PlatformCollector(FakePlatform()).collect()
    labels = (
        ("implementation", "CPython"),
        ("major", "3"),
        ("minor", "9"),
        ("patchlevel", "18"),
        ("version", "3.9.18"),
    )
    assert got == [Family("python_info", "gauge", HELP, (Sample("python_info", labels, 1),))]


def test_java_platform_adds_the_jvm_labels_as_prometheus_client():
    ours = PlatformCollector(platform=FakePlatform(system="Java")).collect()
    assert our_view(ours) == client_view(client_collector(platform=FakePlatform("Java")).collect())
    labels = dict(ours[0].samples[0].labels)
    assert {k: labels[k] for k in labels if k.startswith("jvm_")} == {
        "jvm_version": "1.8.0_292",
        "jvm_release": "25.292",
        "jvm_vendor": "AdoptOpenJDK",
        "jvm_name": "OpenJDK 64-Bit",
    }


def test_computed_once_at_construction():
    fake = FakePlatform()
    collector = PlatformCollector(fake)
    calls = fake.calls
    assert calls > 0
    first = collector.collect()
    assert collector.collect() == first
    assert fake.calls == calls


def test_label_values_are_strings():
    got = PlatformCollector(FakePlatform(version=(3, 12, 0))).collect()
    assert dict(got[0].samples[0].labels)["minor"] == "12"
    assert all(type(v) is str for _, v in got[0].samples[0].labels)


class Broken(FakePlatform):
    def python_version(self):
        raise RuntimeError("no version here")


# (platform object, text the message holds)
BAD_PLATFORM_ROWS = [
    pytest.param(object(), "python_version_tuple", id="no functions"),
    pytest.param(Broken(), "no version here", id="raises"),
    pytest.param(FakePlatform(version=("3", "9")), "unpack", id="short tuple"),
]


@pytest.mark.parametrize("bad, text", BAD_PLATFORM_ROWS)
def test_bad_platform_raises_a_typed_error(bad, text):
    with pytest.raises(dm.InvalidValueError, match=r"^platform must") as info:
        PlatformCollector(bad)
    assert text in str(info.value)


def test_describe_is_the_family_without_samples():
    collector = PlatformCollector(FakePlatform())
    assert collector.describe() == [collector.collect()[0]._replace(samples=())]


@pytest.mark.parametrize("system", ["Linux", "Java"])
def test_round_trips_through_both_formats(system):
    assert_round_trips(PlatformCollector(FakePlatform(system=system)).collect())
    assert_round_trips(PlatformCollector().collect())
