"""Deploy ``template.yaml`` into the emulator the way CloudFormation would, leaving nothing out.

1. The code artifact: ``src/`` zipped as ``sam build`` ships it (``CodeUri: src/``), uploaded to an
   artifacts bucket; every function's ``CodeUri`` points at it.
2. The SAM transform (:func:`emulator.template.translate`) with the stack's parameter values.
3. ``cloudformation:CreateStack`` of the translated template (uploaded, ``TemplateURL``).
4. Every resource of the translated template that moto's CloudFormation skipped (it logs "No Moto
   CloudFormation support" and moves on) is made through its service API from its own resolved
   properties, in dependency order. A skipped type without a maker here fails the deploy: no
   resource is silently missing.
5. Properties moto's CloudFormation drops from resources it does make are applied through the
   API (IAM role ``ManagedPolicyArns``, DynamoDB ``TimeToLiveSpecification``, Lambda
   ``TracingConfig``). Inline role policies and KMS key policies are written again as JSON (with
   ``Version`` where SAM wrote none): moto's CloudFormation stores them as Python objects, which
   its IAM checker cannot read and on which its KMS ``DescribeKey`` fails.

Everything done in steps 4 and 5 is listed in :attr:`Deployment.api_changes`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import Shape

from emulator.server import Emulator
from emulator.template import Resolver, UnsupportedIntrinsic, load_sam, parameter_values, translate

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
TEMPLATE: Final = REPO_ROOT / "template.yaml"
SOURCE: Final = REPO_ROOT / "src"
STACK_NAME: Final = "tagpatch"
SKIPPED: Final = "skipped resource"
DROPPED: Final = "dropped property"
NORMALISED: Final = "normalised"
NOT_REPRODUCED: Final = "not reproduced"
_CAPABILITIES: Final = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_SKIP_WARNING: Final = r"Tried to parse .* not supported by moto"
_SUB_NAMES: Final = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")


class DeployError(RuntimeError):
    """The stack did not deploy completely."""


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    type: str
    physical_id: str
    made_by: str  # "cloudformation" or "api"


@dataclass(frozen=True)
class ApiChange:
    """Something the deploy did through a service API because moto's CloudFormation did not."""

    logical_id: str
    type: str
    kind: str  # SKIPPED, DROPPED, NORMALISED or NOT_REPRODUCED
    what: str

    def line(self) -> str:
        return f"{self.logical_id} ({self.type}): {self.what}"


@dataclass(frozen=True)
class CodeArtifact:
    bucket: str
    key: str
    sha256: str
    files: tuple[str, ...]


