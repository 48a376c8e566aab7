"""Package discovery: ``rlinf_isaac/``, its shipped model configs and the generated Franka USD."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["rlinf_isaac", "rlinf_isaac.*"]),
    package_data={"rlinf_isaac.models.gr00t": ["configs/*.json"], "rlinf_isaac.envs.isaaclab.assets": ["*.usda"]},
)
