"""Creates the token table (the template's key schema) in the DynamoDB at AWS_ENDPOINT_URL_DYNAMODB."""
import os
import sys

import boto3

name = sys.argv[1]
ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
if name not in ddb.list_tables()["TableNames"]:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
print(f"table {name} ready")
