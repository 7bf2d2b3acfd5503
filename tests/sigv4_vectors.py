#!/usr/bin/env python3
"""Golden SigV4 vectors for thingward's verifier, produced by the real client.

Run: python3 tests/sigv4_vectors.py > src/auth/testdata/sigv4_vectors.json

Most cases drive a real boto3 IoT client against http://127.0.0.1:8080 and capture the request
in botocore's ``before-send`` hook, so the headers, percent-encoding and body are exactly what
boto3 puts on the wire. Signing time is pinned by replacing ``botocore.auth.get_current_datetime``
(the function ``SigV4Auth.add_auth`` calls). The HTTP client (urllib3) adds ``Host`` after
botocore hands the request over; botocore signs the value it derives from the URL, which is the
same ``host:port`` string, so the vectors add that header the way urllib3 would.

A few cases use ``SigV4Auth``/``SigV4QueryAuth`` with a hand-built ``AWSRequest`` to cover what
the IoT operations never produce (repeated query keys, header whitespace, presigned URLs).
"""

import datetime
import json
import sys
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

ACCESS_KEY_ID = "TWEXAMPLEACCESSKEY01"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:8080"
NOW = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)

botocore.auth.get_current_datetime = lambda: NOW.replace(tzinfo=None)


def vector(name, method, url, headers, body):
    parts = urlsplit(url)
    hdrs = [[k, v.decode() if isinstance(v, bytes) else str(v)] for k, v in headers.items()]
    if not any(k.lower() == "host" for k, _ in hdrs):
        hdrs.append(["Host", parts.netloc])
    if body is None:
        body = b""
    if isinstance(body, str):
        body = body.encode()
    return {
        "name": name,
        "method": method,
        "path": parts.path,
        "query": parts.query or None,
        "headers": hdrs,
        "body": body.decode("utf-8"),
    }


def client_vectors():
    captured = []

    def before_send(request, **_):
        captured.append(request)
        response = AWSResponse(request.url, 200, {}, None)
        response._content = b"{}"  # botocore reads .content; this skips the network
        return response

    client = boto3.client(
        "iot",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    client.meta.events.register("before-send.iot", before_send)

    calls = [
        ("list_security_profiles", lambda: client.list_security_profiles(maxResults=5, nextToken="abc")),
        (
            "create_security_profile_colon_name",
            lambda: client.create_security_profile(
                securityProfileName="my:profile",
                securityProfileDescription="Auth  golden   vector",
                behaviors=[
                    {
                        "name": "too-many-msgs",
                        "metric": "aws:num-messages-sent",
                        "criteria": {
                            "comparisonOperator": "greater-than",
                            "value": {"count": 100},
                            "durationSeconds": 300,
                        },
                    }
                ],
            ),
        ),
        (
            "list_violation_events_time_query",
            lambda: client.list_violation_events(
                startTime=datetime.datetime(2020, 9, 22, 5, 42, 13, tzinfo=datetime.timezone.utc),
                endTime=datetime.datetime(2020, 9, 23, 5, 42, 13, 123456, tzinfo=datetime.timezone.utc),
                securityProfileName="my:profile",
            ),
        ),
        (
            "update_security_profile_expected_version",
            lambda: client.update_security_profile(
                securityProfileName="my:profile",
                expectedVersion=1,
                securityProfileDescription="updated",
            ),
        ),
        ("delete_security_profile_no_body", lambda: client.delete_security_profile(securityProfileName="my:profile")),
    ]
    out = []
    for name, call in calls:
        call()
        req = captured.pop()
        out.append(vector(name, req.method, req.url, req.headers, req.body))
    return out


def raw_vectors():
    creds = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    out = []

    # Repeated and empty query keys (URL mode: botocore sorts the raw pairs), a header with
    # runs of spaces, a non-ASCII path label and a dot segment.
    req = AWSRequest(
        method="GET",
        url=ENDPOINT + "/custom-metric/caf%C3%A9%20m?b=2&a=2&a=1&c=",
        headers={"X-Thingward-Note": "  a   b \t c  "},
    )
    botocore.auth.SigV4Auth(creds, "iot", "eu-west-1").add_auth(req)
    out.append(vector("raw_repeated_query_keys_and_header_spaces", req.method, req.url, req.headers, req.body))

    # A caller-set Date header: botocore then signs with Date instead of X-Amz-Date.
    req = AWSRequest(
        method="GET",
        url=ENDPOINT + "/security-profiles/my%3Aprofile",
        headers={"Date": "placeholder"},
    )
    botocore.auth.SigV4Auth(creds, "iot", REGION).add_auth(req)
    out.append(vector("raw_date_header_instead_of_x_amz_date", req.method, req.url, req.headers, req.body))

    # Presigned URL (query-string auth), valid for 300 seconds.
    req = AWSRequest(method="GET", url=ENDPOINT + "/security-profiles?maxResults=5")
    botocore.auth.SigV4QueryAuth(creds, "iot", REGION, expires=300).add_auth(req)
    out.append(vector("presigned_list_security_profiles", req.method, req.url, req.headers, req.body))
    return out


def main():
    doc = {
        "generator": "tests/sigv4_vectors.py",
        "botocore_version": botocore.__version__,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "now": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vectors": client_vectors() + raw_vectors(),
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
