"""boto3 drives thingward's Device Defender API with SigV4, as a user with --endpoint-url would."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("THINGWARD_BIN", ROOT / "target" / "debug" / "thingward"))
KEY_ID = "TWTESTKEY0000000000A"
SECRET = "test-secret-0123456789abcdefghijklmnopqrstuv"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    data = tempfile.mkdtemp(prefix="thingward-boto3-")
    env = dict(os.environ, THINGWARD_ACCESS_KEY_ID=KEY_ID, THINGWARD_SECRET_ACCESS_KEY=SECRET, THINGWARD_LOG="warn")
    proc = subprocess.Popen(
        [str(BINARY), "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("thingward did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def client(endpoint, secret=SECRET):
    return boto3.client(
        "iot",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


BEHAVIOR = {
    "name": "msgs",
    "metric": "aws:num-messages-sent",
    "criteria": {"comparisonOperator": "less-than", "value": {"count": 100}, "durationSeconds": 300},
}


def test_security_profile_lifecycle(server):
    iot = client(server)
    created = iot.create_security_profile(
        securityProfileName="boto:profile-1", securityProfileDescription="from boto3", behaviors=[BEHAVIOR]
    )
    assert created["securityProfileName"] == "boto:profile-1"
    assert created["securityProfileArn"].endswith(":securityprofile/boto:profile-1")
    assert created["ResponseMetadata"]["RequestId"]

    described = iot.describe_security_profile(securityProfileName="boto:profile-1")
    assert described["version"] == 1
    assert described["behaviors"][0]["criteria"]["value"]["count"] == 100
    assert isinstance(described["creationDate"], datetime)

    updated = iot.update_security_profile(
        securityProfileName="boto:profile-1", securityProfileDescription="changed", expectedVersion=1
    )
    assert updated["version"] == 2
    assert updated["securityProfileDescription"] == "changed"
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_security_profile(securityProfileName="boto:profile-1", expectedVersion=1)

    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_security_profile(securityProfileName="boto:profile-1", behaviors=[BEHAVIOR])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_security_profile(
            securityProfileName="bad-op",
            behaviors=[{**BEHAVIOR, "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [1]}}}],
        )

    names = [p["name"] for p in iot.list_security_profiles()["securityProfileIdentifiers"]]
    assert "boto:profile-1" in names

    iot.attach_security_profile(
        securityProfileName="boto:profile-1",
        securityProfileTargetArn="arn:aws:iot:us-east-1:000000000000:all/things",
    )
    targets = iot.list_targets_for_security_profile(securityProfileName="boto:profile-1")
    assert [t["arn"] for t in targets["securityProfileTargets"]] == ["arn:aws:iot:us-east-1:000000000000:all/things"]

    iot.delete_security_profile(securityProfileName="boto:profile-1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_security_profile(securityProfileName="boto:profile-1")


def test_violations_listed_through_boto3(server):
    iot = client(server)
    iot.create_security_profile(securityProfileName="viol", behaviors=[BEHAVIOR])
    iot.attach_security_profile(
        securityProfileName="viol", securityProfileTargetArn="arn:aws:iot:us-east-1:000000000000:all/things"
    )
    # Push a violating cloud-side datapoint through the batch endpoint, signed with the same key.
    body = json.dumps(
        {"datapoints": [{"thingName": "boto-thing", "metric": "aws:num-messages-sent", "value": {"count": 500}}]}
    ).encode()
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=f"{server}/thingward/v1/metrics", data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY_ID, SECRET), "iot", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200

    active = iot.list_active_violations(thingName="boto-thing")["activeViolations"]
    assert len(active) == 1
    assert active[0]["securityProfileName"] == "viol"
    assert active[0]["lastViolationValue"]["count"] == 500

    now = datetime.now(timezone.utc)
    events = iot.list_violation_events(startTime=now - timedelta(hours=1), endTime=now + timedelta(hours=1),
                                       thingName="boto-thing")["violationEvents"]
    assert [e["violationEventType"] for e in events] == ["in-alarm"]

    iot.put_verification_state_on_violation(violationId=active[0]["violationId"], verificationState="BENIGN_POSITIVE")
    filtered = iot.list_active_violations(verificationState="BENIGN_POSITIVE")["activeViolations"]
    assert [v["violationId"] for v in filtered] == [active[0]["violationId"]]


def test_wrong_secret_is_refused(server):
    iot = client(server, secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        iot.list_security_profiles()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_ml_detect_training_summaries_through_boto3(server):
    iot = client(server)
    iot.create_security_profile(
        securityProfileName="boto3-ml",
        behaviors=[
            {
                "name": "bytes-out-ml",
                "metric": "aws:all-bytes-out",
                "criteria": {"mlDetectionConfig": {"confidenceLevel": "MEDIUM"}},
            },
            {
                "name": "ports-rule",
                "metric": "aws:num-listening-tcp-ports",
                "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}},
            },
        ],
    )
    described = iot.describe_security_profile(securityProfileName="boto3-ml")
    ml = [b for b in described["behaviors"] if b["name"] == "bytes-out-ml"][0]
    assert ml["criteria"]["mlDetectionConfig"]["confidenceLevel"] == "MEDIUM"

    summaries = iot.get_behavior_model_training_summaries(securityProfileName="boto3-ml")["summaries"]
    # Only the ML behavior has a model; with no history yet it is waiting for data.
    assert [s["behaviorName"] for s in summaries] == ["bytes-out-ml"]
    assert summaries[0]["securityProfileName"] == "boto3-ml"
    assert summaries[0]["modelStatus"] == "PENDING_BUILD"
    assert summaries[0]["datapointsCollectionPercentage"] == 0.0

    # The AWS CLI and boto3 paginate this operation.
    pages = list(iot.get_paginator("get_behavior_model_training_summaries").paginate(securityProfileName="boto3-ml"))
    assert sum(len(p["summaries"]) for p in pages) == 1

    with pytest.raises(botocore.exceptions.ClientError) as missing:
        iot.get_behavior_model_training_summaries(securityProfileName="no-such-profile")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    iot.delete_security_profile(securityProfileName="boto3-ml")
