"""Least privilege and trust as a real account enforces them, where moto is forgiving.

moto evaluates no topic policy and no service-principal trust policy. The emulator does, as AWS
documents them (:mod:`emulator.topic_policy`, :data:`emulator.flows.SSM_ASSUME_ROLE_CONTEXT`):
here the deployed template.yaml meets a forger, a stray subscriber, SSM assuming its roles with the
keys it is documented to send, and roles reaching beyond what their code needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import topic_policy
from emulator.deploy import Deployment, deploy
from emulator.flows import SSM_ASSUME_ROLE_CONTEXT, SSM_PRINCIPAL
from emulator.runtime import LambdaRuntime
from emulator.server import Credentials, Emulator

ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:tagpatch-NotificationTopic-X"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/tagpatch-NotificationRole-X"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:tagpatch-StatusQueue-X"


@dataclass
class Stack:
    emulator: Emulator
    deployment: Deployment
    runtime: LambdaRuntime

    def topic(self) -> str:
        return self.deployment.physical_id("NotificationTopic")

    def assume_as_ssm(self, output: str) -> Credentials:
        return self.emulator.assume_role_as_service(
            self.deployment.outputs[output], SSM_PRINCIPAL, "ssm", SSM_ASSUME_ROLE_CONTEXT
        )

    def user_allowed(self, name: str, *actions: str) -> Credentials:
        iam = self.emulator.client("iam")
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="broad", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Emulator() as emulator:
        deployment = deploy(emulator)
        yield Stack(emulator, deployment, LambdaRuntime(emulator, deployment))


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# --------------------------------------------------------------------------------------------
# Item 13: who may publish to and subscribe to NotificationTopic
# --------------------------------------------------------------------------------------------
def test_a_forged_run_result_is_denied_whatever_the_forgers_iam_policy_allows(stack: Stack) -> None:
    # Given an IAM user of the account whose own policy allows sns:Publish on every topic
    forger = stack.user_allowed("forger", "sns:Publish")
    forged = {"commandId": "c", "instanceId": "i-1", "status": "Success", "eventTime": "2099-01-01T00:00:00Z"}

    # When it publishes a Success to the notification topic
    with pytest.raises(ClientError) as refused:
        stack.emulator.client("sns", forger).publish(TopicArn=stack.topic(), Message=json.dumps(forged))

    # Then SNS refuses it with the topic policy's explicit deny
    assert _code(refused) == "AuthorizationError"
    assert "explicit deny in a resource-based policy" in str(refused.value)


def test_the_notification_role_still_publishes(stack: Stack) -> None:
    notifier = stack.assume_as_ssm("NotificationRoleArn")
    response = stack.emulator.client("sns", notifier).publish(TopicArn=stack.topic(), Message="{}")
    assert response["MessageId"]


def test_even_an_administrator_cannot_publish_or_subscribe_elsewhere(stack: Stack) -> None:
    # Given the deployer's AdministratorAccess identity and a queue of its own
    sns, sqs = stack.emulator.client("sns"), stack.emulator.client("sqs")
    url = sqs.create_queue(QueueName="eavesdropper")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # Then it may neither publish nor subscribe anything but StatusQueue (over sqs)
    with pytest.raises(ClientError) as published:
        sns.publish(TopicArn=stack.topic(), Message="{}")
    with pytest.raises(ClientError) as subscribed:
        sns.subscribe(TopicArn=stack.topic(), Protocol="sqs", Endpoint=arn)
    with pytest.raises(ClientError) as mailed:
        sns.subscribe(TopicArn=stack.topic(), Protocol="email", Endpoint="someone@example.com")
    assert {_code(published), _code(subscribed), _code(mailed)} == {"AuthorizationError"}
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=stack.topic())["Subscriptions"]
    status_queue = stack.emulator.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.physical_id("StatusQueue"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert [s["Endpoint"] for s in subscriptions] == [status_queue]


# --------------------------------------------------------------------------------------------
# Item 17: SSM assumes its roles with the keys it is documented to send
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("output", ["MaintenanceWindowRoleArn", "NotificationRoleArn"])
def test_ssm_can_assume_its_roles_with_the_documented_trust(stack: Stack, output: str) -> None:
    credentials = stack.assume_as_ssm(output)
    assert ":assumed-role/" in credentials.principal


# --------------------------------------------------------------------------------------------
# Items 14 and 16: roles reach no further than their code
# --------------------------------------------------------------------------------------------
def test_the_window_role_cannot_start_automations(stack: Stack) -> None:
    # AmazonSSMMaintenanceWindowRole allowed ssm:StartAutomationExecution of any runbook.
    window = stack.assume_as_ssm("MaintenanceWindowRoleArn")
    with pytest.raises(ClientError) as refused:
        stack.emulator.client("ssm", window).start_automation_execution(DocumentName="AWS-RestartEC2Instance")
    assert _code(refused) == "AccessDeniedException"


def test_the_collector_reads_and_deletes_only_its_queue(stack: Stack) -> None:
    # Given the collector's execution role and another queue of the account
    collector = stack.runtime.credentials("StatusCollectorFunction")
    other = stack.emulator.client("sqs").create_queue(QueueName="another-team")["QueueUrl"]
    sqs = stack.emulator.client("sqs", collector)

    # Then it polls StatusQueue, and nothing else
    sqs.receive_message(QueueUrl=stack.deployment.physical_id("StatusQueue"), WaitTimeSeconds=0)
    with pytest.raises(ClientError) as refused:
        sqs.receive_message(QueueUrl=other, WaitTimeSeconds=0)
    assert _code(refused) == "AccessDeniedException"


# --------------------------------------------------------------------------------------------
# emulator.topic_policy: the evaluation itself
# --------------------------------------------------------------------------------------------
_POLICY: dict[str, Any] = {
    "Statement": [
        {
            "Sid": "OnlyRole",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ROLE}},
        },
        {
            "Sid": "OnlyQueue",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Subscribe",
            "Resource": TOPIC,
            "Condition": {"StringNotEquals": {"sns:Endpoint": QUEUE}},
        },
    ]
}


def _deny(caller: str, action: str = "sns:Publish", **params: str) -> str | None:
    return topic_policy.denying_statement(
        _POLICY, action=action, topic_arn=TOPIC, caller_arn=caller, account_id=ACCOUNT, params=params
    )


def test_a_role_session_is_matched_by_its_role_arn() -> None:
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/tagpatch-NotificationRole-X/RunCommand"
    assert _deny(session) is None
    assert _deny(f"arn:aws:sts::{ACCOUNT}:assumed-role/other/RunCommand") == "OnlyRole"
    assert _deny(f"arn:aws:iam::{ACCOUNT}:user/forger") == "OnlyRole"


def test_subscribe_is_matched_on_its_endpoint() -> None:
    user = f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert _deny(user, "sns:Subscribe", Endpoint=QUEUE, Protocol="sqs") is None
    assert _deny(user, "sns:Subscribe", Endpoint=QUEUE + "-2", Protocol="sqs") == "OnlyQueue"


def test_a_negated_operator_holds_when_the_key_is_absent_and_unknown_operators_raise() -> None:
    user = f"arn:aws:iam::{ACCOUNT}:user/admin"
    # no sns:Endpoint in the request: StringNotEquals is true, as IAM evaluates it
    assert _deny(user, "sns:Subscribe") == "OnlyQueue"
    odd = {"Statement": [{**_POLICY["Statement"][0], "Condition": {"NumericLessThan": {"x": "1"}}}]}
    with pytest.raises(topic_policy.UnsupportedCondition):
        topic_policy.denying_statement(
            odd, action="sns:Publish", topic_arn=TOPIC, caller_arn=user, account_id=ACCOUNT, params={}
        )
