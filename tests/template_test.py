"""Guards on template.yaml: the properties a later edit must not drop silently.

Run by `make test` with the project's virtualenv (cfn-lint's decoder reads the
CloudFormation tags: !Ref, !GetAtt, !Sub, !If).
"""

import pathlib
import sys
import tomllib
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE, ERRORS = decode(str(ROOT / "template.yaml"))
if ERRORS:
    sys.exit(f"template.yaml does not parse: {ERRORS}")
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]


def resources_of(kind):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def only(kind):
    found = resources_of(kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


FUNCTION = only("AWS::Serverless::Function")
PROPS = FUNCTION["Properties"]


class FunctionTest(unittest.TestCase):
    def test_runs_the_cargo_lambda_binary_on_al2023(self):
        self.assertEqual(PROPS["Runtime"], "provided.al2023")
        self.assertEqual(PROPS["Handler"], "bootstrap")
        self.assertEqual(FUNCTION["Metadata"]["BuildMethod"], "rust-cargolambda")
        self.assertEqual(FUNCTION["Metadata"]["BuildProperties"]["Binary"], "nylas-webhook-sqs")

    def test_architecture_is_arm64_by_default_and_selectable(self):
        self.assertEqual(PROPS["Architectures"], [{"Ref": "Architecture"}])
        self.assertEqual(PARAMETERS["Architecture"]["Default"], "arm64")
        self.assertEqual(sorted(PARAMETERS["Architecture"]["AllowedValues"]), ["arm64", "x86_64"])

    def test_timeout_is_within_nylas_ten_seconds(self):
        self.assertLessEqual(PROPS["Timeout"], 10)

    def test_memory_is_set_and_tracing_is_active(self):
        self.assertIsInstance(PROPS["MemorySize"], int)
        self.assertEqual(PROPS["Tracing"], "Active")

    def test_reserved_concurrency_is_a_parameter(self):
        reserved = PROPS["ReservedConcurrentExecutions"]["Fn::If"]
        self.assertEqual(reserved[1], {"Ref": "ReservedConcurrency"})

    def test_log_group_has_retention(self):
        groups = resources_of("AWS::Logs::LogGroup")
        function_groups = [
            g for g in groups.values()
            if "/aws/lambda/${ReceiverFunction}" in str(g["Properties"]["LogGroupName"])
        ]
        self.assertEqual(len(function_groups), 1)
        self.assertEqual(
            function_groups[0]["Properties"]["RetentionInDays"], {"Ref": "LogRetentionDays"}
        )

    def test_environment_names_the_queue_and_secrets(self):
        env = PROPS["Environment"]["Variables"]
        self.assertEqual(env["QUEUE_URL"], {"Ref": "NotificationQueue"})
        self.assertEqual(env["NYLAS_WEBHOOK_SECRET"], {"Ref": "NylasWebhookSecret"})
        self.assertEqual(
            env["NYLAS_WEBHOOK_SECRET_PREVIOUS"], {"Ref": "NylasWebhookSecretPrevious"}
        )


class ApiTest(unittest.TestCase):
    def test_get_and_post_routes_on_the_webhook_path(self):
        routes = sorted(
            (e["Properties"]["Method"], e["Properties"]["Path"])
            for e in PROPS["Events"].values()
            if e["Type"] == "HttpApi"
        )
        self.assertEqual(routes, [("GET", "/webhook"), ("POST", "/webhook")])

    def test_default_route_is_throttled_and_access_logged(self):
        api = only("AWS::Serverless::HttpApi")["Properties"]
        self.assertGreater(api["DefaultRouteSettings"]["ThrottlingRateLimit"], 0)
        self.assertGreater(api["DefaultRouteSettings"]["ThrottlingBurstLimit"], 0)
        self.assertIn("DestinationArn", api["AccessLogSettings"])


class QueueTest(unittest.TestCase):
    queue = RESOURCES["NotificationQueue"]["Properties"]
    dead_letters = RESOURCES["DeadLetterQueue"]["Properties"]

    def test_queue_redrives_to_the_dead_letter_queue(self):
        redrive = self.queue["RedrivePolicy"]
        self.assertEqual(redrive["deadLetterTargetArn"], {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
        self.assertGreater(redrive["maxReceiveCount"], 0)

    def test_both_queues_are_encrypted_at_rest(self):
        for queue in (self.queue, self.dead_letters):
            self.assertTrue(queue.get("SqsManagedSseEnabled") or queue.get("KmsMasterKeyId"))

    def test_both_queues_take_one_mebibyte_messages(self):
        for queue in (self.queue, self.dead_letters):
            self.assertEqual(queue["MaximumMessageSize"], 1048576)

    def test_retention_is_a_parameter(self):
        self.assertEqual(self.queue["MessageRetentionPeriod"], {"Ref": "MessageRetentionSeconds"})

    def test_fifo_is_selectable_and_applies_to_both_queues(self):
        self.assertEqual(PARAMETERS["QueueType"]["Default"], "standard")
        for queue in (self.queue, self.dead_letters):
            self.assertEqual(queue["FifoQueue"]["Fn::If"][0], "IsFifo")
            self.assertTrue(queue["QueueName"]["Fn::If"][1]["Fn::Sub"].endswith(".fifo"))


class SecretTest(unittest.TestCase):
    def test_secrets_are_noecho_and_the_current_one_has_no_default(self):
        self.assertTrue(PARAMETERS["NylasWebhookSecret"]["NoEcho"])
        self.assertNotIn("Default", PARAMETERS["NylasWebhookSecret"])
        self.assertTrue(PARAMETERS["NylasWebhookSecretPrevious"]["NoEcho"])
        self.assertEqual(PARAMETERS["NylasWebhookSecretPrevious"]["Default"], "")

    def test_no_output_reveals_a_secret(self):
        self.assertNotIn("NylasWebhookSecret", str(TEMPLATE["Outputs"]))

    def test_samconfig_stores_no_secret(self):
        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        self.assertNotIn("NylasWebhookSecret", str(config))


class PolicyTest(unittest.TestCase):
    role = only("AWS::IAM::Role")["Properties"]

    def statements(self):
        return [s for p in self.role["Policies"] for s in p["PolicyDocument"]["Statement"]]

    def test_the_function_uses_this_role_and_no_managed_policy(self):
        self.assertEqual(PROPS["Role"], {"Fn::GetAtt": ["ReceiverRole", "Arn"]})
        self.assertNotIn("Policies", PROPS)
        self.assertNotIn("ManagedPolicyArns", self.role)

    def test_only_send_logs_and_traces_are_allowed(self):
        actions = sorted(a for s in self.statements() for a in _list(s["Action"]))
        self.assertEqual(actions, sorted([
            "sqs:SendMessage",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        ]))
        self.assertTrue(all(s["Effect"] == "Allow" for s in self.statements()))

    def test_sending_is_scoped_to_the_notification_queue(self):
        (send,) = [s for s in self.statements() if "sqs:SendMessage" in _list(s["Action"])]
        self.assertEqual(send["Resource"], {"Fn::GetAtt": ["NotificationQueue", "Arn"]})

    def test_only_xray_has_a_wildcard_resource(self):
        for statement in self.statements():
            if statement["Resource"] == "*":
                self.assertTrue(all(a.startswith("xray:") for a in _list(statement["Action"])))


class AlarmTest(unittest.TestCase):
    def test_the_failures_that_lose_notifications_raise_alarms(self):
        metrics = sorted(
            (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
            for a in resources_of("AWS::CloudWatch::Alarm").values()
        )
        self.assertEqual(metrics, [
            ("AWS/ApiGateway", "5xx"),
            ("AWS/Lambda", "Errors"),
            ("AWS/Lambda", "Throttles"),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ])
        for alarm in resources_of("AWS::CloudWatch::Alarm").values():
            self.assertEqual(alarm["Properties"]["AlarmActions"], [{"Ref": "AlarmTopic"}])

    def test_email_subscription_is_optional(self):
        subscription = RESOURCES["AlarmEmailSubscription"]
        self.assertEqual(subscription["Condition"], "HasAlarmEmail")
        self.assertEqual(PARAMETERS["AlarmEmail"]["Default"], "")


class OutputTest(unittest.TestCase):
    def test_outputs_give_the_webhook_url_and_the_queues(self):
        outputs = TEMPLATE["Outputs"]
        for name in ("WebhookUrl", "QueueUrl", "QueueArn", "DeadLetterQueueUrl"):
            self.assertIn(name, outputs)
        self.assertIn("/webhook", outputs["WebhookUrl"]["Value"]["Fn::Sub"])


def _list(value):
    return value if isinstance(value, list) else [value]


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    # The same closing line as cargo test, so `make test` can add the counts up.
    status = "ok" if failed == 0 and not result.skipped else "FAILED"
    print(f"test result: {status}. {passed} passed; {failed} failed; 0 ignored")
    sys.exit(0 if status == "ok" else 1)
