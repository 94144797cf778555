"""TagPatch: tag-driven AWS Systems Manager patching."""

#: The release, as pyproject.toml names it (a test holds them equal). A constant, not
#: ``importlib.metadata``: the Lambda package is the source tree, without the distribution's metadata.
__version__ = "0.1.0"
