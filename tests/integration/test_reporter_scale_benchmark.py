"""benchmarks/reporter_scale.py keeps working and keeps measuring against its floors (small sizes)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamo_type

from benchmarks import reporter_scale
from emulator import fake_ssm


def test_the_rows_measure_a_fanned_out_run_against_its_floors() -> None:
    # Given 2,400 instances in 30 groups (batches of up to 20 groups, some groups of 2-3 pages)
    rows = {row["measure"].split(": ", 1)[1]: row for row in reporter_scale.run_reporter_scale(2_400, 30)}

    # Then every row has its figures, every group was recorded, one digest went out
    assert all(set(row) == {"measure", "ours", "floor", "ratio"} for row in rows.values())
    recorded = rows["groups recorded without operator action"]
    assert (recorded["ours"], recorded["floor"]) == (30, 30)
    assert (rows["digests sent"]["ours"], rows["digests sent"]["floor"]) == (1, 1)
    # And the SSM reads are the floor; writes and all calls a little above it
    assert rows["SSM reads"]["ratio"] == 1.0
    assert 1.0 <= rows["DynamoDB BatchWriteItem"]["ratio"] < 1.1
    assert 1.0 < rows["all API calls"]["ratio"] < 1.2
    assert rows["wall on the emulator (s)"]["ours"] > 0
    projected = next(row for measure, row in rows.items() if measure.startswith("projected wall"))
    assert projected["ours"] >= projected["floor"] > 0


def test_measure_counts_the_calls_of_plan_and_batches_exactly() -> None:
    figures = reporter_scale.measure(instances=450, groups=9)

    # 9 groups of 30-75 instances: one batch; per group 1 state and 1 page, 1 listing page
    assert figures["planned"]["batches"] == figures["messages"] == 1
    assert figures["ssm"] == figures["ssm_floor"] == 1 + 9 + 9
    by_operation = figures["by_operation"]
    assert by_operation["sqs:SendMessageBatch"] == 1
    assert by_operation["sns:Publish"] == 1
    # planner: GetItem, Scan, plan BatchWriteItem, PutItem; worker: BatchGetItem, PutItem report,
    # UpdateItem done, UpdateItem claim, Query ledger, UpdateItem digest
    assert by_operation["dynamodb:UpdateItem"] == 3
    assert by_operation["dynamodb:PutItem"] == 2
    # 468 items: floor 19 calls; the batch makes 20 (its LATEST items follow their rows, and 9
    # groups' LATEST cannot fill a last call alone), the plan 1
    assert (figures["write_floor"], figures["plan_writes"], figures["writes"]) == (19, 1, 21)


def test_the_faster_emulator_keeps_moto_s_checks_and_answers() -> None:
    original = dynamo_type.LimitedSizeDict.__setitem__
    with mock_aws(), reporter_scale._faster_emulator():
        fake_ssm.reset()
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="t", Item={"pk": {"S": "small"}, "a": {"S": "x" * 1000}})
        with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
            ddb.put_item(
                TableName="t", Item={"pk": {"S": "big"}, "a": {"S": "x" * 300_000}, "b": {"S": "y" * 150_000}}
            )
        for n, group in enumerate(("web", "db", "web")):
            fake_ssm.seed_instance_patch_state(fake_ssm.make_instance_patch_state(f"i-{n:017x}", group))
        pages = boto3.client("ssm").describe_instance_patch_states_for_patch_group(PatchGroup="web")
        assert [s["InstanceId"] for s in pages["InstancePatchStates"]] == [f"i-{0:017x}", f"i-{2:017x}"]
    assert dynamo_type.LimitedSizeDict.__setitem__ is original


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    reporter_scale.main(["--instances", "60", "--groups", "3"])

    out = capsys.readouterr().out
    assert "Compliance run of 60 instances in 3 groups, fanned out" in out
    assert "planned 3 groups in 1 batches; 1 messages carried out, 0 failed; 3 groups recorded" in out
    assert "SSM reads" in out and "projected wall on AWS" in out
