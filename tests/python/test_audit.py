"""boto3 drives thingward's Audit: registry import, account audit configuration, an on-demand
audit task, findings and a suppression, with SigV4, as a user with --endpoint-url would."""

import datetime
import time

import botocore.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_boto3 import client, server  # noqa: F401  (the server fixture)

EXPIRING = "DEVICE_CERTIFICATE_EXPIRING_CHECK"


def expired_certificate_pem():
    """A self-signed device certificate that expired on 2021-01-01."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "boto3-old-camera")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2019, 1, 1, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_an_audit_finds_an_imported_expired_certificate_and_a_suppression_hides_it(server):  # noqa: F811
    iot = client(server)
    registered = iot.register_certificate(certificatePem=expired_certificate_pem(), status="ACTIVE")
    cert_id = registered["certificateId"]
    assert registered["certificateArn"].endswith(f":cert/{cert_id}")
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == "ACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        iot.register_certificate(certificatePem="-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestException"

    iot.update_account_audit_configuration(auditCheckConfigurations={EXPIRING: {"enabled": True}})
    config = iot.describe_account_audit_configuration()["auditCheckConfigurations"]
    assert config[EXPIRING]["enabled"] is True
    assert "AUDIT_INPUT_UNREADABLE_CHECK" in config

    task_id = iot.start_on_demand_audit_task(targetCheckNames=[EXPIRING])["taskId"]
    deadline = time.time() + 30
    while True:
        task = iot.describe_audit_task(taskId=task_id)
        if task["taskStatus"] != "IN_PROGRESS":
            break
        assert time.time() < deadline, "the audit task did not finish"
        time.sleep(0.2)
    assert task["taskStatus"] == "COMPLETED"
    assert task["taskType"] == "ON_DEMAND_AUDIT_TASK"
    details = task["auditDetails"][EXPIRING]
    assert details["checkRunStatus"] == "COMPLETED_NON_COMPLIANT"
    assert details["nonCompliantResourcesCount"] == 1
    assert isinstance(task["taskStartTime"], datetime.datetime)

    findings = iot.list_audit_findings(taskId=task_id)["findings"]
    assert len(findings) == 1
    finding = findings[0]
    assert finding["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"] == cert_id
    assert finding["reasonForNonComplianceCode"] == "CERTIFICATE_PAST_EXPIRATION"
    assert finding["isSuppressed"] is False

    iot.create_audit_suppression(
        checkName=EXPIRING,
        resourceIdentifier={"deviceCertificateId": cert_id},
        suppressIndefinitely=True,
        description="replacement ordered",
    )
    assert iot.list_audit_findings(taskId=task_id)["findings"] == []
    suppressed = iot.list_audit_findings(taskId=task_id, listSuppressedFindings=True)["findings"]
    assert [f["isSuppressed"] for f in suppressed] == [True]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_audit_suppression(
            checkName=EXPIRING, resourceIdentifier={"deviceCertificateId": cert_id}, suppressIndefinitely=True
        )

    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == "INACTIVE"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_audit_task(taskId="no-such-task")
