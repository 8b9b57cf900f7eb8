"""The SAM template, translated to CloudFormation as `sam deploy` does (samtranslator), with its
Conditions evaluated for each parameter set: what a deployment actually gets."""

import json
import os
import pathlib

import pytest
from cfnlint.decode import decode
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.transform import transform

TEMPLATE = pathlib.Path(__file__).resolve().parents[2] / "template.yaml"

REQUIRED = {
    "WeChatAppId": "wxa185587d4fc35145",
    "WeChatSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wxinvoice-AbCdEf",
    "JssdkUrl": "https://expense.example.com/invoices",
    "AllowedOrigins": "https://expense.example.com",
}
ROUTES = {
    "GET /core/r/api/weChat/getToken",
    "POST /core/r/api/weChat/getInvoiceBatch",
    "POST /core/r/api/weChat/updateStatus",
}


class NoManagedPolicies:
    """The template uses inline policies only: no AWS managed policy to look up."""

    def load(self):
        return {}


def source():
    """The template as `sam package` hands it on: code uploaded to S3."""
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    template = json.loads(json.dumps(template, default=str))
    for name, r in template["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
    return template


def deployed(region="us-east-1", **parameters):
    """The translated template with these parameters, Conditions applied: resources whose
    condition is false are dropped and `Fn::If` is resolved, as CloudFormation would."""
    values = {**REQUIRED, **parameters}
    # SAM translates in the region it deploys to (the partition of its own ARNs follows it).
    os.environ["AWS_DEFAULT_REGION"] = region
    ArnGenerator.BOTO_SESSION_REGION_NAME = region  # samtranslator caches the first one
    translated = transform(source(), values, NoManagedPolicies())
    params = {
        name: values.get(name, spec.get("Default"))
        for name, spec in translated["Parameters"].items()
    }

    def ref_value(node):
        if isinstance(node, dict) and set(node) == {"Ref"}:
            value = params[node["Ref"]]
            return value
        if isinstance(node, dict) and set(node) == {"Fn::Join"}:
            sep, parts = node["Fn::Join"]
            value = ref_value(parts)
            return sep.join(value.split(",") if isinstance(value, str) else value)
        return node

    conditions = {}

    def cond(node):
        if isinstance(node, dict) and "Condition" in node and len(node) == 1:
            return evaluate(node["Condition"])
        op, args = next(iter(node.items()))
        if op == "Fn::Equals":
            a, b = (ref_value(x) for x in args)
            return a == b
        if op == "Fn::Not":
            return not cond(args[0])
        if op == "Fn::And":
            return all(cond(a) for a in args)
        if op == "Fn::Or":
            return any(cond(a) for a in args)
        raise AssertionError(f"unknown condition function {op}")

    def evaluate(name):
        if name not in conditions:
            conditions[name] = cond(translated["Conditions"][name])
        return conditions[name]

    no_value = object()

    def resolve(node):
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return resolve(yes if evaluate(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return no_value
            out = {}
            for k, v in node.items():
                v = resolve(v)
                if v is not no_value:
                    out[k] = v
            return out
        if isinstance(node, list):
            return [v for v in (resolve(x) for x in node) if v is not no_value]
        return node

    resources = {
        name: resolve(r)
        for name, r in translated["Resources"].items()
        if "Condition" not in r or evaluate(r["Condition"])
    }
    return translated, resources


def of_type(resources, kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


JWT = {"JwtIssuer": "https://login.example.com/", "JwtAudience": "expense-web,expense-app"}


@pytest.mark.parametrize("jwt", [False, True])
def test_every_route_has_the_authorizer_exactly_when_configured(jwt):
    _, resources = deployed(**(JWT if jwt else {}))
    routes = of_type(resources, "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == ROUTES
    authorizers = of_type(resources, "AWS::ApiGatewayV2::Authorizer")
    if jwt:
        [(name, authorizer)] = authorizers.items()
        config = authorizer["Properties"]["JwtConfiguration"]
        assert config["Issuer"] == {"Ref": "JwtIssuer"}
        assert authorizer["Properties"]["IdentitySource"] == ["$request.header.Authorization"]
        for route in routes.values():
            assert route["Properties"]["AuthorizationType"] == "JWT"
            assert route["Properties"]["AuthorizerId"] == {"Ref": name}
    else:
        assert authorizers == {}
        for route in routes.values():
            assert route["Properties"]["AuthorizationType"] == "NONE"
            assert "AuthorizerId" not in route["Properties"]


def test_only_an_issuer_with_an_audience_turns_the_authorizer_on():
    _, resources = deployed(JwtIssuer="https://login.example.com/")
    assert of_type(resources, "AWS::ApiGatewayV2::Authorizer") == {}


def test_hardened_mode_is_the_default_and_one_parameter_away():
    for params, expected in [({}, "false"), ({"ExposeAccessToken": "true"}, "true")]:
        translated, resources = deployed(**params)
        functions = of_type(resources, "AWS::Lambda::Function")
        assert len(functions) == 3
        for f in functions.values():
            env = f["Properties"]["Environment"]["Variables"]
            assert env["EXPOSE_ACCESS_TOKEN"] == {"Ref": "ExposeAccessToken"}
        value = params.get("ExposeAccessToken", translated["Parameters"]["ExposeAccessToken"]["Default"])
        assert value == expected


def test_cors_lets_the_front_end_send_the_bearer_token():
    _, resources = deployed(**JWT)
    [api] = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    assert "authorization" in api["Properties"]["CorsConfiguration"]["AllowHeaders"]


def test_each_function_may_touch_only_the_table_and_the_secret():
    _, resources = deployed()
    roles = of_type(resources, "AWS::IAM::Role")
    assert len(roles) >= 3
    for name, role in roles.items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                if policy["PolicyName"].endswith("RolePolicy0"):
                    assert set(actions) <= {
                        "dynamodb:GetItem",
                        "dynamodb:UpdateItem",
                        "secretsmanager:GetSecretValue",
                    }, (name, actions)
                    assert statement["Resource"] in (
                        {"Fn::GetAtt": ["TokenTable", "Arn"]},
                        {"Ref": "WeChatSecretArn"},
                    ), (name, statement)


def test_api_gateway_may_invoke_each_function_on_its_route_only():
    _, resources = deployed()
    permissions = of_type(resources, "AWS::Lambda::Permission")
    routes = set()
    for p in permissions.values():
        assert p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        # .../${HttpApi}/*/METHOD/path: any stage, this method and path only.
        method, path = p["Properties"]["SourceArn"]["Fn::Sub"].rsplit("/*/", 1)[1].split("/", 1)
        routes.add(f"{method} /{path}")
    assert routes == ROUTES


def test_no_hard_coded_partition():
    # The stack must deploy in the China regions too: translated there, no ARN of the global
    # partition is left (our own ARNs use ${AWS::Partition}; SAM's follow the region).
    translated, _ = deployed(region="cn-north-1", **JWT)
    text = json.dumps(translated["Resources"])
    assert "arn:aws:" not in text
    assert "arn:aws-cn:" in text or "AWS::Partition" in text
