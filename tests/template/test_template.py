"""The SAM template, translated to CloudFormation as `sam deploy` does (samtranslator), with its
Conditions evaluated for each parameter set: what a deployment actually gets."""

import json
import os
import pathlib
import re

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
    "POST /core/r/api/weChat/getInvoiceInfo",
    "POST /core/r/api/weChat/updateInvoiceStatus",
}
# CORS preflights, answered by the functions (each app with its own origins).
PREFLIGHTS = {"OPTIONS " + r.split(" ", 1)[1] for r in ROUTES}


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
    params["AWS::Region"] = region
    params["AWS::Partition"] = "aws-cn" if region.startswith("cn-") else "aws"

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
    all_routes = of_type(resources, "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in all_routes.values()} == ROUTES | PREFLIGHTS
    routes = {n: r for n, r in all_routes.items() if r["Properties"]["RouteKey"] in ROUTES}
    # Browsers send preflights without credentials: never behind the authorizer.
    for r in all_routes.values():
        if r["Properties"]["RouteKey"] in PREFLIGHTS:
            assert r["Properties"]["AuthorizationType"] == "NONE"
            assert "AuthorizerId" not in r["Properties"]
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


def test_cors_is_the_functions_own():
    # API Gateway's CORS configuration would answer preflights with one origin list for every
    # app and replace the functions' headers; the functions answer them per app.
    _, resources = deployed(**JWT)
    [api] = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    assert "CorsConfiguration" not in api["Properties"]


@pytest.mark.parametrize("egress", ["none", "create", "existing"])
def test_each_function_may_touch_only_what_it_needs(egress):
    _, resources = deployed(StaticEgress=egress, **VPC_EXISTING)
    roles = of_type(resources, "AWS::IAM::Role")
    assert len(roles) >= 3
    token = {"Fn::GetAtt": ["TokenTable", "Arn"]}
    secret = {"Ref": "WeChatSecretArn"}
    audit = {"Fn::GetAtt": ["AuditTable", "Arn"]}
    claims = {"Fn::GetAtt": ["ClaimTable", "Arn"]}
    files = {"Fn::Sub": "${ArchiveBucket.Arn}/*"}
    bucket = {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
    app_secrets = {
        "Fn::Sub": [
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Prefix}*",
            {"Prefix": {"Fn::Sub": "wxinvoice/${AWS::StackName}/apps/"}},
        ]
    }
    due_index = {"Fn::Sub": "${TokenTable.Arn}/index/due"}
    rotations = {"Fn::GetAtt": ["RotationQueue", "Arn"]}
    common = [
        (token, {"dynamodb:GetItem", "dynamodb:UpdateItem"}),
        (secret, {"secretsmanager:GetSecretValue"}),
        (app_secrets, {"secretsmanager:GetSecretValue"}),
    ]
    # What each function's own policy may do, and on what (archive statements only with the
    # bucket).
    allowed = {
        "GetTokenFunctionRole": [(token, {"dynamodb:Scan", "dynamodb:PutItem"})] + common + [
            (due_index, {"dynamodb:Query"}),
            (rotations, {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}),
            (audit, {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}),
            (files, {"s3:GetObject", "s3:PutObject"}),
            (bucket, {"s3:ListBucket"}),
        ],
        "GetInvoiceBatchFunctionRole": common + [
            (claims, {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"}),
            (files, {"s3:GetObject"}),
            (bucket, {"s3:ListBucket"}),
        ],
        "UpdateStatusFunctionRole": common + [
            (audit, {"dynamodb:BatchWriteItem", "dynamodb:PutItem"}),
            (claims, {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                      "dynamodb:UpdateItem"}),
            (files, {"s3:GetObject", "s3:PutObject"}),
            (bucket, {"s3:ListBucket"}),
        ],
    }
    for name, role in roles.items():
        # Logs, and (VpcConfig being conditional, SAM attaches it in every mode) the AWS-managed
        # policy that lets Lambda manage network interfaces: no data access.
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert arn.rsplit("/", 1)[1] in {
                "AWSLambdaBasicExecutionRole",
                "AWSLambdaVPCAccessExecutionRole",
            }, (name, arn)
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if "Fn::If" in statement:
                    condition, statement, otherwise = statement["Fn::If"]
                    assert condition == "HasArchive" and otherwise == {"Ref": "AWS::NoValue"}
                    assert statement["Resource"] in (files, bucket), (name, statement)
                actions = statement["Action"]
                actions = set(actions if isinstance(actions, list) else [actions])
                if policy["PolicyName"].endswith("OnFailureSQSPolicy"):
                    assert actions == {"sqs:SendMessage"}
                    assert statement["Resource"] == {"Fn::GetAtt": ["FailedRefreshQueue", "Arn"]}
                if policy["PolicyName"].endswith("RolePolicy0"):
                    grants = set().union(*[a for r, a in allowed[name] if r == statement["Resource"]])
                    assert grants and actions <= grants, (name, statement)
                    # The token table's one item get-token puts whole: the sweep's marker.
                    if statement["Resource"] == token and "dynamodb:PutItem" in actions:
                        assert actions == {"dynamodb:PutItem"}, (name, statement)
                        assert statement["Condition"] == {
                            "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["#sweep"]}
                        }, (name, statement)
                    # The claim table's one updatable kind of item: the daily counts of WeChat calls.
                    if statement["Resource"] == claims and "dynamodb:UpdateItem" in actions:
                        assert actions == {"dynamodb:UpdateItem"}, (name, statement)
                        assert statement["Condition"] == {
                            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["budget#*"]}
                        }, (name, statement)


def test_api_gateway_may_invoke_each_function_on_its_route_only():
    _, resources = deployed()
    permissions = of_type(resources, "AWS::Lambda::Permission")
    routes = set()
    for p in permissions.values():
        assert p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        # .../${HttpApi}/*/METHOD/path: any stage, this method and path only.
        method, path = p["Properties"]["SourceArn"]["Fn::Sub"].rsplit("/*/", 1)[1].split("/", 1)
        routes.add(f"{method} /{path}")
    assert routes == ROUTES | PREFLIGHTS


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"StaticEgress": "create"},
        {"StaticEgress": "existing", "SubnetIds": "subnet-0a1b2c3d", "SecurityGroupIds": "sg-0123abcd"},
        {"AlarmTopicArn": "arn:aws-cn:sns:cn-north-1:123456789012:oncall", **JWT},
        {"DomainName": "invoices.example.cn",
         "CertificateArn": "arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc"},
        {"ArchivePdfs": "false", "AuditRetentionDays": "0", "AppSecretPrefix": "acme/wx/",
         "ScheduleConcurrency": "50", "WeChatDailyBudget": "0"},
        {"ComponentSecretArn": "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:wx/component-AbCdEf",
         "WeChatPlatform": "work", "WeComAgentId": "1000002", **JWT},
    ],
)
def test_no_hard_coded_partition(options):
    # The stack must deploy in the China regions too: translated there with every option set,
    # no ARN of the global partition is left (our own ARNs use ${AWS::Partition}, hosts
    # ${AWS::URLSuffix}; SAM's follow the region).
    translated, resources = deployed(region="cn-north-1", **options)
    text = json.dumps(resources) + json.dumps(translated["Outputs"])
    assert "arn:aws:" not in text
    assert "arn:aws-cn:" in text or "AWS::Partition" in text


