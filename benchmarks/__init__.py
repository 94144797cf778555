"""TagPatch benchmarks against moto, in :mod:`emulator.sandbox`.

The sandbox is installed here, when the package is imported: before any benchmark module imports
TagPatch (whose Logger and Metrics read the environment) or makes a client.
"""

from emulator import sandbox

sandbox.install()
