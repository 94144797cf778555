"""moto's server on 127.0.0.1, in this process, with IAM enforced for every request.

In-process so that ``emulator.fake_ssm`` (the SSM APIs moto 5.2 lacks, patched onto moto's SSM
response class) and :mod:`emulator.moto_ext` apply to it, and so that patch states can be seeded
straight into its SSM backend.

Once started, nothing is anonymous: the deploy and the drivers sign with an IAM user holding
``AdministratorAccess`` (made while authentication is briefly off), a deployed function signs with
its execution role's session, and SSM's own actions with the service roles the template gives
it. A role is assumed the way the owning service assumes it (:meth:`Emulator.assume_role_as_service`):
its trust policy must admit that service principal.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import urllib.request
import warnings
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import boto3
import botocore.session
from botocore.config import Config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends

from emulator import fake_ssm, moto_ext

ACCOUNT_ID: Final = DEFAULT_ACCOUNT_ID
ADMIN_USER: Final = "tagpatch-emulator-admin"
ADMIN_POLICY_ARN: Final = "arn:aws:iam::aws:policy/AdministratorAccess"
_DRIVER_CONFIG: Final = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60
)
# werkzeug logs every request; moto logs "No Moto CloudFormation support for <type>" (and warns
# once per type), which the deploy answers by making those resources itself.
_QUIET_LOGGERS: Final = ("werkzeug", "moto")
_SKIP_WARNING: Final = r"Tried to parse .* not supported by moto"


class TrustPolicyError(PermissionError):
    """The role's trust policy does not let that service assume it."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    principal: str = ""  # the IAM user or assumed-role session ARN