@dataclass
class Deployment:
    stack_name: str
    stack_id: str
    template: dict[str, Any]
    parameters: dict[str, str]
    pseudo: dict[str, str]
    code: CodeArtifact
    resources: dict[str, StackResource] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    api_changes: list[ApiChange] = field(default_factory=list)
    #: the resolved template properties of every resource made through its API (logical id ->)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        try:
            return self.resources[logical_id].physical_id
        except KeyError:
            raise KeyError(f"{logical_id} is not a resource of stack {self.stack_name}") from None

    def has(self, logical_id: str) -> bool:
        return logical_id in self.resources

    def of_type(self, resource_type: str) -> list[StackResource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    @property
    def functions(self) -> dict[str, str]:
        """Logical id -> function name of every deployed Lambda function."""
        return {r.logical_id: r.physical_id for r in self.of_type("AWS::Lambda::Function")}

    def function_logical_id(self, name_or_arn: str) -> str:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        for logical_id, physical in self.functions.items():
            if physical == name:
                return logical_id
        raise KeyError(f"no function {name_or_arn} in stack {self.stack_name}")

    def changes(self, kind: str) -> list[ApiChange]:
        return [change for change in self.api_changes if change.kind == kind]


# --------------------------------------------------------------------------------------------
# Code artifact
# --------------------------------------------------------------------------------------------


def build_artifact(source: Path) -> tuple[bytes, tuple[str, ...]]:
    """``source`` zipped as ``sam build`` copies a CodeUri without requirements (no bytecode)."""
    buffer = io.BytesIO()
    names: list[str] = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if not path.is_file() or any(
                part == "__pycache__" or part.endswith(".egg-info") for part in relative.parts
            ):
                continue
            if path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
            names.append(relative.as_posix())
    return buffer.getvalue(), tuple(names)


def _upload(emulator: Emulator, bucket: str, key: str, body: bytes) -> None:
    s3 = emulator.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        if emulator.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": emulator.region})
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _code_uris(sam_template: dict[str, Any]) -> set[str]:
    uris = {str(r.get("Properties", {}).get("CodeUri", "")) for r in _functions(sam_template)}
    global_uri = sam_template.get("Globals", {}).get("Function", {}).get("CodeUri")
    if global_uri:
        uris.add(str(global_uri))
    return {uri for uri in uris if uri}


def _functions(sam_template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r for r in sam_template.get("Resources", {}).values() if r.get("Type") == "AWS::Serverless::Function"
    ]


# --------------------------------------------------------------------------------------------
# Request coercion (CloudFormation properties -> API parameters)
# --------------------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {}


def _input_shape(service: str, operation: str) -> Shape:
    model = _MODELS.get(service)
    if model is None:
        model = _MODELS[service] = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    if shape is None:
        raise ValueError(f"{service}:{operation} takes no input")
    return shape


def _coerce(shape: Shape, value: Any) -> Any:
    """``value`` as ``shape`` wants it (CloudFormation gives numbers and booleans as strings)."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {k: _coerce(members[k], v) for k, v in dict(value).items() if k in members}
    if kind == "list":
        return [_coerce(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {str(k): _coerce(shape.value, v) for k, v in dict(value).items()}  # type: ignore[attr-defined]
    if kind in {"integer", "long"}:
        return int(value)
    if kind in {"float", "double"}:
        return float(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)
    return value


def api_params(service: str, operation: str, properties: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """``properties`` (and ``extra``) restricted to and typed as the operation's input members."""
    shape = _input_shape(service, operation)
    return dict(_coerce(shape, {**properties, **extra}))


# --------------------------------------------------------------------------------------------
# Deploy
# --------------------------------------------------------------------------------------------


def deploy(
    emulator: Emulator,
    *,
    template_path: Path = TEMPLATE,
    stack_name: str = STACK_NAME,
    parameters: Mapping[str, str] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Deployment:
    """Deploy ``template_path`` as ``stack_name``; ``edit`` may change the SAM template first."""
    with warnings.catch_warnings():
        # moto warns once per skipped resource type (on every parse of the stack); step 4 answers it.
        warnings.filterwarnings("ignore", message=_SKIP_WARNING, category=UserWarning)
        return _deploy(emulator, template_path, stack_name, parameters or {}, edit)


def _deploy(
    emulator: Emulator,
    template_path: Path,
    stack_name: str,
    parameters: Mapping[str, str],
    edit: Callable[[dict[str, Any]], None] | None,
) -> Deployment:
    sam_template = load_sam(template_path)
    if edit is not None:
        edit(sam_template)
    values = parameter_values(sam_template, parameters)
    pseudo = _pseudo(emulator, stack_name)

    uris = _code_uris(sam_template)
    sources = {(template_path.parent / uri).resolve() for uri in uris}
    if uris and sources != {SOURCE}:
        raise DeployError(f"every function's CodeUri must be the repository's src/ (found {sorted(uris)})")
    body, names = build_artifact(SOURCE)
    sha = hashlib.sha256(body).hexdigest()
    code = CodeArtifact(artifact_bucket(emulator), f"{stack_name}/{sha}.zip", sha, names)
    _upload(emulator, code.bucket, code.key, body)
    for function in _functions(sam_template):
        function.setdefault("Properties", {})["CodeUri"] = f"s3://{code.bucket}/{code.key}"

    template = translate(sam_template, values, pseudo)
    return _create(emulator, template, stack_name, values, pseudo, code)


def deploy_template(
    emulator: Emulator, template: Mapping[str, Any], *, stack_name: str, parameters: Mapping[str, str]
) -> Deployment:
    """Deploy a plain CloudFormation ``template`` (no transform; functions' ``Code`` in S3), as
    CloudFormation creates a stack from a template body: a StackSet's stack instance, for one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIP_WARNING, category=UserWarning)
        if template.get("Transform"):
            raise DeployError("deploy_template takes a template without a transform (package it first)")
        copied = json.loads(json.dumps(template))
        values = parameter_values(copied, parameters)
        pseudo = _pseudo(emulator, stack_name)
        code = _packaged_code(emulator, copied, values, pseudo)
        return _create(emulator, copied, stack_name, values, pseudo, code)


def _pseudo(emulator: Emulator, stack_name: str) -> dict[str, str]:
    return {
        "AWS::AccountId": emulator.account_id,
        "AWS::Region": emulator.region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
    }


def artifact_bucket(emulator: Emulator) -> str:
    """The emulator's own bucket of deploy artifacts in the account and region of ``emulator``."""
    suffix = "" if emulator.region == "us-east-1" else f"-{emulator.region}"
    return f"tagpatch-emulator-artifacts-{emulator.account_id}{suffix}"


def _packaged_code(
    emulator: Emulator, template: dict[str, Any], values: Mapping[str, str], pseudo: Mapping[str, str]
) -> CodeArtifact:
    """The one code object every function of a packaged template names (read as the deployer)."""

    def unresolved(*_: Any) -> Any:
        raise UnsupportedIntrinsic("a function's Code may refer to parameters and pseudo parameters only")

    resolver = Resolver(template, values, pseudo, unresolved, unresolved)
    locations = set()
    for spec in template.get("Resources", {}).values():
        if spec.get("Type") != "AWS::Lambda::Function":
            continue
        code = resolver.resolve(spec.get("Properties", {}).get("Code", {}))
        if "S3Bucket" not in code:
            raise DeployError(f"a packaged function's Code must be in S3 (found {sorted(code)})")
        locations.add((str(code["S3Bucket"]), str(code["S3Key"])))
    if not locations:
        return CodeArtifact("", "", "", ())
    if len(locations) > 1:
        raise DeployError(f"the functions' code is in more than one object: {sorted(locations)}")
    ((bucket, key),) = locations
    body = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = tuple(archive.namelist())
    return CodeArtifact(bucket, key, hashlib.sha256(body).hexdigest(), names)


def _create(  # noqa: PLR0917 - the parts of one stack, each made by the caller
    emulator: Emulator,
    template: dict[str, Any],
    stack_name: str,
    values: dict[str, str],
    pseudo: dict[str, str],
    code: CodeArtifact,
) -> Deployment:
    bucket = artifact_bucket(emulator)
    template_key = f"{stack_name}/{uuid.uuid4().hex}.template.json"
    _upload(emulator, bucket, template_key, json.dumps(template).encode("utf-8"))

    cloudformation = emulator.client("cloudformation")
    created = cloudformation.create_stack(
        StackName=stack_name,
        TemplateURL=f"https://s3.amazonaws.com/{bucket}/{template_key}",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())],
        Capabilities=_CAPABILITIES,
    )
    stack = cloudformation.describe_stacks(StackName=created["StackId"])["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=created["StackId"])["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events[:10]]
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: {reasons}")

    pseudo["AWS::StackId"] = created["StackId"]
    deployment = Deployment(stack_name, created["StackId"], template, values, pseudo, code)
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=created["StackId"]):
        for summary in page["StackResourceSummaries"]:
            if not summary.get("LogicalResourceId"):
                continue  # moto lists every resource it skipped as an empty summary
            deployment.resources[summary["LogicalResourceId"]] = StackResource(
                summary["LogicalResourceId"],
                summary["ResourceType"],
                summary["PhysicalResourceId"],
                "cloudformation",
            )
    _Completer(emulator, deployment).complete()
    deployment.outputs = _outputs(emulator, deployment)
    return deployment


