"""Package the member stack (``template.yaml``) for the hub's service-managed StackSet.

A StackSet with service-managed permissions takes no transform ("Stack sets with service-managed
permissions don't currently support the use of macros in templates", CreateStackSet, Capabilities:
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStackSet.html), so the
member template is handed to it as plain CloudFormation:

1. ``src/tagpatch`` zipped (deterministically: the key names the code's SHA-256), the Lambda code of
   every member function; its dependencies come from the Powertools layer, as with ``sam build``.
2. One staging bucket per member Region, ``<prefix>-<region>``: Lambda takes a function's code only
   from a bucket in the function's Region ("the Amazon S3 bucket must be in the same AWS Region as
   your function", https://docs.aws.amazon.com/lambda/latest/api/API_FunctionCode.html). Public
   access blocked, objects encrypted, readable (``s3:GetObject``) by principals of the organization
   only (``aws:PrincipalOrgID``), every request over TLS only. The code is uploaded to each.
3. ``template.yaml`` translated by samtranslator (the library behind ``AWS::Serverless-2016-10-31``,
   as ``emulator/template.py`` runs it) into plain CloudFormation whose functions' ``Code`` is
   ``{S3Bucket: !Sub "<prefix>-${AWS::Region}", S3Key: <code key>}``: one template for every Region.
4. That template uploaded to the hub Region's bucket; its ``TemplateURL`` is the hub's
   ``MemberTemplateUrl`` parameter.

``python -m hub.package --bucket-prefix P --regions eu-west-1,us-east-1 --organization-id o-...``
(``make hub-package``) prints the TemplateURL; :func:`package` does the same for any boto3 session
(the emulator's demo, the tests against moto).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from emulator.template import load_sam, translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MEMBER_TEMPLATE",
    "PackageError",
    "Packaged",
    "bucket_name",
    "bucket_policy",
    "code_archive",
    "main",
    "member_template",
    "package",
]

ROOT: Final = Path(__file__).resolve().parent.parent
MEMBER_TEMPLATE: Final = ROOT / "template.yaml"
CODE_PACKAGE: Final = ROOT / "src" / "tagpatch"
KEY_PREFIX: Final = "tagpatch"
ORGANIZATION_ID: Final = re.compile(r"^o-[a-z0-9]{10,32}$")
# A bucket name is 3-63 of [a-z0-9.-]; "-<region>" takes up to 16 more ("-ap-southeast-4").
BUCKET_PREFIX: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,44}[a-z0-9]$")
REGION: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_FIXED_TIME: Final = (2020, 1, 1, 0, 0, 0)
# Pseudo parameters for the translation only: the output does not depend on them (the SAM
# transform leaves ${AWS::Region} and friends to CloudFormation), which the tests check.
_PSEUDO: Final = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "tagpatch",
}


class PackageError(ValueError):
    """The arguments cannot make a package (a bad prefix, Region or organization ID)."""


@dataclass(frozen=True)
class Packaged:
    """What :func:`package` uploaded: the TemplateURL to give the hub, and where everything is."""

    template_url: str
    template_bucket: str
    template_key: str
    code_key: str
    code_sha256: str
    buckets: Mapping[str, str]  # Region -> staging bucket (member Regions and the hub Region)
    template: dict[str, Any]  # the processed member template, as uploaded
    uploaded: tuple[str, ...]  # s3://bucket/key of each object this run put (none already there)


def bucket_name(prefix: str, region: str) -> str:
    """The staging bucket of ``region``: ``<prefix>-<region>``."""
    return f"{prefix}-{region}"


def code_archive(package: Path = CODE_PACKAGE) -> bytes:
    """``package`` zipped under its own name, as ``sam build`` ships ``CodeUri: src/`` (no bytecode).

    Entries are sorted with a fixed time, so the same code makes the same bytes and the same key.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package.parent)
            if not path.is_file() or "__pycache__" in relative.parts or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def bucket_policy(bucket: str, organization_id: str, partition: str = "aws") -> dict[str, Any]:
    """Objects readable by the organization's principals only; every request over TLS only."""
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # The member accounts' StackSet execution roles read the code (CreateFunction);
                # aws:PrincipalOrgID is not a public condition, so Block Public Access allows it.
                "Sid": "OrganizationReadsMemberStack",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{arn}/{KEY_PREFIX}/*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization_id}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def member_template(
    bucket_prefix: str, code_key: str, template_path: Path = MEMBER_TEMPLATE
) -> dict[str, Any]:
    """``template_path`` as plain CloudFormation, every function's code in its Region's bucket."""
    sam_template = load_sam(template_path)
    functions = [
        resource
        for resource in sam_template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    placeholder = {"Bucket": "tagpatch-package-placeholder", "Key": code_key}
    for function in functions:
        function.setdefault("Properties", {})["CodeUri"] = dict(placeholder)
    translated = translate(sam_template, {}, _PSEUDO)
    code = {"S3Bucket": {"Fn::Sub": bucket_name(bucket_prefix, "${AWS::Region}")}, "S3Key": code_key}
    lambdas = [r for r in translated["Resources"].values() if r.get("Type") == "AWS::Lambda::Function"]
    if len(lambdas) != len(functions):
        raise PackageError(f"{len(functions)} functions became {len(lambdas)} Lambda functions")
    for function in lambdas:
        function["Properties"]["Code"] = dict(code)
    return translated


def _template_url(bucket: str, region: str, key: str, partition: str) -> str:
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


def _ensure_bucket(s3: S3Client, bucket: str, region: str, policy: Mapping[str, Any]) -> None:
    """The staging bucket, made if missing; its protections and policy (re)applied either way."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise  # 403: the name is another account's bucket
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced")
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                ObjectOwnership="BucketOwnerEnforced",
            )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "TagPatchStaging",
                    "Status": "Enabled",
                    "Filter": {"Prefix": f"{KEY_PREFIX}/"},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _validate(prefix: str, regions: Sequence[str], organization_id: str, hub_region: str) -> None:
    if not BUCKET_PREFIX.fullmatch(prefix):
        raise PackageError(f"bucket prefix {prefix!r}: 3-46 of a-z, 0-9 and '-', no '-' first or last")
    if not regions:
        raise PackageError("no member Region")
    for region in (*regions, hub_region):
        if not REGION.fullmatch(region):
            raise PackageError(f"{region!r} is not a Region name")
    if not ORGANIZATION_ID.fullmatch(organization_id):
        raise PackageError(f"{organization_id!r} is not an organization ID (o-...)")


def package(
    session: boto3.Session,
    prefix: str,
    regions: Sequence[str],
    organization_id: str,
    *,
    hub_region: str | None = None,
    template_path: Path = MEMBER_TEMPLATE,
    code_package: Path = CODE_PACKAGE,
) -> Packaged:
    """Stage the member stack's code in every Region and its template in the hub's Region.

    ``hub_region`` defaults to the session's Region. Objects are content-addressed: a run that
    finds one already staged does not upload it again.
    """
    hub_region = hub_region or session.region_name or ""
    regions = list(dict.fromkeys(regions))  # in order, once each
    _validate(prefix, regions, organization_id, hub_region)

    body = code_archive(code_package)
    code_sha256 = hashlib.sha256(body).hexdigest()
    code_key = f"{KEY_PREFIX}/code-{code_sha256}.zip"
    template = member_template(prefix, code_key, template_path)
    template_body = json.dumps(template, indent=1, sort_keys=True).encode("utf-8")
    template_key = f"{KEY_PREFIX}/member-{hashlib.sha256(template_body).hexdigest()}.json"

    buckets: dict[str, str] = {}
    uploaded: list[str] = []
    for region in dict.fromkeys([*regions, hub_region]):
        bucket = bucket_name(prefix, region)
        partition = session.get_partition_for_region(region)
        s3: S3Client = session.client("s3", region_name=region)
        _ensure_bucket(s3, bucket, region, bucket_policy(bucket, organization_id, partition))
        buckets[region] = bucket
        objects = []
        if region in regions:
            objects.append((code_key, body, "application/zip"))
        if region == hub_region:
            objects.append((template_key, template_body, "application/json"))
        for key, data, content_type in objects:
            if not _exists(s3, bucket, key):
                s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
                uploaded.append(f"s3://{bucket}/{key}")

    template_bucket = buckets[hub_region]
    partition = session.get_partition_for_region(hub_region)
    return Packaged(
        template_url=_template_url(template_bucket, hub_region, template_key, partition),
        template_bucket=template_bucket,
        template_key=template_key,
        code_key=code_key,
        code_sha256=code_sha256,
        buckets=buckets,
        template=template,
        uploaded=tuple(uploaded),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.package",
        description="Stage the member stack for the hub's StackSet; prints its TemplateURL "
        "(the hub's MemberTemplateUrl parameter).",
    )
    parser.add_argument("--bucket-prefix", required=True, help="staging buckets are <prefix>-<region>")
    parser.add_argument("--regions", required=True, help="member Regions, comma-separated")
    parser.add_argument("--organization-id", required=True, help="o-...: who may read the staged objects")
    parser.add_argument("--hub-region", help="Region of the hub stack (default: the AWS profile's)")
    parser.add_argument("--profile", help="AWS profile (default: the environment's)")
    args = parser.parse_args(argv)

    session = boto3.Session(profile_name=args.profile)
    regions = [region.strip() for region in args.regions.split(",") if region.strip()]
    try:
        packaged = package(
            session, args.bucket_prefix, regions, args.organization_id, hub_region=args.hub_region
        )
    except PackageError as error:
        parser.error(str(error))
    for line in packaged.uploaded or ("(everything was already staged)",):
        print(f"uploaded {line}" if line.startswith("s3://") else line, file=sys.stderr)
    print(packaged.template_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
