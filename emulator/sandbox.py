"""The in-process sandbox the tests and the benchmarks run TagPatch in: :func:`install`.

* fake AWS credentials, ``AWS_DEFAULT_REGION=us-east-1`` and empty config/credential files (and no
  profile, role or web identity from the caller's environment), so nothing can reach or
  authenticate against real AWS;
* the Powertools settings the template's Globals give every function;
* :mod:`emulator.strict_validation`: every botocore client validates each request against the
  operation's full input shape (max, enum, pattern, unknown members);
* :mod:`emulator.fake_ssm`: moto's SSM emulator gains the APIs moto 5.2 lacks.

Call it before TagPatch is imported (its Logger and Metrics read the environment when created).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

FAKE_ENV: Final[Mapping[str, str]] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    # as the template's Globals set them for every function
    "POWERTOOLS_SERVICE_NAME": "tagpatch",
    "POWERTOOLS_METRICS_NAMESPACE": "TagPatch",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

#: Variables that would point the SDK at a real identity; removed.
REAL_IDENTITY_ENV: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def install() -> None:
    """Make this process safe and strict for TagPatch against moto. Idempotent."""
    os.environ.update(FAKE_ENV)
    for name in REAL_IDENTITY_ENV:
        os.environ.pop(name, None)
    # Imported once the environment is safe: importing moto builds its backends.
    from emulator import fake_ssm, strict_validation  # noqa: PLC0415

    strict_validation.install()
    fake_ssm.install()