def _outputs(emulator: Emulator, deployment: Deployment) -> dict[str, str]:
    """The stack's outputs: moto's, and those moto could not evaluate (an output that refers to a
    resource it skipped) resolved from the template like the skipped resources."""
    described = emulator.client("cloudformation").describe_stacks(StackName=deployment.stack_id)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", []) if o.get("OutputValue")}
    completer = _Completer(emulator, deployment)
    for key, spec in deployment.template.get("Outputs", {}).items():
        if key in outputs:
            continue
        if spec.get("Condition") and not completer.resolver.condition(spec["Condition"]):
            continue
        value = completer.resolver.resolve(spec.get("Value"))
        outputs[key] = ",".join(value) if isinstance(value, list) else str(value)
        deployment.api_changes.append(
            ApiChange(key, "Output", NORMALISED, "evaluated by the emulator (moto's CloudFormation did not)")
        )
    return outputs


class _Completer:
    """Makes what moto's CloudFormation left out, from the template's own properties."""

    def __init__(self, emulator: Emulator, deployment: Deployment) -> None:
        self.emulator = emulator
        self.deployment = deployment
        self.template = deployment.template
        self._attributes: dict[tuple[str, str], Any] = {}
        self.resolver = Resolver(
            self.template, deployment.parameters, deployment.pseudo, deployment.physical_id, self._attribute
        )
        self._makers: dict[str, Callable[[str, dict[str, Any]], tuple[str, str]]] = {
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::SNS::TopicPolicy": self._topic_policy,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::Lambda::EventInvokeConfig": self._event_invoke_config,
            "AWS::Scheduler::Schedule": self._schedule,
            "AWS::SSM::MaintenanceWindow": self._maintenance_window,
            "AWS::Events::EventBusPolicy": self._event_bus_policy,
            "AWS::CloudFormation::StackSet": self._stack_set,
        }

    def client(self, service: str) -> Any:
        return self.emulator.client(service)

    # -- steps ----------------------------------------------------------------------------------
    def complete(self) -> None:
        self._keys()
        missing = [
            logical_id
            for logical_id in self.template["Resources"]
            if logical_id not in self.deployment.resources and self.resolver.included(logical_id)
        ]
        unsupported = sorted({self.template["Resources"][m]["Type"] for m in missing} - set(self._makers))
        if unsupported:
            raise DeployError(
                f"moto skipped resource types the emulator cannot make: {', '.join(unsupported)}"
            )
        for logical_id in self._dependency_order(missing):
            spec = self.template["Resources"][logical_id]
            properties = self.resolver.resolve(spec.get("Properties", {}))
            self.deployment.properties[logical_id] = properties
            physical_id, what = self._makers[spec["Type"]](logical_id, properties)
            self.deployment.resources[logical_id] = StackResource(
                logical_id, spec["Type"], physical_id, "api"
            )
            self.deployment.api_changes.append(ApiChange(logical_id, spec["Type"], SKIPPED, what))
        self._roles()
        self._tables()
        self._functions()

    def _dependency_order(self, missing: list[str]) -> list[str]:
        pending = set(missing)
        ordered: list[str] = []
        while pending:
            ready = sorted(
                logical_id
                for logical_id in pending
                if not (_dependencies(self.template["Resources"][logical_id]) & pending)
            )
            if not ready:
                raise DeployError(f"dependency cycle among {sorted(pending)}")
            ordered.extend(ready)
            pending.difference_update(ready)
        return ordered

    # -- attributes -----------------------------------------------------------------------------
    def _attribute(self, logical_id: str, attribute: str) -> Any:
        key = (logical_id, attribute)
        if key not in self._attributes:
            self._attributes[key] = self._read_attribute(logical_id, attribute)
        return self._attributes[key]

    def _read_attribute(self, logical_id: str, attribute: str) -> Any:
        resource = self.deployment.resources[logical_id]
        pid, kind = resource.physical_id, resource.type
        region, account = self.emulator.region, self.emulator.account_id
        if kind == "AWS::SQS::Queue":
            if attribute == "Arn":
                attrs = self.client("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])
                return attrs["Attributes"]["QueueArn"]
            if attribute == "QueueName":
                return pid.rsplit("/", 1)[-1]
            if attribute == "QueueUrl":
                return pid
        if kind == "AWS::SNS::Topic" and attribute in {"TopicArn", "TopicName"}:
            return pid if attribute == "TopicArn" else pid.rsplit(":", 1)[-1]
        if kind == "AWS::S3::Bucket" and attribute in {"Arn", "DomainName"}:
            return f"arn:aws:s3:::{pid}" if attribute == "Arn" else f"{pid}.s3.amazonaws.com"
        if kind == "AWS::Events::EventBus" and attribute in {"Arn", "Name"}:
            bus = self.client("events").describe_event_bus(Name=pid.rsplit("/", 1)[-1])
            return bus[attribute]
        if kind == "AWS::CloudFormation::StackSet" and attribute == "StackSetId":
            return pid
        if kind == "AWS::Events::Rule" and attribute == "Arn":
            bus = self.template["Resources"][logical_id].get("Properties", {}).get("EventBusName", "default")
            return self.client("events").describe_rule(Name=pid, EventBusName=self.resolver.resolve(bus))[
                "Arn"
            ]
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return self.client("lambda").get_function_configuration(FunctionName=pid)["FunctionArn"]
        if kind == "AWS::IAM::Role" and attribute in {"Arn", "RoleId"}:
            return self.client("iam").get_role(RoleName=pid)["Role"][attribute]
        if kind == "AWS::DynamoDB::Table" and attribute in {"Arn", "StreamArn"}:
            table = self.client("dynamodb").describe_table(TableName=pid)["Table"]
            return table["TableArn"] if attribute == "Arn" else table["LatestStreamArn"]
        if kind == "AWS::KMS::Key" and attribute in {"Arn", "KeyId"}:
            return f"arn:aws:kms:{region}:{account}:key/{pid}" if attribute == "Arn" else pid
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:aws:logs:{region}:{account}:log-group:{pid}:*"
        raise UnsupportedIntrinsic(
            f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not evaluated by the emulator"
        )

    # -- skipped resources ------------------------------------------------------------------------
    def _generated_name(self, logical_id: str) -> str:
        return f"{self.deployment.stack_name}-{logical_id}-{uuid.uuid4().hex[:12].upper()}"

    def _subscription(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        attribute_names = (
            "DeliveryPolicy",
            "FilterPolicy",
            "FilterPolicyScope",
            "RawMessageDelivery",
            "RedrivePolicy",
            "ReplayPolicy",
            "SubscriptionRoleArn",
        )
        attributes = {
            name: (json.dumps(props[name]) if isinstance(props[name], dict) else props[name])
            for name in attribute_names
            if name in props
        }
        params = api_params(
            "sns",
            "Subscribe",
            {k: props[k] for k in ("TopicArn", "Protocol", "Endpoint") if k in props},
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        arn = self.client("sns").subscribe(**params)["SubscriptionArn"]
        detail = ", ".join(
            f"{k}={attributes[k] if k == 'RawMessageDelivery' else '...'}" for k in sorted(attributes)
        )
        return (
            arn,
            f"sns:Subscribe {props['Protocol']} {props.get('Endpoint')} to {props['TopicArn']} ({detail})",
        )

    def _queue_policy(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        policy = json.dumps(props["PolicyDocument"])
        sqs = self.client("sqs")
        for url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        names = ", ".join(url.rsplit("/", 1)[-1] for url in props["Queues"])
        return self._generated_name(logical_id), f"sqs:SetQueueAttributes Policy on {names}"

    def _topic_policy(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        policy = json.dumps(props["PolicyDocument"])
        sns = self.client("sns")
        for arn in props["Topics"]:
            sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=policy)
        names = ", ".join(arn.rsplit(":", 1)[-1] for arn in props["Topics"])
        return self._generated_name(logical_id), f"sns:SetTopicAttributes Policy on {names}"

    def _bucket_policy(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        self.client("s3").put_bucket_policy(
            Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"])
        )
        return str(props["Bucket"]), f"s3:PutBucketPolicy on {props['Bucket']}"

    def _alarm(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        name = props.get("AlarmName") or self._generated_name(logical_id)
        self.client("cloudwatch").put_metric_alarm(
            **api_params("cloudwatch", "PutMetricAlarm", props, AlarmName=name)
        )
        return name, f"cloudwatch:PutMetricAlarm {name} ({props.get('Namespace')} {props.get('MetricName')})"

    def _event_invoke_config(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        params = api_params("lambda", "PutFunctionEventInvokeConfig", props)
        self.client("lambda").put_function_event_invoke_config(**params)
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "-")
        what = (
            f"lambda:PutFunctionEventInvokeConfig {props['FunctionName']}:"
            f"{props.get('Qualifier', '$LATEST')} "
            f"(retries {props.get('MaximumRetryAttempts')}, on failure -> {on_failure})"
        )
        return f"{props['FunctionName']}:{props.get('Qualifier', '$LATEST')}", what

    def _schedule(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        name = props.get("Name") or self._generated_name(logical_id)[:64]
        self.client("scheduler").create_schedule(
            **api_params("scheduler", "CreateSchedule", props, Name=name)
        )
        return name, f"scheduler:CreateSchedule {name} ({props.get('ScheduleExpression')})"

    def _maintenance_window(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        window_id = self.client("ssm").create_maintenance_window(
            **api_params("ssm", "CreateMaintenanceWindow", props)
        )["WindowId"]
        return window_id, f"ssm:CreateMaintenanceWindow {props.get('Name')} ({props.get('Schedule')})"

    def _event_bus_policy(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        """One statement of the bus's policy (``StatementId``), as the resource's handler adds it."""
        bus = str(props.get("EventBusName") or "default")
        sid = str(props["StatementId"])
        statement = dict(props.get("Statement") or {})
        if not statement:
            statement = {
                "Effect": "Allow",
                "Principal": {"AWS": props["Principal"]},
                "Action": props["Action"],
            }
            if props.get("Condition"):
                condition = props["Condition"]
                statement["Condition"] = {condition["Type"]: {condition["Key"]: condition["Value"]}}
        statement["Sid"] = sid
        if "Resource" not in statement:
            statement["Resource"] = self.client("events").describe_event_bus(Name=bus)["Arn"]
        events = self.client("events")
        events.put_permission(
            EventBusName=bus, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        )
        return (
            f"{bus}|{sid}",
            f"events:PutPermission {sid} on event bus {bus} ({json.dumps(statement.get('Condition', {}))})",
        )

    def _stack_set(self, logical_id: str, props: dict[str, Any]) -> tuple[str, str]:
        """``cloudformation:CreateStackSet`` with the resource's properties; its stack instances
        (``StackInstancesGroup``) are the StackSets service's work: :mod:`emulator.stacksets`."""
        params = api_params(
            "cloudformation",
            "CreateStackSet",
            {k: v for k, v in props.items() if k != "Parameters"},
            Parameters=[
                {"ParameterKey": p["ParameterKey"], "ParameterValue": p["ParameterValue"]}
                for p in props.get("Parameters", [])
            ],
        )
        stack_set_id = self.client("cloudformation").create_stack_set(**params)["StackSetId"]
        groups = props.get("StackInstancesGroup", [])
        return (
            str(stack_set_id),
            f"cloudformation:CreateStackSet {props['StackSetName']} ({props.get('PermissionModel')}, "
            f"AutoDeployment {json.dumps(props.get('AutoDeployment', {}))}, "
            f"CallAs {props.get('CallAs', 'SELF')}); "
            f"its {len(groups)} StackInstancesGroup(s) are deployed by emulator.stacksets",
        )

    # -- dropped properties -----------------------------------------------------------------------
    def _included(self, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (logical_id, spec)
            for logical_id, spec in self.template["Resources"].items()
            if spec["Type"] == resource_type and logical_id in self.deployment.resources
        ]

    def _roles(self) -> None:
        iam = self.client("iam")
        for logical_id, spec in self._included("AWS::IAM::Role"):
            role = self.deployment.physical_id(logical_id)
            props = self.resolver.resolve(spec.get("Properties", {}))
            attached = {
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
            }
            wanted = [arn for arn in props.get("ManagedPolicyArns", []) if arn not in attached]
            for arn in wanted:
                iam.attach_role_policy(RoleName=role, PolicyArn=arn)
            if wanted:
                names = ", ".join(arn.rsplit("/", 1)[-1] for arn in wanted)
                self.deployment.api_changes.append(
                    ApiChange(
                        logical_id, spec["Type"], DROPPED, f"iam:AttachRolePolicy ManagedPolicyArns {names}"
                    )
                )
            inline: list[str] = []
            for policy in props.get("Policies", []):
                document = dict(policy["PolicyDocument"])
                document.setdefault("Version", "2012-10-17")
                iam.put_role_policy(
                    RoleName=role, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
                )
                inline.append(policy["PolicyName"])
            if inline:
                self.deployment.api_changes.append(
                    ApiChange(
                        logical_id,
                        spec["Type"],
                        NORMALISED,
                        f"iam:PutRolePolicy {', '.join(inline)} as JSON "
                        "(Version 2012-10-17 where the template has none)",
                    )
                )

    def _keys(self) -> None:
        kms = self.client("kms")
        for logical_id, spec in self._included("AWS::KMS::Key"):
            policy = self.resolver.resolve(spec.get("Properties", {})).get("KeyPolicy")
            if not policy:
                continue
            kms.put_key_policy(
                KeyId=self.deployment.physical_id(logical_id), PolicyName="default", Policy=json.dumps(policy)
            )
            self.deployment.api_changes.append(
                ApiChange(logical_id, spec["Type"], NORMALISED, "kms:PutKeyPolicy default as JSON")
            )

    def _tables(self) -> None:
        dynamodb = self.client("dynamodb")
        for logical_id, spec in self._included("AWS::DynamoDB::Table"):
            props = self.resolver.resolve(spec.get("Properties", {}))
            ttl = props.get("TimeToLiveSpecification")
            if not ttl or str(ttl.get("Enabled")).lower() != "true":
                continue
            table = self.deployment.physical_id(logical_id)
            status = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if status.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
                continue
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
            self.deployment.api_changes.append(
                ApiChange(
                    logical_id, spec["Type"], DROPPED, f"dynamodb:UpdateTimeToLive {ttl['AttributeName']}"
                )
            )

    def _functions(self) -> None:
        lambda_ = self.client("lambda")
        for logical_id, spec in self._included("AWS::Lambda::Function"):
            props = self.resolver.resolve(spec.get("Properties", {}))
            name = self.deployment.physical_id(logical_id)
            config = lambda_.get_function_configuration(FunctionName=name)
            mode = props.get("TracingConfig", {}).get("Mode")
            if mode and config.get("TracingConfig", {}).get("Mode") != mode:
                lambda_.update_function_configuration(FunctionName=name, TracingConfig={"Mode": mode})
                self.deployment.api_changes.append(
                    ApiChange(
                        logical_id,
                        spec["Type"],
                        DROPPED,
                        f"lambda:UpdateFunctionConfiguration TracingConfig {mode}",
                    )
                )
            layers = props.get("Layers", [])
            if layers and not config.get("Layers"):
                self.deployment.api_changes.append(
                    ApiChange(
                        logical_id,
                        spec["Type"],
                        NOT_REPRODUCED,
                        "Layers (public layer of another account; the in-process runtime uses the local "
                        f"Powertools instead): {', '.join(layers)}",
                    )
                )


def _dependencies(resource: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    depends = resource.get("DependsOn", [])
    found.update([depends] if isinstance(depends, str) else depends)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and isinstance(value, str):
                    found.add(value)
                elif key == "Fn::GetAtt":
                    found.add(value.split(".", 1)[0] if isinstance(value, str) else str(value[0]))
                elif key == "Fn::Sub":
                    text = value if isinstance(value, str) else value[0]
                    for match in _SUB_NAMES.findall(text):
                        found.add(match.split(".", 1)[0])
                    if not isinstance(value, str):
                        walk(value[1])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resource.get("Properties", {}))
    return found
