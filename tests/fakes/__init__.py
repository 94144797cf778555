"""Test doubles shared by the whole suite (see ``tests/fakes/ssm.py``)."""
