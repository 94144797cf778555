"""The hub's metrics: namespace TagPatchHub and no dimension (the hub's alarms and dashboard name
none), whatever POWERTOOLS_SERVICE_NAME says; Powertools' Metrics instances share one metric set,
so this one flushes what the hub's handlers add."""

from __future__ import annotations

from typing import Final

from aws_lambda_powertools import Metrics

NAMESPACE: Final = "TagPatchHub"

hub_metrics = Metrics(namespace=NAMESPACE, service="")
