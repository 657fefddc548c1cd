"""What template.yaml must keep consistent with the function and with itself.

AWS's linters (`make template`) check that the template is valid. These tests check what a
valid template can still get wrong: the settings the function reads, limits the code relies
on, permissions that must match the resources they are for, secrets that must not leak.
Values the code defines are read from src/, so an edit on one side alone fails here.

Run by `make test` with the project's virtualenv (cfn-lint's decoder reads !Ref, !Sub, !If).
"""

import pathlib
import re
import sys
import tomllib
import unittest

from cfnlint.decode import decode

import summary

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE, ERRORS = decode(str(ROOT / "template.yaml"))
if ERRORS:
    sys.exit(f"template.yaml does not parse: {ERRORS}")
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]


def rust_constant(path, name):
    """The value of `const NAME` in src/`path`: a string, a number, or Duration::from_secs."""
    text = (ROOT / "src" / path).read_text()
    match = re.search(rf"const {name}: [^=]+= (.+);", text)
    assert match, f"no const {name} in src/{path}"
    value = match.group(1)
    if value.startswith('"'):
        return value.strip('"')
    seconds = re.fullmatch(r"Duration::from_secs\((\d+)\)", value)
    return int(seconds.group(1)) if seconds else int(value.replace("_", ""))


def resources_of(kind):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def only(kind):
    found = resources_of(kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


FUNCTION_NAME, FUNCTION = only("AWS::Serverless::Function")
PROPS = FUNCTION["Properties"]
ENVIRONMENT = PROPS["Environment"]["Variables"]
ROLE_NAME, ROLE = only("AWS::IAM::Role")


def statements():
    return [s for p in ROLE["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def as_list(value):
    return value if isinstance(value, list) else [value]


def allowed(action):
    return [s["Resource"] for s in statements() if action in as_list(s["Action"])]


class FunctionTest(unittest.TestCase):
    def test_the_function_answers_before_nylas_gives_up_and_after_its_own_budgets(self):
        budgets = rust_constant("handler.rs", "QUEUE_BUDGET") + rust_constant("secret.rs", "READ_BUDGET")
        # Nylas waits 10 s; past its budgets the function answers 503 itself, and a Lambda
        # timeout would reach Nylas as a 5xx it does not retry.
        self.assertGreater(PROPS["Timeout"], budgets)
        self.assertLessEqual(PROPS["Timeout"], 10)

    def test_every_required_setting_is_given(self):
        for name in ("QUEUE_URL", "SECRET_ARN"):
            variable = rust_constant("config.rs", name)
            self.assertIn(variable, ENVIRONMENT, f"every POST is 503 without {variable}")

    def test_the_secret_the_function_reads_is_the_one_it_may_read(self):
        secret = ENVIRONMENT[rust_constant("config.rs", "SECRET_ARN")]
        self.assertEqual(RESOURCES[secret["Ref"]]["Type"], "AWS::SecretsManager::Secret")
        self.assertEqual(allowed("secretsmanager:GetSecretValue"), [secret])

    def test_the_secret_is_never_in_the_environment_or_a_parameter(self):
        for name in ("SECRET", "PREVIOUS_SECRET"):
            self.assertNotIn(rust_constant("config.rs", name), ENVIRONMENT)
        self.assertEqual([n for n, p in PARAMETERS.items() if p.get("NoEcho")], [])
        secret = RESOURCES[ENVIRONMENT[rust_constant("config.rs", "SECRET_ARN")]["Ref"]]
        self.assertNotIn("SecretString", secret["Properties"], "a placeholder is generated")
        self.assertIn("GenerateSecretString", secret["Properties"])

    def test_the_queue_the_function_sends_to_is_the_one_it_may_send_to(self):
        queue = ENVIRONMENT[rust_constant("config.rs", "QUEUE_URL")]["Ref"]
        self.assertEqual(allowed("sqs:SendMessage"), [{"Fn::GetAtt": [queue, "Arn"]}])

    def test_the_sam_build_makes_the_binary_the_function_runs(self):
        cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
        self.assertEqual(FUNCTION["Metadata"]["BuildProperties"]["Binary"], cargo["package"]["name"])
        self.assertEqual(PROPS["Handler"], "bootstrap")

    def test_the_role_writes_only_to_the_function_s_own_log_group(self):
        (resource,) = allowed("logs:PutLogEvents")
        groups = [g["Properties"]["LogGroupName"]["Fn::Sub"] for g in resources_of("AWS::Logs::LogGroup").values()]
        self.assertIn("/aws/lambda/${ReceiverFunction}", groups)
        self.assertIn(f"log-group:/aws/lambda/{PROPS['FunctionName']['Fn::Sub']}:*", resource["Fn::Sub"])

    def test_nothing_but_x_ray_is_allowed_on_every_resource(self):
        for statement in statements():
            if statement["Resource"] == "*":
                self.assertTrue(all(a.startswith("xray:") for a in as_list(statement["Action"])))

    def test_the_function_uses_its_own_role_alone(self):
        self.assertEqual(PROPS["Role"], {"Fn::GetAtt": [ROLE_NAME, "Arn"]})
        self.assertNotIn("Policies", PROPS)
        self.assertNotIn("ManagedPolicyArns", ROLE["Properties"])


class ApiTest(unittest.TestCase):
    def test_nylas_reaches_both_methods_at_the_url_the_stack_outputs(self):
        routes = sorted(
            (e["Properties"]["Method"], e["Properties"]["Path"])
            for e in PROPS["Events"].values()
        )
        url = TEMPLATE["Outputs"]["WebhookUrl"]["Value"]["Fn::Sub"]
        self.assertEqual(routes, [("GET", "/webhook"), ("POST", "/webhook")])
        self.assertTrue(url.endswith("/webhook"), url)


class QueueTest(unittest.TestCase):
    queue = RESOURCES["NotificationQueue"]["Properties"]
    dead_letters = RESOURCES["DeadLetterQueue"]["Properties"]

    def test_both_queues_take_the_largest_message_the_function_sends(self):
        largest = rust_constant("sqs.rs", "MAX_BYTES")
        for queue in (self.queue, self.dead_letters):
            self.assertEqual(queue["MaximumMessageSize"], largest)

    def test_the_dead_letter_queue_is_of_the_same_kind(self):
        # SQS requires a FIFO queue's dead-letter queue to be FIFO too, and the function
        # recognises a FIFO queue by its name.
        for queue in (self.queue, self.dead_letters):
            self.assertEqual(queue["FifoQueue"]["Fn::If"][0], "IsFifo")
            fifo_name = queue["QueueName"]["Fn::If"][1]["Fn::Sub"]
            self.assertTrue(fifo_name.endswith(".fifo"), fifo_name)
        target = self.queue["RedrivePolicy"]["deadLetterTargetArn"]
        self.assertEqual(target, {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})


class SecretTest(unittest.TestCase):
    def test_no_output_and_no_saved_setting_names_a_secret_value(self):
        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        self.assertNotIn("Secret", str(config))
        for output in TEMPLATE["Outputs"].values():
            self.assertNotIn("SecretString", str(output))


class CapacityTest(unittest.TestCase):
    def test_the_api_throttles_before_the_function_would(self):
        # A request holds an instance for at most Timeout seconds. Past the API's limits Nylas
        # gets 429 (retried); past the function's concurrency it would get 500 (not retried).
        api = only("AWS::Serverless::HttpApi")[1]["Properties"]["DefaultRouteSettings"]
        default = lambda ref: PARAMETERS[ref["Ref"]]["Default"]
        burst, rate = default(api["ThrottlingBurstLimit"]), default(api["ThrottlingRateLimit"])
        reserved = default(PROPS["ReservedConcurrentExecutions"])
        self.assertLessEqual(burst + rate * PROPS["Timeout"], reserved)


class AlarmTest(unittest.TestCase):
    alarms = resources_of("AWS::CloudWatch::Alarm")

    def test_every_alarm_publishes_to_the_alarm_topic(self):
        topic_name, _ = only("AWS::SNS::Topic")
        for name, alarm in self.alarms.items():
            self.assertEqual(alarm["Properties"]["AlarmActions"], [{"Ref": topic_name}], name)

    def test_the_failures_that_lose_notifications_raise_alarms(self):
        watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in self.alarms.values()}
        for metric in [("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/ApiGateway", "5xx")]:
            self.assertIn(metric, watched)

    def test_the_function_s_own_metrics_are_watched_as_it_writes_them(self):
        namespace = rust_constant("log.rs", "NAMESPACE")
        outcome = (ROOT / "src" / "outcome.rs").read_text()
        own = [a["Properties"] for a in self.alarms.values() if not a["Properties"]["Namespace"].startswith("AWS/")]
        reasons = [d["Value"] for a in own for d in a["Dimensions"] if d["Name"] == "reason"]
        self.assertEqual(sorted(reasons), ["notification_too_large", "signature_mismatch"])
        for alarm in own:
            self.assertEqual((alarm["Namespace"], alarm["MetricName"]), (namespace, "Rejected"))
        for reason in reasons:
            self.assertIn(f'("{reason}",', outcome, f"the function never writes reason {reason}")

    def test_no_alarm_topic_uses_the_aws_managed_sns_key(self):
        # CloudWatch cannot use alias/aws/sns: no alarm would ever be delivered.
        for name, topic in resources_of("AWS::SNS::Topic").items():
            self.assertNotIn("alias/aws/sns", str(topic["Properties"].get("KmsMasterKeyId")), name)


if __name__ == "__main__":
    summary.run(verbosity=2)
