"""Package discovery: ``rlinf_isaac/`` plus the top-level ``tasks/`` as ``rlinf_isaac.tasks``."""

from setuptools import find_packages, setup

packages = find_packages(include=["rlinf_isaac", "rlinf_isaac.*"])
packages += ["rlinf_isaac.tasks"] + [
    f"rlinf_isaac.tasks.{p}" for p in find_packages(where="tasks")
]
setup(
    packages=packages,
    package_dir={"rlinf_isaac.tasks": "tasks"},
    package_data={"rlinf_isaac.models.gr00t": ["configs/*.json"]},
)
