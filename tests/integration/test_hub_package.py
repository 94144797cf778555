"""hub/package.py against moto: staging buckets per Region, their policy, the packaged member template.

A service-managed StackSet takes no transform, so what the hub deploys is this package: the
translated template.yaml whose functions take their code from the bucket of their own Region.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cfnlint.api import ManualArgs, lint
from hub.package import (
    MEMBER_TEMPLATE,
    Packaged,
    PackageError,
    bucket_policy,
    code_archive,
    main,
    package,
)
from moto import mock_aws

from emulator import moto_ext
from emulator.template import load_sam

PREFIX = "tagpatch-staging-example"
ORG = "o-a1b2c3d4e5"
REGIONS = ("eu-west-1", "us-east-1")
HUB_REGION = "eu-west-1"


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    # moto alone treats every condition operator but StringEquals as matching, so the buckets'
    # DenyInsecureTransport would deny every request; the emulator's patches evaluate it as AWS
    # does for an SDK's TLS request (emulator/moto_ext.py).
    with mock_aws():
        moto_ext.activate(enforce_iam=False)
        try:
            yield boto3.Session(region_name=HUB_REGION)
        finally:
            moto_ext.deactivate()


@pytest.fixture
def packaged(session: boto3.Session) -> Packaged:
    return package(session, PREFIX, REGIONS, ORG)


def _s3(session: boto3.Session, region: str = HUB_REGION) -> Any:
    return session.client("s3", region_name=region)


def _object(session: boto3.Session, bucket: str, key: str) -> bytes:
    body: bytes = _s3(session).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _uploaded_template(session: boto3.Session, packaged: Packaged) -> dict[str, Any]:
    loaded = json.loads(_object(session, packaged.template_bucket, packaged.template_key))
    assert isinstance(loaded, dict)
    return loaded


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


# --------------------------------------------------------------------------------------------
# Buckets
# --------------------------------------------------------------------------------------------
def test_one_staging_bucket_per_member_region_in_that_region(
    session: boto3.Session, packaged: Packaged
) -> None:
    s3 = _s3(session)

    assert packaged.buckets == {region: f"{PREFIX}-{region}" for region in REGIONS}
    for region, bucket in packaged.buckets.items():
        location = s3.get_bucket_location(Bucket=bucket)["LocationConstraint"]
        assert (location or "us-east-1") == region
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == sorted(packaged.buckets.values())


def test_the_hub_region_gets_a_bucket_for_the_template_even_without_members(session: boto3.Session) -> None:
    packaged = package(session, PREFIX, ["us-east-1"], ORG, hub_region="eu-central-1")

    assert packaged.buckets == {"us-east-1": f"{PREFIX}-us-east-1", "eu-central-1": f"{PREFIX}-eu-central-1"}
    hub_bucket = f"{PREFIX}-eu-central-1"
    keys = [o["Key"] for o in _s3(session).list_objects_v2(Bucket=hub_bucket).get("Contents", [])]
    # the template only: no member function runs in the hub's Region
    assert keys == [packaged.template_key]
    assert packaged.template_url.startswith(f"https://{hub_bucket}.s3.eu-central-1.amazonaws.com/")


def test_buckets_are_private_encrypted_and_readable_by_the_organization_only_over_tls(
    session: boto3.Session, packaged: Packaged
) -> None:
    s3 = _s3(session)

    for bucket in packaged.buckets.values():
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        assert policy == bucket_policy(bucket, ORG)
        read, tls = policy["Statement"]
        # Then: only GetObject is allowed, to anyone of the organization, under the package's prefix
        assert (read["Effect"], read["Principal"], read["Action"]) == ("Allow", "*", "s3:GetObject")
        assert read["Resource"] == f"arn:aws:s3:::{bucket}/tagpatch/*"
        assert read["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}
        # And every request not over TLS is denied
        assert (tls["Effect"], tls["Action"]) == ("Deny", "s3:*")
        assert tls["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------
def test_the_code_is_the_tagpatch_package_in_every_member_region(
    session: boto3.Session, packaged: Packaged
) -> None:
    body = code_archive()

    assert packaged.code_sha256 == hashlib.sha256(body).hexdigest()
    assert packaged.code_key == f"tagpatch/code-{packaged.code_sha256}.zip"
    for region in REGIONS:
        assert _object(session, packaged.buckets[region], packaged.code_key) == body
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert "tagpatch/handlers/reconciler.py" in names
    assert "tagpatch/hub/records.py" in names
    assert all(name.startswith("tagpatch/") for name in names)
    assert not [name for name in names if name.endswith(".pyc") or "__pycache__" in name]


def test_the_archive_is_the_same_bytes_every_time() -> None:
    assert code_archive() == code_archive()


# --------------------------------------------------------------------------------------------
# The packaged member template
# --------------------------------------------------------------------------------------------
def test_the_template_is_plain_cloudformation_with_each_functions_code_in_its_regions_bucket(
    session: boto3.Session, packaged: Packaged
) -> None:
    template = _uploaded_template(session, packaged)
    sam_functions = [
        name
        for name, resource in load_sam(MEMBER_TEMPLATE)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]

    # No transform and nothing only the transform understands
    assert template == packaged.template
    assert "Transform" not in template
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]
    assert "CodeUri" not in set(_keys(template))
    # Every function, and its code in the bucket of the Region the stack runs in
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert sorted(functions) == sorted(sam_functions)
    for name, function in functions.items():
        assert function["Properties"]["Code"] == {
            "S3Bucket": {"Fn::Sub": f"{PREFIX}-${{AWS::Region}}"},
            "S3Key": packaged.code_key,
        }, name
        assert function["Properties"]["Runtime"] == "python3.13", name


def test_the_template_keeps_every_parameter_and_condition(session: boto3.Session, packaged: Packaged) -> None:
    template = _uploaded_template(session, packaged)
    sam_template = load_sam(MEMBER_TEMPLATE)

    assert template["Parameters"] == json.loads(json.dumps(sam_template["Parameters"]))
    assert template["Parameters"]["HubEventBusArn"]["Default"] == ""
    assert set(template["Conditions"]) >= {"ForwardToHub", "HasAlertEmail"}
    assert template["Resources"]["HubForwardRule"]["Condition"] == "ForwardToHub"
    assert set(template["Outputs"]) == set(sam_template["Outputs"])


def test_the_template_names_no_region_or_account(session: boto3.Session, packaged: Packaged) -> None:
    # One template serves every Region and account: the translation's own pseudo parameters
    # (us-east-1, 123456789012) must not have been written into it
    text = json.dumps(_uploaded_template(session, packaged))

    assert "us-east-1" not in text
    assert "123456789012" not in text
    assert "placeholder" not in text


def test_cfn_lint_finds_no_error_in_the_template(session: boto3.Session, packaged: Packaged) -> None:
    text = json.dumps(_uploaded_template(session, packaged))

    matches = lint(text, config=ManualArgs(regions=list(REGIONS)))

    errors = [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []


def test_the_template_url_points_at_the_hub_regions_bucket(packaged: Packaged) -> None:
    assert packaged.template_bucket == f"{PREFIX}-{HUB_REGION}"
    assert packaged.template_key.startswith("tagpatch/member-")
    assert packaged.template_url == (
        f"https://{PREFIX}-{HUB_REGION}.s3.{HUB_REGION}.amazonaws.com/{packaged.template_key}"
    )


def _deploy(session: boto3.Session, packaged: Packaged, region: str, hub_bus: str) -> dict[str, str]:
    """The packaged template as a stack instance would run it: CloudFormation, no transform."""
    cloudformation = session.client("cloudformation", region_name=region)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto", category=UserWarning)
        warnings.filterwarnings("ignore", message="No Moto CloudFormation support", category=UserWarning)
        cloudformation.create_stack(
            StackName="tagpatch-member",
            TemplateURL=packaged.template_url,
            Parameters=[{"ParameterKey": "HubEventBusArn", "ParameterValue": hub_bus}],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        (stack,) = cloudformation.describe_stacks(StackName="tagpatch-member")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        summaries = cloudformation.list_stack_resources(StackName="tagpatch-member")["StackResourceSummaries"]
    return {s["LogicalResourceId"]: s["ResourceType"] for s in summaries if s.get("LogicalResourceId")}


@pytest.mark.parametrize(
    ("hub_bus", "forwarding"),
    [("arn:aws:events:eu-west-1:111122223333:event-bus/tagpatch-hub-bus", True), ("", False)],
)
def test_a_member_region_deploys_the_template_with_its_own_regions_code(
    session: boto3.Session, packaged: Packaged, hub_bus: str, forwarding: bool
) -> None:
    # Given the package, deployed in us-east-1 (not the hub's Region)
    deployed = _deploy(session, packaged, "us-east-1", hub_bus)

    # Then every function got the code of us-east-1's bucket (moto leaves CodeSha256 empty when
    # the object is missing), and forwarding exists only with a hub bus to forward to
    functions = session.client("lambda", region_name="us-east-1").list_functions()["Functions"]
    sha = base64.b64encode(bytes.fromhex(packaged.code_sha256)).decode()
    assert len(functions) == len(
        [r for r in packaged.template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    )
    assert {f["CodeSha256"] for f in functions} == {sha}
    forward = {"HubForwardRule", "HubForwardRole", "HubForwardDLQ"}
    assert (forward & set(deployed)) == (forward if forwarding else set())


def test_a_region_without_its_staged_code_gets_functions_without_code(
    session: boto3.Session, packaged: Packaged
) -> None:
    # The negative of the test above: the code is looked up in the stack's own Region's bucket
    _s3(session, "us-east-1").delete_object(Bucket=packaged.buckets["us-east-1"], Key=packaged.code_key)

    _deploy(session, packaged, "us-east-1", "")

    functions = session.client("lambda", region_name="us-east-1").list_functions()["Functions"]
    assert functions
    assert {f["CodeSha256"] for f in functions} == {""}


# --------------------------------------------------------------------------------------------
# Runs again, refuses bad input
# --------------------------------------------------------------------------------------------
def test_a_second_run_uploads_nothing_and_gives_the_same_url(
    session: boto3.Session, packaged: Packaged
) -> None:
    assert len(packaged.uploaded) == len(REGIONS) + 1  # the code per Region, the template once

    again = package(session, PREFIX, REGIONS, ORG)

    assert again.uploaded == ()
    assert again.template_url == packaged.template_url
    for bucket in packaged.buckets.values():
        versions = _s3(session).list_object_versions(Bucket=bucket).get("Versions", [])
        assert len({v["Key"] for v in versions}) == len(versions)  # one version of each object


@pytest.mark.parametrize(
    ("prefix", "regions", "organization_id"),
    [
        ("Tagpatch", REGIONS, ORG),
        ("-tagpatch", REGIONS, ORG),
        ("tagpatch_staging", REGIONS, ORG),
        ("x" * 47, REGIONS, ORG),
        (PREFIX, (), ORG),
        (PREFIX, ("eu-west",), ORG),
        (PREFIX, REGIONS, "o-short"),
        (PREFIX, REGIONS, "123456789012"),
    ],
)
def test_bad_input_is_refused_before_any_request(
    session: boto3.Session, prefix: str, regions: tuple[str, ...], organization_id: str
) -> None:
    with pytest.raises(PackageError):
        package(session, prefix, regions, organization_id)

    assert _s3(session).list_buckets()["Buckets"] == []


def test_the_command_prints_the_template_url(
    session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--bucket-prefix", PREFIX, "--regions", "eu-west-1, us-east-1", "--organization-id", ORG])

    out, err = capsys.readouterr()
    assert code == 0
    (url,) = out.splitlines()
    # the hub Region is the environment's (the sandbox's us-east-1)
    assert url.startswith(f"https://{PREFIX}-us-east-1.s3.us-east-1.amazonaws.com/tagpatch/member-")

    assert err.count("uploaded s3://") == 3  # both Regions' code, the template in us-east-1's bucket
