import math

from tag_compliance.aws.collectors.lambda_function import LambdaFunctionCollector
from tests.collectors.helpers import lambda_zip, run_collector


def test_lambda_tags_come_from_bulk_tagging_lookups(aws):
    iam = aws.client("iam")
    role = iam.create_role(RoleName="lambda-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws.client("lambda")
    code = lambda_zip()
    tagged = 0
    for index in range(130):
        tags = {"Owner": f"team{index}@example.com", "Application": "api"} if index % 10 else {}
        tagged += bool(tags)
        lam.create_function(
            FunctionName=f"fn-{index:03d}",
            Runtime="python3.11",
            Role=role,
            Handler="handler.handle",
            Code={"ZipFile": code},
            Tags=tags,
        )

    run = run_collector(LambdaFunctionCollector(), "123456789012", "us-east-1", page_size=20)

    assert len(run.records) == 130
    # moto 5.2 ignores MaxItems on ListFunctions (AWS pages at 50); the Tagging API pages here
    # one bulk lookup of 100 resources per request, never one request per function
    assert run.pages("GetResources") == math.ceil(tagged / 100) == 2
    assert run.records["fn-001"].tags == {"Owner": "team1@example.com", "Application": "api"}
    assert run.records["fn-010"].tags == {}
    assert run.records["fn-001"].arn == "arn:aws:lambda:us-east-1:123456789012:function:fn-001"
