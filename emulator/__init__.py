"""Run the real ``template.yaml`` on a local AWS emulator (moto's server, in this process).

Test, benchmark and demo tooling only: it lives outside ``src/`` so ``sam build`` never ships it,
and the Lambda code has no branch for it. The parts:

* :mod:`emulator.moto_ext` - what this tooling adds to moto 5.2: ``events:TestEventPattern``
  (moto's own rule matcher), IAM evaluation at the action level plus the permissions AWS checks
  implicitly (``iam:PassRole``, KMS for encrypted topics), a journal of every authorised call, and
  the SQS -> Lambda poller handed to :mod:`emulator.flows`;
* :mod:`emulator.server` - the moto server on 127.0.0.1 with IAM enforced, an admin user for the
  deploy and the drivers, and service-principal role assumption;
* :mod:`emulator.template` - SAM translation and the CloudFormation intrinsic functions;
* :mod:`emulator.deploy` - ``cloudformation:CreateStack`` of the translated template, then every
  resource (and property) moto's CloudFormation skipped, made through its service API;
* :mod:`emulator.runtime` - a deployed function invoked in-process with its deployed configuration
  and its execution role's credentials;
* :mod:`emulator.flows` - the stack's flows driven through the deployed wiring;
* :mod:`emulator.permissions` - granted versus used permissions per role;
* :mod:`emulator.demo` - ``python -m emulator.demo``.

Across accounts (issue 14, ``make demo-org``):

* :meth:`emulator.server.Emulator.view` - the same server seen from another account and region;
* :mod:`emulator.org` - an AWS Organization: OUs, accounts, a delegated administrator, an outsider;
* :mod:`emulator.stacksets` - the StackSets service for service-managed stack sets (moto's does not
  deploy our stacks);
* :mod:`emulator.bus_policy` and :mod:`emulator.orgflows` - EventBridge between accounts: the
  forwarding role, its policy and the receiving bus's resource policy (``aws:PrincipalOrgID``);
* :mod:`emulator.orgstack` - the organization deployed (package, hub, members) and its scenario;
* :mod:`emulator.demo_org` - ``python -m emulator.demo_org``.

Shared with the tests and the benchmarks (which import nothing from ``tests/``):

* :mod:`emulator.strict_validation` - every request checked against botocore's full model;
* :mod:`emulator.fake_ssm` - the SSM APIs moto 5.2 lacks;
* :mod:`emulator.sandbox` - fake credentials, strict validation and the SSM fake in one ``install()``;
* :mod:`emulator.scenarios` - TagPatch's functions wired to in-process moto (the worlds).
"""
