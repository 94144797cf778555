"""TagPatch's functions wired to moto in this process, with the stack's settings: the worlds the
integration tests and the benchmarks drive (run them inside :func:`emulator.sandbox.install`).

* :mod:`emulator.scenarios.settings` - the reconciler's environment as the template sets it;
* :mod:`emulator.scenarios.aws` - the per-client API call log, moto's DynamoDB made atomic under
  threads, and :class:`~emulator.scenarios.aws.World` (the reconciler and its groups table);
* :mod:`emulator.scenarios.collector` - SSM -> SNS -> SQS notification events and
  :class:`~emulator.scenarios.collector.CollectorWorld` (the status collector);
* :mod:`emulator.scenarios.compliance` - seeded patch states and
  :class:`~emulator.scenarios.compliance.ReporterWorld` (the compliance reporter).
"""
