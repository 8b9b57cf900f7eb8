"""Creates the token table, and optionally the audit table and the archive bucket (the template's
key schemas), in the DynamoDB and S3 at AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3 (moto).

Usage: create_table.py TOKEN_TABLE [AUDIT_TABLE ARCHIVE_BUCKET [CLAIM_TABLE]]
"""
import os
import sys

import boto3

ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
tables = ddb.list_tables()["TableNames"]


def pk_table(name, sweep=False):
    """A table keyed by the string `pk` (the token and claim tables); the token table also has
    the sweep's index (`due`: `sweep`, `due_ms`, keys only), as in the template."""
    if name in tables:
        return
    extra = {}
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sweep:
        attrs += [
            {"AttributeName": "sweep", "AttributeType": "S"},
            {"AttributeName": "due_ms", "AttributeType": "N"},
        ]
        extra["GlobalSecondaryIndexes"] = [{
            "IndexName": "due",
            "KeySchema": [
                {"AttributeName": "sweep", "KeyType": "HASH"},
                {"AttributeName": "due_ms", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }]
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=attrs,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


token_table = sys.argv[1]
pk_table(token_table, sweep=True)
print(f"table {token_table} ready")
if len(sys.argv) > 4:
    claim_table = sys.argv[4]
    pk_table(claim_table)
    print(f"claim table {claim_table} ready")
if len(sys.argv) > 3:
    audit_table, bucket = sys.argv[2], sys.argv[3]
    if audit_table not in tables:
        ddb.create_table(
            TableName=audit_table,
            AttributeDefinitions=[
                {"AttributeName": "card_id", "AttributeType": "S"},
                {"AttributeName": "at", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "card_id", "KeyType": "HASH"},
                {"AttributeName": "at", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    print(f"audit table {audit_table} ready")
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3", os.environ["AWS_ENDPOINT_URL_DYNAMODB"]),
    )
    if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=bucket)
    print(f"archive bucket {bucket} ready")
