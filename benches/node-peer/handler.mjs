// The benchmark's Node.js peer: getToken as a user would write it without this gateway, in the
// other language our users pick. The AWS SDK v3 reads the token item from DynamoDB, a plain fetch
// asks WeChat (the simulator) for the token and ticket when they expire, node:crypto signs the
// page, under aws-lambda-ric, the official Node.js runtime interface client. A comparison for
// `make bench`, not part of the gateway.
import { createHash, randomUUID } from "node:crypto";
import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

const TABLE = process.env.TOKEN_TABLE;
const APPID = process.env.WECHAT_APPID;
const URL_SIGNED = process.env.JSSDK_URL;
const API = process.env.WECHAT_API_BASE || "https://api.weixin.qq.com";
const ddb = new DynamoDBClient({});
// As deployed: the AppSecret read from Secrets Manager at init.
const SECRET = (
  await new SecretsManagerClient({}).send(
    new GetSecretValueCommand({ SecretId: process.env.WECHAT_SECRET_ARN }),
  )
).SecretString;

async function wechat(path) {
  const answer = await (await fetch(`${API}${path}`)).json();
  if (answer.errcode) throw new Error(`WeChat errcode ${answer.errcode}`);
  return answer;
}

export async function handler() {
  const got = await ddb.send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: { S: APPID } }, ConsistentRead: true }),
  );
  const item = got.Item || {};
  const now = Date.now();
  let token = item.access_token?.S;
  let ticket = item.jsapi_ticket?.S;
  let expires = Number(item.access_token_expires_ms?.N || 0);
  if (!token || expires - now < 300_000) {
    token = (await wechat(`/cgi-bin/token?grant_type=client_credential&appid=${APPID}&secret=${SECRET}`)).access_token;
    ticket = (await wechat(`/cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`)).ticket;
    expires = now + 7_200_000;
    await ddb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: {
          pk: { S: APPID }, access_token: { S: token }, jsapi_ticket: { S: ticket },
          access_token_expires_ms: { N: String(expires) },
        },
      }),
    );
  }
  const timestamp = Math.floor(now / 1000);
  const noncestr = randomUUID();
  const plain = `jsapi_ticket=${ticket}&noncestr=${noncestr}&timestamp=${timestamp}&url=${URL_SIGNED}`;
  const signature = createHash("sha1").update(plain).digest("hex");
  const body = {
    access_token: token, expires_in: Math.floor((expires - now) / 1000), appid: APPID,
    timestamp, noncestr, jsapi_ticket: ticket, url: URL_SIGNED, signature,
  };
  return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}
