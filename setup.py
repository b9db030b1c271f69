"""Build hook: install `langchain_holysheep_track.pth` next to the package.

With it, `HOLYSHEEP_TRACK_SPEND=1` turns spend tracking on in any Python process of
the environment (plain `ChatOpenAI` included) without importing anything. When the
variable is unset, the line costs one environment lookup at interpreter start.
Everything else about the project lives in `pyproject.toml`.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "langchain_holysheep_track.pth"
# The one-line hook ships as package data too, so tests exercise the same line.
SOURCE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "langchain_holysheep", "data", PTH
)


class BuildPyWithTrackingHook(build_py):
    """`build_py` that also writes the tracking `.pth` file to the wheel root."""

    def run(self) -> None:  # noqa: D102
        super().run()
        self.copy_file(SOURCE, os.path.join(self.build_lib, PTH))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # noqa: D102
        return [
            *super().get_outputs(include_bytecode),
            os.path.join(self.build_lib, PTH),
        ]


setup(cmdclass={"build_py": BuildPyWithTrackingHook})
