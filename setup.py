"""Package discovery: ``rlinf_isaac/`` and its shipped model configs."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["rlinf_isaac", "rlinf_isaac.*"]),
    package_data={"rlinf_isaac.models.gr00t": ["configs/*.json"]},
)
