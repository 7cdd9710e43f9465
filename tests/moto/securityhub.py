"""Imports ASFF findings into moto's Security Hub and reads them back, with boto3, for
tests/it/asff.rs.

Usage: securityhub.py ENDPOINT COMMAND [ARGS]
  import FILE   enable Security Hub (once) and import the JSON array of findings in FILE with
                BatchImportFindings, 100 a call (the API's limit); prints
                {"calls": N, "imported": N, "failed": N, "failures": [...]}
  findings      every finding, read with GetFindings page by page (100 a page); prints
                {"pages": N, "findings": [...]}

boto3 validates every finding against the AwsSecurityFinding shape before sending it (required
fields, types, no unknown keys), which moto itself does not; the import also checks the
documented length limits moto does not enforce.
"""

import json
import sys

import boto3

BATCH = 100

# Security Hub's documented limits on fields the exporter fills.
LIMITS = {"Id": 512, "GeneratorId": 512, "Title": 256, "Description": 1024}
RECOMMENDATION_LIMIT = 512


def client(endpoint):
    return boto3.client(
        "securityhub",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def check_limits(finding):
    for field, limit in LIMITS.items():
        if len(finding[field]) > limit:
            sys.exit(f"{finding['Id']}: {field} is longer than {limit} characters")
    text = finding["Remediation"]["Recommendation"]["Text"]
    if len(text) > RECOMMENDATION_LIMIT:
        sys.exit(f"{finding['Id']}: Recommendation.Text is longer than {RECOMMENDATION_LIMIT}")


def import_findings(hub, path):
    with open(path, encoding="utf-8") as f:
        findings = json.load(f)
    try:
        hub.enable_security_hub()
    except hub.exceptions.ResourceConflictException:
        pass
    calls = imported = failed = 0
    failures = []
    for start in range(0, len(findings), BATCH):
        chunk = findings[start : start + BATCH]
        for finding in chunk:
            check_limits(finding)
        answer = hub.batch_import_findings(Findings=chunk)
        calls += 1
        imported += answer["SuccessCount"]
        failed += answer["FailedCount"]
        failures += answer["FailedFindings"]
    print(json.dumps({"calls": calls, "imported": imported, "failed": failed, "failures": failures}))


def all_findings(hub):
    pages = 0
    found = []
    kwargs = {"MaxResults": BATCH}
    while True:
        answer = hub.get_findings(**kwargs)
        pages += 1
        found += answer["Findings"]
        token = answer.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    print(json.dumps({"pages": pages, "findings": found}, default=str))


def main():
    endpoint, command, *args = sys.argv[1:]
    hub = client(endpoint)
    if command == "import":
        (path,) = args
        import_findings(hub, path)
    elif command == "findings":
        all_findings(hub)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