class Emulator:
    """The running emulator: its endpoint, an admin identity and service-role sessions."""

    def __init__(self, *, region: str = "us-east-1", enforce_iam: bool = True) -> None:
        self.region = region
        self.account_id = ACCOUNT_ID
        self.enforce_iam = enforce_iam
        self._server: ThreadedMotoServer | None = None
        self._endpoint = ""
        self._admin: Credentials | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_levels: dict[str, int] = {}
        self._warnings: warnings.catch_warnings[None] | None = None
        self._clients: dict[tuple[str, Credentials], Any] = {}
        self._session = botocore.session.get_session()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Emulator:
        # Read by moto's IAM backend when it is created: the AWS managed policies the template
        # attaches (AWSLambdaBasicExecutionRole, AmazonSSMMaintenanceWindowRole, ...) exist.
        self._saved_env = {"MOTO_IAM_LOAD_MANAGED_POLICIES": os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")}
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        for name in _QUIET_LOGGERS:
            self._saved_levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.ERROR)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=_SKIP_WARNING, category=UserWarning)
        fake_ssm.install()
        moto_ext.install()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        self._reset_backends()
        moto_ext.JOURNAL.clear()
        moto_ext.activate(enforce_iam=self.enforce_iam)
        self._admin = self._bootstrap_admin()
        return self

    def stop(self) -> None:
        if self._server is not None:
            moto_ext.deactivate()
            self._reset_backends()
            self._server.stop()
            self._server = None
        self._clients.clear()
        fake_ssm.reset()
        moto_ext.JOURNAL.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, level in self._saved_levels.items():
            logging.getLogger(name).setLevel(level)
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _reset_backends(self) -> None:
        request = urllib.request.Request(f"{self._endpoint}/moto-api/reset", data=b"", method="POST")  # noqa: S310 - our own 127.0.0.1 endpoint
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    def _bootstrap_admin(self) -> Credentials:
        with moto_ext.iam_suspended():
            iam = self.client("iam", Credentials("bootstrap", "bootstrap"))
            iam.create_user(UserName=ADMIN_USER)
            iam.attach_user_policy(UserName=ADMIN_USER, PolicyArn=ADMIN_POLICY_ARN)
            key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        return Credentials(
            key["AccessKeyId"],
            key["SecretAccessKey"],
            principal=f"arn:aws:iam::{self.account_id}:user/{ADMIN_USER}",
        )

    # -- clients --------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if not self._endpoint:
            raise RuntimeError("the emulator is not started")
        return self._endpoint

    @property
    def admin(self) -> Credentials:
        if self._admin is None:
            raise RuntimeError("the emulator is not started")
        return self._admin

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A boto3 client of ``service`` against the emulator, signed with ``credentials`` (admin).

        Clients are made once per service and identity (one botocore session loads the models).
        """
        creds = credentials or self.admin
        key = (service, creds)
        if key not in self._clients:
            session: Any = boto3.session.Session(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
                region_name=self.region,
                botocore_session=self.new_botocore_session(),
            )
            self._clients[key] = session.client(
                service, endpoint_url=self.endpoint_url, config=_DRIVER_CONFIG
            )
        return self._clients[key]

    def boto3_session(self, credentials: Credentials | None = None) -> boto3.session.Session:
        """A boto3 session in this account and region (admin credentials by default) whose every
        client calls the emulator: for code that takes a session (``hub.package.package``)."""
        creds = credentials or self.admin
        botocore_session = self.new_botocore_session()
        botocore_session.get_component("config_store").set_config_variable("endpoint_url", self.endpoint_url)
        return boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            region_name=self.region,
            botocore_session=botocore_session,
        )

    def new_botocore_session(self) -> botocore.session.Session:
        """A botocore session that shares this emulator's loaded service models."""
        session = botocore.session.Session()
        # Share the loaded service models: creating a client is then cheap.
        session.register_component("data_loader", self._session.get_component("data_loader"))
        return session

    # -- other accounts ---------------------------------------------------------------------------
    def view(self, account_id: str, region: str, admin: Credentials) -> AccountView:
        """This emulator as seen from ``account_id`` in ``region``, signing as ``admin``.

        The same server: moto keeps accounts apart by the access key's account (an IAM user's,
        or an assumed-role session's role account), so :func:`emulator.deploy.deploy`,
        :class:`emulator.runtime.LambdaRuntime` and :class:`emulator.flows.Flows` work unchanged
        with a view in place of the emulator.
        """
        return AccountView(self, account_id, region, admin)

    # -- roles ----------------------------------------------------------------------------------
    def assume_role_as_service(
        self,
        role_arn: str,
        service: str,
        session_name: str,
        context: dict[str, str] | None = None,
    ) -> Credentials:
        """Credentials of ``role_arn`` as the service ``service`` (``lambda.amazonaws.com``) gets them.

        The role's trust policy must allow ``sts:AssumeRole`` to that service principal, its
        conditions evaluated against ``context``: the keys the service sends with its AssumeRole
        (default ``aws:SourceAccount`` = this account; a flow whose service AWS documents with
        no such key passes what AWS documents instead); otherwise :class:`TrustPolicyError`.
        The session comes from moto's STS backend directly: a service principal cannot sign a
        request, and moto's AssumeRole cannot evaluate service-principal trust policies.
        """
        role_name = role_arn.rsplit("/", 1)[-1]
        document = self.client("iam").get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        keys = {"aws:SourceAccount": self.account_id} if context is None else context
        if not trusts_service(document, service, keys):
            raise TrustPolicyError(f"role {role_name} does not trust {service} to assume it")
        session = sts_backends[self.account_id]["aws"].assume_role(
            region_name=self.region,
            role_session_name=session_name[:64],
            role_arn=role_arn,
            policy="",
            duration=3600,
            external_id="",
        )
        return Credentials(
            session.access_key_id, session.secret_access_key, session.session_token, session.arn
        )


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_CONDITION_OPERATORS: Final = {
    "StringEquals": lambda actual, expected: actual == expected,
    "ArnEquals": lambda actual, expected: actual == expected,
    "StringLike": fnmatch.fnmatchcase,
    "ArnLike": fnmatch.fnmatchcase,
}


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        compare = _CONDITION_OPERATORS.get(operator)
        if compare is None:
            raise TrustPolicyError(f"trust policy condition operator {operator} is not supported here")
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None or not any(compare(actual, str(e)) for e in _listify(expected)):
                return False
    return True


def trusts_service(document: dict[str, Any], service: str, context: dict[str, str]) -> bool:
    """Whether the trust policy ``document`` lets ``service`` call sts:AssumeRole."""
    allowed = False
    for statement in _listify(document.get("Statement", [])):
        actions = _listify(statement.get("Action", []))
        if not any(fnmatch.fnmatchcase("sts:AssumeRole", a) for a in actions):
            continue
        services = _listify((statement.get("Principal") or {}).get("Service", []))
        if service not in services:
            continue
        if not _condition_holds(statement.get("Condition") or {}, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


class AccountView(Emulator):
    """One account and region of a running :class:`Emulator` (see :meth:`Emulator.view`)."""

    def __init__(self, parent: Emulator, account_id: str, region: str, admin: Credentials) -> None:
        root: Emulator = parent.root if isinstance(parent, AccountView) else parent
        super().__init__(region=region, enforce_iam=root.enforce_iam)
        self.root: Emulator = root
        self.account_id = account_id
        self._endpoint = root.endpoint_url
        self._admin = admin
        self._session = root._session

    def start(self) -> Emulator:
        raise RuntimeError("an account view shares its emulator's server: start the emulator")

    def stop(self) -> None:
        self._clients.clear()