DOMAIN = {
    "DomainName": "invoices.example.com",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
}
VPC_EXISTING = {"SubnetIds": "subnet-0a1b2c3d,subnet-4e5f6a7b", "SecurityGroupIds": "sg-0123abcd"}


def functions(resources):
    return of_type(resources, "AWS::Lambda::Function")


def test_no_vpc_by_default():
    translated, resources = deployed()
    assert of_type(resources, "AWS::EC2::VPC") == {}
    assert of_type(resources, "AWS::EC2::NatGateway") == {}
    for f in functions(resources).values():
        assert "VpcConfig" not in f["Properties"]
    assert "EgressIp" not in resolved_outputs(translated, StaticEgress="none")


def test_created_vpc_gives_every_function_one_fixed_egress_address():
    translated, resources = deployed(StaticEgress="create")
    [eip] = of_type(resources, "AWS::EC2::EIP")
    [nat] = of_type(resources, "AWS::EC2::NatGateway").values()
    assert nat["Properties"]["AllocationId"] == {"Fn::GetAtt": [eip, "AllocationId"]}
    private = {"PrivateSubnetA", "PrivateSubnetB"}
    for f in functions(resources).values():
        vpc = f["Properties"]["VpcConfig"]
        assert {s["Ref"] for s in vpc["SubnetIds"]} == private
        assert vpc["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}]
    # The private subnets (two AZs) route to the NAT; DynamoDB through the gateway endpoint.
    azs = {resources[s]["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in private}
    assert azs == {0, 1}
    routes = of_type(resources, "AWS::EC2::Route")
    assert any(
        r["Properties"].get("NatGatewayId") == {"Ref": "NatGateway"}
        and r["Properties"]["RouteTableId"] == {"Ref": "PrivateRouteTable"}
        for r in routes.values()
    )
    [endpoint] = of_type(resources, "AWS::EC2::VPCEndpoint").values()
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
    assert endpoint["Properties"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"}
    assert endpoint["Properties"]["RouteTableIds"] == [{"Ref": "PrivateRouteTable"}]
    assert resolved_outputs(translated, StaticEgress="create")["EgressIp"]["Value"] == {"Ref": eip}
    # In the China regions the endpoint service has its cn.com prefix.
    _, cn = deployed(region="cn-north-1", StaticEgress="create")
    [endpoint] = of_type(cn, "AWS::EC2::VPCEndpoint").values()
    assert endpoint["Properties"]["ServiceName"]["Fn::Sub"].startswith("cn.com.amazonaws.")


def test_existing_subnets_and_groups_are_used_as_given():
    translated, resources = deployed(StaticEgress="existing", **VPC_EXISTING)
    assert of_type(resources, "AWS::EC2::VPC") == {}
    for f in functions(resources).values():
        vpc = f["Properties"]["VpcConfig"]
        assert vpc == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    rules = translated["Rules"]["ExistingVpcNeedsSubnetsAndGroups"]
    assert rules["RuleCondition"] == {"Fn::Equals": [{"Ref": "StaticEgress"}, "existing"]}


def resolved_outputs(translated, **parameters):
    """The outputs a deployment with these parameters shows (conditions of the outputs used)."""
    shown = {
        "CreateVpc": parameters.get("StaticEgress") == "create",
        "HasDomain": bool(parameters.get("DomainName") and parameters.get("CertificateArn")),
    }
    return {
        name: out
        for name, out in translated["Outputs"].items()
        if shown.get(out.get("Condition"), True)
    }


@pytest.mark.parametrize("topic", ["", "arn:aws:sns:us-east-1:123456789012:oncall"])
def test_alarms_watch_refresh_5xx_and_setup_errors_and_notify_the_topic(topic):
    _, resources = deployed(AlarmTopicArn=topic)
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watched = {
        (json.dumps(a["Properties"]["Namespace"]).strip('"'), a["Properties"]["MetricName"])
        for a in alarms.values()
    }
    assert ("AWS/Lambda", "Errors") in watched
    assert ("AWS/ApiGateway", "5xx") in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched
    assert any(m == "WeChatSetupErrors" for _, m in watched)
    for alarm in alarms.values():
        props = alarm["Properties"]
        if topic:
            assert props["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]
        else:
            assert "AlarmActions" not in props
    errors = next(a for a in alarms.values() if a["Properties"]["MetricName"] == "Errors")
    assert errors["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "GetTokenFunction"}}]
    filters = {
        name: f
        for name, f in of_type(resources, "AWS::Logs::MetricFilter").items()
        if f["Properties"]["MetricTransformations"][0]["MetricName"] == "WeChatSetupErrors"
    }
    assert len(filters) == 3
    for f in filters.values():
        for code in ["40164", "61004", "40125", "40013", "45009"]:
            assert f"$.errcode = {code}" in f["Properties"]["FilterPattern"]


def test_schedule_failures_land_in_a_queue():
    _, resources = deployed()
    [config] = of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["FunctionName"] == {"Ref": "GetTokenFunction"}
    on_failure = config["Properties"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["FailedRefreshQueue", "Arn"]}


def test_logs_are_kept_for_the_retention_and_access_logs_hold_no_query_string():
    _, resources = deployed(LogRetentionDays="90")
    groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) == 4
    for g in groups.values():
        assert g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    for name, f in functions(resources).items():
        assert f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups, name
    [stage] = of_type(resources, "AWS::ApiGatewayV2::Stage").values()
    fmt = stage["Properties"]["AccessLogSettings"]["Format"]
    json.loads(fmt)
    for leak in ["querystring", "path", "header", "requestOverride"]:
        assert leak not in fmt.lower().replace("$context.routekey", ""), leak
    throttle = stage["Properties"]["DefaultRouteSettings"]
    assert throttle == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }


@pytest.mark.parametrize("reserved", ["0", "25"])
def test_reserved_concurrency_only_when_asked(reserved):
    _, resources = deployed(ReservedConcurrency=reserved)
    for f in functions(resources).values():
        if reserved == "0":
            assert "ReservedConcurrentExecutions" not in f["Properties"]
        else:
            assert f["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"StaticEgress": "create"},
        {"StaticEgress": "existing", **VPC_EXISTING},
        {"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:oncall", **JWT},
        DOMAIN,
    ],
)
def test_resource_counts(options, capsys):
    _, resources = deployed(**options)
    with capsys.disabled():
        shown = {k: v for k, v in options.items() if k in ("StaticEgress", "AlarmTopicArn", "JwtIssuer", "DomainName")}
        label = ",".join(f"{k}={v}" for k, v in shown.items()) or "defaults"
        print(f"\ntranslated resources, {label}: {len(resources)}")
    assert len(resources) > 20


@pytest.mark.parametrize("domain", [False, True])
def test_custom_domain_only_when_named_with_a_certificate(domain):
    params = DOMAIN if domain else {}
    translated, resources = deployed(**params)
    names = of_type(resources, "AWS::ApiGatewayV2::DomainName")
    mappings = of_type(resources, "AWS::ApiGatewayV2::ApiMapping")
    assert (len(names), len(mappings)) == ((1, 1) if domain else (0, 0))
    assert ("DomainTarget" in resolved_outputs(translated, **params)) == domain


def test_deployer_choices_reach_the_functions():
    translated, resources = deployed(MemorySize="512", LogLevel="DEBUG")
    assert translated["Parameters"]["Architecture"]["Default"] == "arm64"
    for f in functions(resources).values():
        props = f["Properties"]
        assert props["Architectures"] == [{"Ref": "Architecture"}]
        assert props["MemorySize"] == {"Ref": "MemorySize"}
        assert props["LoggingConfig"]["ApplicationLogLevel"] == {"Ref": "LogLevel"}
        # No API host given: the function picks its platform's own (WeCom: qyapi).
        assert "WECHAT_API_BASE" not in props["Environment"]["Variables"]
    _, resources = deployed(WeChatApiBase="https://sh.api.weixin.qq.com")
    for f in functions(resources).values():
        env = f["Properties"]["Environment"]["Variables"]
        assert env["WECHAT_API_BASE"] == {"Ref": "WeChatApiBase"}


def test_samconfig_environments_name_only_template_parameters():
    import tomllib

    config = tomllib.loads((TEMPLATE.parent / "samconfig.toml").read_text())
    declared = set(source()["Parameters"])
    for env in ["dev", "prod"]:
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        names = {o.split("=", 1)[0] for o in overrides}
        assert names <= declared, names - declared
        assert {"WeChatAppId", "WeChatSecretArn", "JssdkUrl", "AllowedOrigins"} <= names
    prod = dict(o.split("=", 1) for o in config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    assert prod["ExposeAccessToken"] == "false" and prod["StaticEgress"] == "create"


def test_claim_table_keeps_idempotency_keys_and_claims_away_from_get_token():
    _, resources = deployed()
    claims = resources["ClaimTable"]["Properties"]
    assert claims["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert claims["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert claims["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    env = resources["UpdateStatusFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CLAIM_TABLE"] == {"Ref": "ClaimTable"}
    # The status changes write it; the queries read the claims; get-token never touches it.
    roles = of_type(resources, "AWS::IAM::Role")
    claim_arn = json.dumps({"Fn::GetAtt": ["ClaimTable", "Arn"]})
    touching = sorted(name for name, role in roles.items() if claim_arn in json.dumps(role))
    assert touching == ["GetInvoiceBatchFunctionRole", "UpdateStatusFunctionRole"], touching


def test_the_token_table_and_the_archive_are_kept_and_guarded():
    _, resources = deployed()
    token = resources["TokenTable"]
    # The registry of apps and their tokens outlives the stack and a replacement.
    assert token["DeletionPolicy"] == "Retain" and token["UpdateReplacePolicy"] == "Retain"
    assert token["Properties"]["DeletionProtectionEnabled"] is True
    assert token["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    policy = resources["ArchiveBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ArchiveBucket"}
    [deny] = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::Sub": "${ArchiveBucket.Arn}/*"} in deny["Resource"]
    _, resources = deployed(ArchivePdfs="false")
    assert "ArchiveBucketPolicy" not in resources


def test_tokens_ended_elsewhere_are_counted_in_every_function_and_alarmed():
    _, resources = deployed()
    filters = [
        r["Properties"]
        for r in of_type(resources, "AWS::Logs::MetricFilter").values()
        if r["Properties"]["MetricTransformations"][0]["MetricName"] == "TokensEndedElsewhere"
    ]
    groups = sorted(f["LogGroupName"]["Ref"] for f in filters)
    assert groups == ["GetInvoiceBatchLogGroup", "GetTokenLogGroup", "UpdateStatusLogGroup"]
    assert {f["FilterPattern"] for f in filters} == {'{ $.event = "token_ended_elsewhere" }'}
    alarm = resources["TokensEndedElsewhereAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("TokensEndedElsewhere", 1)


def test_audit_table_and_archive_bucket():
    _, resources = deployed()
    audit = resources["AuditTable"]["Properties"]
    assert audit["KeySchema"] == [
        {"AttributeName": "card_id", "KeyType": "HASH"},
        {"AttributeName": "at", "KeyType": "RANGE"},
    ]
    assert audit["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    bucket = resources["ArchiveBucket"]
    # Archives outlive the stack, and nothing in them is public.
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    env = resources["UpdateStatusFunction"]["Properties"]["Environment"]["Variables"]
    assert env["AUDIT_TABLE"] == {"Ref": "AuditTable"}
    assert env["ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
    # ArchivePdfs=false: no bucket, no setting, no S3 permission.
    _, resources = deployed(ArchivePdfs="false")
    assert "ArchiveBucket" not in resources
    env = resources["UpdateStatusFunction"]["Properties"]["Environment"]["Variables"]
    assert "ARCHIVE_BUCKET" not in env and env["AUDIT_TABLE"] == {"Ref": "AuditTable"}
    assert '"s3:' not in json.dumps(of_type(resources, "AWS::IAM::Role"))


def test_each_stack_reads_its_own_app_secrets_and_names_them():
    # The functions read the secrets under the prefix their IAM allows, and the admin command
    # writes under the prefix the stack's output names: one expression for all three.
    for given, prefix in [
        (None, {"Fn::Sub": "wxinvoice/${AWS::StackName}/apps/"}),
        ("acme/wx/", {"Ref": "AppSecretPrefix"}),
    ]:
        translated, resources = deployed(**({"AppSecretPrefix": given} if given else {}))
        condition, named, default = translated["Outputs"]["AppSecretPrefix"]["Value"]["Fn::If"]
        assert condition == "HasSecretPrefix"
        assert (named if given else default) == prefix
        for f in functions(resources).values():
            assert f["Properties"]["Environment"]["Variables"]["APP_SECRET_PREFIX"] == prefix
        readable = [
            statement["Resource"]["Fn::Sub"][1]["Prefix"]
            for role in of_type(resources, "AWS::IAM::Role").values()
            for policy in role["Properties"].get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
            if isinstance(statement.get("Resource"), dict) and "Fn::Sub" in statement["Resource"]
            and "secretsmanager" in json.dumps(statement["Resource"])
        ]
        assert readable == [prefix] * 3, readable


def test_the_daily_budget_of_wechat_calls_reaches_the_functions_and_is_alarmed_at_80_percent():
    _, resources = deployed(WeChatDailyBudget="20000")
    for f in functions(resources).values():
        assert f["Properties"]["Environment"]["Variables"]["WECHAT_DAILY_BUDGET"] == {"Ref": "WeChatDailyBudget"}
    filters = [
        r["Properties"]
        for r in of_type(resources, "AWS::Logs::MetricFilter").values()
        if r["Properties"]["MetricTransformations"][0]["MetricName"] == "WeChatBudgetNearCeiling"
    ]
    # The functions that call WeChat's invoice APIs.
    groups = sorted(f["LogGroupName"]["Ref"] for f in filters)
    assert groups == ["GetInvoiceBatchLogGroup", "UpdateStatusLogGroup"]
    assert {f["FilterPattern"] for f in filters} == {"{ $.wechat_budget_pct >= 80 }"}
    alarm = resources["WeChatBudgetAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("WeChatBudgetNearCeiling", 1)


def test_get_token_touches_only_the_archive_work_and_the_archived_files_of_the_trail():
    pending = re.search(r'pub const PENDING: &str = "([^"]+)"', (TEMPLATE.parent / "shared/src/adapters/audit.rs").read_text())[1]
    done = (TEMPLATE.parent / "shared/src/adapters/audit.rs").read_text()
    assert 'update_expression("SET pdf_files = :f REMOVE archive_error")' in done
    _, resources = deployed()
    audit = {"Fn::GetAtt": ["AuditTable", "Arn"]}
    on_trail = [
        s
        for policy in resources["GetTokenFunctionRole"]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Resource") == audit
    ]
    assert len(on_trail) == 2, on_trail
    for s in on_trail:
        actions = set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        if "dynamodb:UpdateItem" in actions:
            assert actions == {"dynamodb:UpdateItem"}
            assert s["Condition"] == {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": ["card_id", "at", "pdf_files", "archive_error"]},
                "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
            }
        else:
            assert actions == {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"}
            assert s["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [pending]}}


def test_the_sweep_fans_rotations_out_on_a_queue_at_a_bounded_rate():
    _, resources = deployed(RotationConcurrency=5, RotationSpreadSeconds=300)
    table = resources["TokenTable"]["Properties"]
    [due] = table["GlobalSecondaryIndexes"]
    assert due["IndexName"] == "due"
    assert [k["AttributeName"] for k in due["KeySchema"]] == ["sweep", "due_ms"]
    assert due["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # The code's names for the index, the key attributes and the marker.
    store = (TEMPLATE.parent / "shared/src/adapters/store/dynamo.rs").read_text()
    assert 'pub const DUE_INDEX: &str = "due";' in store
    assert '"sweep = :sweep AND due_ms <= :until"' in store
    assert 'SWEEP_MARKER: &str = "#sweep"' in (TEMPLATE.parent / "shared/src/adapters/store/mod.rs").read_text()
    queue = resources["RotationQueue"]["Properties"]
    # Longer than the function's timeout, so a batch is not delivered twice while it runs.
    assert queue["VisibilityTimeout"] >= 6 * 20
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["RotationDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 3
    [mapping] = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["RotationQueue", "Arn"]}
    assert props["FunctionName"] == {"Ref": "GetTokenFunction"}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert props["MaximumBatchingWindowInSeconds"] == 10
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "RotationConcurrency"}}
    env = resources["GetTokenFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ROTATION_QUEUE_URL"] == {"Ref": "RotationQueue"}
    assert env["ROTATION_SPREAD_SECS"] == {"Ref": "RotationSpreadSeconds"}
    for other in ("GetInvoiceBatchFunction", "UpdateStatusFunction"):
        assert "ROTATION_QUEUE_URL" not in resources[other]["Properties"]["Environment"]["Variables"]
    alarm = resources["RotationDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RotationDeadLetterQueue", "QueueName"]}}]
    assert alarm["Threshold"] == 1
    # The hourly sweep is still the one schedule.
    [schedule] = of_type(resources, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 hour)"


def test_a_third_party_platform_gets_its_event_url_and_its_secret_only_when_configured():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wxinvoice/component-AbCdEf"
    events = "POST /core/r/api/weChat/component/events"
    for jwt in (False, True):
        _, resources = deployed(ComponentSecretArn=arn, **(JWT if jwt else {}))
        routes = of_type(resources, "AWS::ApiGatewayV2::Route").values()
        [route] = [r["Properties"] for r in routes if r["Properties"]["RouteKey"] == events]
        # WeChat sends no JWT: the push is authenticated by its signature, in the function.
        assert route["AuthorizationType"] == "NONE" and "AuthorizerId" not in route
        assert route["Target"] == {"Fn::Sub": "integrations/${GetTokenIntegration}"}
        sources = [p["Properties"]["SourceArn"]["Fn::Sub"] for p in of_type(resources, "AWS::Lambda::Permission").values()]
        assert any(s.endswith("/*/POST/core/r/api/weChat/component/events") for s in sources)
        keys = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes}
        # The admin page's links: behind the authorizer when it is on; the customer's return
        # from WeChat's page: never (the auth_code is the proof).
        links = keys["GET /core/r/api/weChat/component/authorize"]
        assert links["AuthorizationType"] == ("JWT" if jwt else "NONE")
        assert keys["GET /core/r/api/weChat/component/authorized"]["AuthorizationType"] == "NONE"
        env = resources["GetTokenFunction"]["Properties"]["Environment"]["Variables"]
        assert env["COMPONENT_SECRET_ARN"] == {"Ref": "ComponentSecretArn"}
        for other in ("GetInvoiceBatchFunction", "UpdateStatusFunction"):
            assert "COMPONENT_SECRET_ARN" not in resources[other]["Properties"]["Environment"]["Variables"]
        statements = [
            s
            for p in resources["GetTokenFunctionRole"]["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        ]
        assert {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ComponentSecretArn"}} in statements
    [metric] = [
        f["Properties"] for f in of_type(resources, "AWS::Logs::MetricFilter").values()
        if f["Properties"]["MetricTransformations"][0]["MetricName"] == "ComponentRefreshFailed"
    ]
    # The field the schedule's log line carries (the code's `metric.component_refresh_failed`).
    assert metric["FilterPattern"] == "{ $.component_refresh_failed = 1 }"
    assert metric["LogGroupName"] == {"Ref": "GetTokenLogGroup"}
    direct = (TEMPLATE.parent / "shared/src/http/direct.rs").read_text()
    assert "metric.component_refresh_failed = 1" in direct
    alarm = resources["ComponentRefreshFailedAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["EvaluationPeriods"], alarm["Period"]) == ("ComponentRefreshFailed", 2, 3600)
    _, plain = deployed()
    assert "ComponentRefreshFailedAlarm" not in plain
    assert events not in {r["Properties"]["RouteKey"] for r in of_type(plain, "AWS::ApiGatewayV2::Route").values()}
    assert "COMPONENT_SECRET_ARN" not in plain["GetTokenFunction"]["Properties"]["Environment"]["Variables"]
    assert "ComponentSecretArn" not in json.dumps(plain["GetTokenFunctionRole"])
