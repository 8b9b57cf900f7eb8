"""The benchmark's Python peer: getToken as a user would write it without this gateway.

boto3 reads the token item from DynamoDB, wechatpy signs the page (and would fetch the token and
ticket when they expire), under awslambdaric, the official Python runtime interface client.
A comparison for `make bench`, not part of the gateway.
"""
import json
import os
import time
import uuid

import boto3
from wechatpy import WeChatClient

TABLE = os.environ["TOKEN_TABLE"]
APPID = os.environ["WECHAT_APPID"]
URL = os.environ["JSSDK_URL"]
ddb = boto3.client("dynamodb")
# As deployed: the AppSecret read from Secrets Manager at init.
SECRET = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["WECHAT_SECRET_ARN"])["SecretString"]
wechat = WeChatClient(APPID, SECRET)


def handler(event, context):
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": APPID}}, ConsistentRead=True).get("Item", {})
    now_ms = int(time.time() * 1000)
    token, ticket = item.get("access_token", {}).get("S"), item.get("jsapi_ticket", {}).get("S")
    expires_ms = int(item.get("access_token_expires_ms", {}).get("N", "0"))
    if not token or expires_ms - now_ms < 300_000:
        token = wechat.fetch_access_token()["access_token"]
        ticket = wechat.jsapi.get_ticket()["ticket"]
        ddb.put_item(TableName=TABLE, Item={
            "pk": {"S": APPID}, "access_token": {"S": token}, "jsapi_ticket": {"S": ticket},
            "access_token_expires_ms": {"N": str(now_ms + 7_200_000)},
        })
        expires_ms = now_ms + 7_200_000
    timestamp, noncestr = now_ms // 1000, str(uuid.uuid4())
    signature = wechat.jsapi.get_jsapi_signature(noncestr, ticket, timestamp, URL)
    body = {
        "access_token": token, "expires_in": (expires_ms - now_ms) // 1000, "appid": APPID,
        "timestamp": timestamp, "noncestr": noncestr, "jsapi_ticket": ticket, "url": URL,
        "signature": signature,
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
