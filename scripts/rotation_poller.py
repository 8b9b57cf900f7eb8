"""The rotation queue's event source mapping, for local runs (`make dev`): long-polls the queue
(moto's SQS), hands each batch of up to ten messages to get-token as Lambda does (an SQS event,
through `cargo lambda watch`'s Invoke API), and deletes the messages the answer does not list in
`batchItemFailures`; those become visible again after the queue's visibility timeout, as deployed.

Usage: rotation_poller.py QUEUE_URL INVOKE_URL
"""
import json
import os
import sys
import time
import urllib.request

import boto3

queue_url, invoke_url = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SQS"))
arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
print(f"rotation poller: {queue_url} -> {invoke_url}", flush=True)

while True:
    try:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=10)
    except Exception as e:  # moto restarting, or stopping: try again shortly
        print(f"rotation poller: receive failed: {e}", flush=True)
        time.sleep(2)
        continue
    messages = got.get("Messages", [])
    if not messages:
        continue
    event = {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {}, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
    } for m in messages]}
    request = urllib.request.Request(invoke_url, data=json.dumps(event).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            failed = {f["itemIdentifier"] for f in json.load(answer).get("batchItemFailures", [])}
    except Exception as e:  # an invocation error: every message is delivered again
        print(f"rotation poller: invocation failed: {e}", flush=True)
        continue
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
    print(f"rotation poller: {len(done)} rotated or not due, {len(failed)} to retry", flush=True)
