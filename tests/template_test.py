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
PROPS_TEXT = (ROOT / "template.yaml").read_text()


def rust_constant(path, name):
    """The value of `const NAME` in src/`path` (or, for a path with a folder, in that file of
    the workspace): a string, a number, or Duration::from_secs."""
    text = (ROOT / ("" if "/" in path else "src") / path).read_text()
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


FUNCTION_NAME, FUNCTION = "ReceiverFunction", RESOURCES["ReceiverFunction"]
PROPS = FUNCTION["Properties"]
ENVIRONMENT = PROPS["Environment"]["Variables"]
ROLE_NAME, ROLE = "ReceiverRole", RESOURCES["ReceiverRole"]
CONSUMER = RESOURCES["ConsumerFunction"]
CONSUMER_PROPS = CONSUMER["Properties"]
CONSUMER_ROLE = RESOURCES["ConsumerRole"]


def policies(role):
    """A role's policies, those that depend on a condition (`Fn::If`) included."""
    for policy in role["Properties"]["Policies"]:
        if "Fn::If" in policy:
            yield from (p for p in policy["Fn::If"][1:] if isinstance(p, dict) and "PolicyDocument" in p)
        else:
            yield policy


def statements(role=ROLE):
    return [s for p in policies(role) for s in p["PolicyDocument"]["Statement"]]


def as_list(value):
    return value if isinstance(value, list) else [value]


def allowed(action, role=ROLE):
    return [s["Resource"] for s in statements(role) if action in as_list(s["Action"])]


def consumer_source(path):
    return (ROOT / "consumer" / "src" / path).read_text()


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

    def test_the_previous_secret_s_time_to_live_reaches_the_function_with_the_code_s_default(self):
        variable = rust_constant("config.rs", "PREVIOUS_SECRET_TTL")
        parameter = PARAMETERS[ENVIRONMENT[variable]["Ref"]]
        self.assertEqual(parameter["Default"], rust_constant("config.rs", "PREVIOUS_SECRET_TTL_DEFAULT"))

    def test_the_time_secrets_are_kept_through_passing_failures_reaches_the_function(self):
        variable = rust_constant("config.rs", "SECRET_KEEP")
        parameter = PARAMETERS[ENVIRONMENT[variable]["Ref"]]
        self.assertEqual(parameter["Default"], rust_constant("config.rs", "SECRET_KEEP_DEFAULT"))

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
        for statement in statements() + statements(CONSUMER_ROLE):
            if statement["Resource"] == "*":
                self.assertTrue(all(a.startswith("xray:") for a in as_list(statement["Action"])))

    def test_the_function_uses_its_own_role_alone(self):
        self.assertEqual(PROPS["Role"], {"Fn::GetAtt": [ROLE_NAME, "Arn"]})
        self.assertNotIn("Policies", PROPS)
        self.assertNotIn("ManagedPolicyArns", ROLE["Properties"])


class ApiTest(unittest.TestCase):
    def test_nylas_reaches_both_methods_at_the_url_the_stack_outputs(self):
        routes = sorted(r["Properties"]["RouteKey"]["Fn::Sub"] for r in resources_of("AWS::ApiGatewayV2::Route").values())
        self.assertEqual(routes, ["GET ${WebhookPath}", "POST ${WebhookPath}"])
        (integration_name, integration), = resources_of("AWS::ApiGatewayV2::Integration").items()
        for route in resources_of("AWS::ApiGatewayV2::Route").values():
            self.assertEqual(route["Properties"]["Target"], {"Fn::Sub": f"integrations/${{{integration_name}}}"})
        self.assertEqual(integration["Properties"]["IntegrationUri"], {"Fn::GetAtt": [FUNCTION_NAME, "Arn"]})
        self.assertEqual(integration["Properties"]["PayloadFormatVersion"], "2.0")
        url = TEMPLATE["Outputs"]["WebhookUrl"]["Value"]["Fn::Sub"]
        self.assertTrue(url.endswith("${WebhookPath}"), url)
        (permission,) = resources_of("AWS::Lambda::Permission").values()
        self.assertEqual(permission["Properties"]["Principal"], "apigateway.amazonaws.com")
        self.assertTrue(permission["Properties"]["SourceArn"]["Fn::Sub"].endswith("${WebhookApi}/*/*${WebhookPath}"))

    def test_the_path_takes_a_random_segment_and_nothing_that_would_break_the_url(self):
        pattern = re.compile(PARAMETERS["WebhookPath"]["AllowedPattern"])
        self.assertRegex(PARAMETERS["WebhookPath"]["Default"], pattern)
        random = "/webhook/" + "0123456789abcdef" * 2
        self.assertRegex(random, pattern)
        for path in ["webhook", "/", "/webhook/", "//webhook", "/a b", "/{proxy+}", "/a?b"]:
            self.assertIsNone(pattern.fullmatch(path), path)
        deploy = (ROOT / "scripts" / "deploy.py").read_text()
        self.assertIn('path = f"/webhook/{secrets.token_hex(16)}"', deploy)


class QueueTest(unittest.TestCase):
    queue = RESOURCES["NotificationQueue"]["Properties"]
    dead_letters = RESOURCES["DeadLetterQueue"]["Properties"]

    def test_queues_and_secret_outlive_a_stack_delete_or_replacement(self):
        secret = ENVIRONMENT[rust_constant("config.rs", "SECRET_ARN")]["Ref"]
        for name in ("NotificationQueue", "DeadLetterQueue", secret):
            self.assertEqual(RESOURCES[name].get("DeletionPolicy"), "Retain", name)
            self.assertEqual(RESOURCES[name].get("UpdateReplacePolicy"), "Retain", name)

    def test_both_queues_refuse_requests_without_tls(self):
        _, policy = only("AWS::SQS::QueuePolicy")
        queues = policy["Properties"]["Queues"]
        self.assertEqual(queues, [{"Ref": "NotificationQueue"}, {"Ref": "DeadLetterQueue"}])
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual((statement["Effect"], statement["Principal"], statement["Action"]), ("Deny", "*", "sqs:*"))
        arns = [{"Fn::GetAtt": [q["Ref"], "Arn"]} for q in queues]
        self.assertEqual(statement["Resource"], arns)
        self.assertEqual(statement["Condition"], {"Bool": {"aws:SecureTransport": "false"}})

    def test_only_the_notification_queue_may_send_to_the_dead_letter_queue(self):
        allow = self.dead_letters["RedriveAllowPolicy"]
        self.assertEqual(allow["redrivePermission"], "byQueue")
        (arn,) = allow["sourceQueueArns"]
        condition, fifo, standard = arn["Fn::If"]
        names = self.queue["QueueName"]["Fn::If"]
        self.assertEqual(condition, names[0])
        prefix = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:"
        self.assertEqual(fifo["Fn::Sub"], prefix + names[1]["Fn::Sub"])
        self.assertEqual(standard["Fn::Sub"], prefix + names[2]["Fn::Sub"])

    def test_both_queues_take_the_largest_message_the_function_sends(self):
        largest = rust_constant("message.rs", "MAX_BYTES")
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

    def test_make_dev_s_queues_are_named_and_redriven_as_deployed(self):
        local = (ROOT / "scripts" / "local_aws.py").read_text()
        count = int(re.search(r"^MAX_RECEIVE_COUNT = (\d+)$", local, re.M)[1])
        self.assertEqual(count, self.queue["RedrivePolicy"]["maxReceiveCount"])
        self.assertTrue(self.dead_letters["QueueName"]["Fn::If"][2]["Fn::Sub"].endswith("-dead-letters"))
        self.assertIn('DEAD_LETTERS = f"{QUEUE}-dead-letters"', local)


class ArchiveTest(unittest.TestCase):
    bucket = RESOURCES["ArchiveBucket"]
    stream = RESOURCES["ArchiveStream"]["Properties"]

    def test_the_archive_is_on_by_default_for_thirty_days_and_absent_when_off(self):
        self.assertEqual((PARAMETERS["Archive"]["Default"], PARAMETERS["ArchiveDays"]["Default"]), ("true", 30))
        for name in ("ArchiveBucket", "ArchiveBucketPolicy", "ArchiveStream", "ArchiveDeliveryRole",
                     "ArchiveFailuresAlarm"):
            self.assertEqual(RESOURCES[name].get("Condition"), "Archives", name)
        stream = ENVIRONMENT[rust_constant("config.rs", "ARCHIVE_STREAM")]
        self.assertEqual(stream, {"Fn::If": ["Archives", {"Ref": "ArchiveStream"}, {"Ref": "AWS::NoValue"}]})

    def test_the_bucket_is_encrypted_private_tls_only_kept_and_expired(self):
        props = self.bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        self.assertEqual(rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")
        self.assertTrue(all(props["PublicAccessBlockConfiguration"].values()))
        self.assertEqual(len(props["PublicAccessBlockConfiguration"]), 4)
        (expiry,) = props["LifecycleConfiguration"]["Rules"]
        self.assertEqual((expiry["Status"], expiry["ExpirationInDays"]), ("Enabled", {"Ref": "ArchiveDays"}))
        self.assertEqual((self.bucket["DeletionPolicy"], self.bucket["UpdateReplacePolicy"]), ("Retain", "Retain"))
        (deny,) = RESOURCES["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual((deny["Effect"], deny["Action"]), ("Deny", "s3:*"))
        self.assertEqual(deny["Condition"], {"Bool": {"aws:SecureTransport": "false"}})

    def test_the_receiver_may_only_put_records_and_firehose_only_write_the_bucket(self):
        (resource,) = allowed("firehose:PutRecordBatch")
        self.assertEqual(resource, {"Fn::GetAtt": ["ArchiveStream", "Arn"]})
        firehose = [a for s in statements() for a in as_list(s["Action"]) if a.startswith(("firehose:", "s3:"))]
        self.assertEqual(firehose, ["firehose:PutRecordBatch"])
        actions = [a for s in statements(RESOURCES["ArchiveDeliveryRole"]) for a in as_list(s["Action"])]
        self.assertTrue(all(a.startswith("s3:") and not a.startswith(("s3:Delete", "s3:Get")) for a in actions
                            if a != "s3:GetBucketLocation"), actions)
        self.assertNotIn("s3:GetObject", actions)

    def test_the_stream_writes_the_prefix_and_lines_a_replay_reads(self):
        destination = self.stream["ExtendedS3DestinationConfiguration"]
        replay = (ROOT / "replay" / "src" / "main.rs").read_text()
        self.assertIn(f'"{destination["Prefix"]}".to_owned()', replay, "the replay's default prefix")
        self.assertEqual(destination["CompressionFormat"], "UNCOMPRESSED")
        self.assertLessEqual(destination["BufferingHints"]["IntervalInSeconds"],
                             rust_constant("replay/src/lib.rs", "BUFFERING"))
        self.assertEqual(self.stream["DeliveryStreamType"], "DirectPut")

    def test_a_failing_archive_raises_an_alarm_of_its_stack(self):
        alarm = RESOURCES["ArchiveFailuresAlarm"]["Properties"]
        self.assertEqual((alarm["Namespace"], alarm["MetricName"]), ("NylasWebhookSqs", "ArchiveFailed"))
        self.assertEqual(alarm["Dimensions"], [{"Name": "FunctionName", "Value": {"Ref": "ReceiverFunction"}}])
        self.assertIn('("ArchiveFailed", ', (ROOT / "src" / "log.rs").read_text())


class SecretTest(unittest.TestCase):
    def test_no_output_and_no_saved_setting_names_a_secret_value(self):
        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        self.assertNotIn("Secret", str(config))
        for output in TEMPLATE["Outputs"].values():
            self.assertNotIn("SecretString", str(output))


class CapacityTest(unittest.TestCase):
    def test_the_api_throttles_before_the_function_would(self):
        # While SQS is down a request holds an instance for at most CALL_TIMEOUT (the breaker
        # answers the rest at once). Past the API's limits Nylas gets 429 (retried); past the
        # function's concurrency it would get 500 (not retried).
        api = only("AWS::ApiGatewayV2::Stage")[1]["Properties"]["DefaultRouteSettings"]
        default = lambda ref: PARAMETERS[ref["Ref"]]["Default"]
        burst, rate = default(api["ThrottlingBurstLimit"]), default(api["ThrottlingRateLimit"])
        reserved = default(PROPS["ReservedConcurrentExecutions"])
        outage_answer = rust_constant("main.rs", "CALL_TIMEOUT")
        self.assertLessEqual(burst + rate * outage_answer, reserved)
        self.assertIn(f"ApiRateLimit x {outage_answer} <= ReservedConcurrency", PROPS_TEXT)

    def test_the_defaults_serve_a_hundred_requests_a_second(self):
        api = only("AWS::ApiGatewayV2::Stage")[1]["Properties"]["DefaultRouteSettings"]
        self.assertGreaterEqual(PARAMETERS[api["ThrottlingRateLimit"]["Ref"]]["Default"], 100)


class AlarmTest(unittest.TestCase):
    alarms = resources_of("AWS::CloudWatch::Alarm")

    def test_every_alarm_publishes_to_the_alarm_topic(self):
        topic_name, _ = only("AWS::SNS::Topic")
        for name, alarm in self.alarms.items():
            self.assertEqual(alarm["Properties"]["AlarmActions"], [{"Ref": topic_name}], name)

    @staticmethod
    def metrics(alarm):
        """(namespace, name) of every metric an alarm reads, by id."""
        props = alarm["Properties"]
        if "MetricName" in props:
            return {"m": (props["Namespace"], props["MetricName"])}
        stats = {m["Id"]: m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m}
        return {id: (m["Namespace"], m["MetricName"]) for id, m in stats.items()}

    @staticmethod
    def expression(alarm):
        (expression,) = [m["Expression"] for m in alarm["Properties"]["Metrics"] if m.get("ReturnData")]
        return expression

    def test_the_failures_that_lose_notifications_raise_alarms(self):
        watched = {metric for alarm in self.alarms.values() for metric in self.metrics(alarm).values()}
        for metric in [("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("NylasWebhookSqs", "ServerErrors")]:
            self.assertIn(metric, watched)

    def test_the_function_s_own_metrics_are_watched_as_it_writes_them(self):
        # Both functions write with the contract's one EMF writer and its namespace.
        namespace = rust_constant("contract/src/lib.rs", "NAMESPACE")
        log = (ROOT / "src" / "log.rs").read_text() + consumer_source("log.rs")
        self.assertEqual(log.count("emf::metadata("), 2, "each function's line is the contract's EMF")
        outcome = (ROOT / "src" / "outcome.rs").read_text()
        filtered = {
            t["MetricName"]
            for f in resources_of("AWS::Logs::MetricFilter").values()
            for t in f["Properties"]["MetricTransformations"]
        }
        for name, alarm in self.alarms.items():
            for space, metric in self.metrics(alarm).values():
                if not space.startswith("AWS/"):
                    self.assertEqual(space, namespace, name)
                    written = f'"{metric}"' in log or metric in filtered
                    self.assertTrue(written, f"{name}: nothing writes {metric}")
        too_large = self.alarms["TooLargeAlarm"]["Properties"]["Metrics"]
        reasons = [
            (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Metric"]["Dimensions"][-1]["Value"])
            for m in too_large if "MetricStat" in m
        ]
        self.assertEqual(reasons, [("Rejected", "body_too_large"), ("Rejected", "notification_too_large")])
        for _, reason in reasons:
            self.assertTrue(f'("{reason}",' in outcome, f"the function never writes reason {reason}")

    def test_every_alarm_on_the_project_s_metrics_selects_its_own_stack(self):
        # Two stacks in one account and region: each alarm reads its own stack's metric.
        own = {"FunctionName": [{"Ref": "ReceiverFunction"}, {"Ref": "ConsumerFunction"}],
               "ApiId": [{"Ref": "WebhookApi"}]}
        for name, alarm in self.alarms.items():
            props = alarm["Properties"]
            metrics = [props] if "MetricName" in props else [
                m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
            for metric in metrics:
                if metric["Namespace"] != "NylasWebhookSqs":
                    continue
                stack = [d for d in metric.get("Dimensions", []) if d["Value"] in own.get(d["Name"], [])]
                self.assertTrue(stack, f"{name} reads {metric['MetricName']} of every stack")
        for name, log_filter in resources_of("AWS::Logs::MetricFilter").items():
            for transformation in log_filter["Properties"]["MetricTransformations"]:
                self.assertEqual(transformation["Dimensions"], [{"Key": "ApiId", "Value": "$.apiId"}], name)
        access_log = only("AWS::ApiGatewayV2::Stage")[1]["Properties"]["AccessLogSettings"]["Format"]
        for field in ('"apiId":"$context.apiId"', '"routeKey":"$context.routeKey"', '"method":"$context.httpMethod"'):
            self.assertIn(field, access_log)
        log = (ROOT / "src" / "log.rs").read_text()
        self.assertIn('vec![(&["FunctionName"][..]', log)
        self.assertIn('(&["FunctionName", "reason"], &["Rejected"])', log)
        self.assertIn('(&["FunctionName"], &[metric])', consumer_source("log.rs"))

    def test_throttling_and_floods_are_seen(self):
        throttled = RESOURCES["ThrottledMetricFilter"]
        self.assertEqual(throttled["Properties"]["LogGroupName"], {"Ref": "ApiAccessLogGroup"})
        self.assertIn('$.status = "429"', throttled["Properties"]["FilterPattern"])
        access_log = only("AWS::ApiGatewayV2::Stage")[1]["Properties"]["AccessLogSettings"]["Format"]
        self.assertIn('"status":"$context.status"', access_log)
        self.assertEqual(self.metrics(self.alarms["ThrottledAlarm"]), {"m": ("NylasWebhookSqs", "Throttled")})
        self.assertEqual(self.metrics(self.alarms["ClientErrorsAlarm"]), {"m": ("AWS/ApiGateway", "4xx")})

    def test_the_stale_secret_alarm_counts_mismatches_only_while_nothing_is_forwarded(self):
        alarm = self.alarms["SignatureMismatchAlarm"]
        metrics = self.metrics(alarm)
        self.assertEqual(metrics["mismatches"][1], "SignatureMismatch")
        self.assertEqual(metrics["forwarded"][1], "Forwarded")
        self.assertEqual(
            self.expression(alarm), "IF(FILL(mismatches, 0) > 0 AND FILL(forwarded, 0) == 0, 1, 0)"
        )
        # Nylas sends a delivery again and again: mismatches in 3 of 4 five-minute periods, so
        # one or two forged POSTs never fire it.
        props = alarm["Properties"]
        self.assertEqual((props["EvaluationPeriods"], props["DatapointsToAlarm"]), (4, 3))
        self.assertEqual({m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m}, {300})

    def test_the_failing_deliveries_alarm_counts_posts_and_fires_on_a_quiet_webhook(self):
        alarm = self.alarms["FailingDeliveriesAlarm"]
        props = alarm["Properties"]
        metrics = self.metrics(alarm)
        self.assertEqual({id: m[1] for id, m in metrics.items()}, {"deliveries": "Deliveries", "failed": "FailedDeliveries"})
        self.assertEqual(self.expression(alarm), "FILL(failed, 0) / deliveries")
        self.assertEqual((props["Threshold"], props["ComparisonOperator"]), (0.5, "GreaterThanThreshold"))
        # POSTs only: the challenge's GETs can neither mute it nor count.
        deliveries = RESOURCES["DeliveriesMetricFilter"]["Properties"]["FilterPattern"]
        failed = RESOURCES["FailedDeliveriesMetricFilter"]["Properties"]["FilterPattern"]
        for pattern in (deliveries, failed):
            self.assertIn('$.method = "POST"', pattern)
        self.assertIn('$.status != "200"', failed)
        (period,) = {m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m}
        # Fires after two failing periods, however quiet the rest: Nylas sends a failed
        # delivery again over 10 to 20 minutes, and marks the webhook failing at 15 minutes.
        self.assertEqual(props["DatapointsToAlarm"], 2)
        self.assertLessEqual(2 * period, 5 * 60)
        self.assertGreaterEqual(period * props["EvaluationPeriods"], 20 * 60)
        self.assertEqual(props["TreatMissingData"], "notBreaching")

    def test_api_5xx_counts_what_nylas_does_not_retry_never_the_function_s_503(self):
        pattern = RESOURCES["ServerErrorsMetricFilter"]["Properties"]["FilterPattern"]
        self.assertEqual(pattern, '{ $.status = "5*" && $.status != "503" }')
        self.assertEqual(self.metrics(self.alarms["Api5xxAlarm"]), {"m": ("NylasWebhookSqs", "ServerErrors")})

    def test_no_alarm_topic_uses_the_aws_managed_sns_key(self):
        # CloudWatch cannot use alias/aws/sns: no alarm would ever be delivered.
        for name, topic in resources_of("AWS::SNS::Topic").items():
            self.assertNotIn("alias/aws/sns", str(topic["Properties"].get("KmsMasterKeyId")), name)


class ConsumerTest(unittest.TestCase):
    def test_only_deploy_consumer_true_deploys_it(self):
        self.assertEqual(PARAMETERS["DeployConsumer"]["Default"], "false")
        self.assertEqual(TEMPLATE["Conditions"]["DeploysConsumer"], {"Fn::Equals": [{"Ref": "DeployConsumer"}, "true"]})
        consumer = [n for n, r in RESOURCES.items() if r.get("Condition") == "DeploysConsumer"]
        expected = {"ConsumerFunction", "IdempotencyTable", "ConsumerRole", "ConsumerLogGroup",
                    "ConsumerFailuresAlarm", "ConsumerErrorsAlarm"}
        self.assertEqual(set(consumer), expected)
        for name, resource in RESOURCES.items():
            if name not in expected:
                self.assertNotIn("Consumer", str(resource), f"{name} would need the consumer")

    def test_the_sam_build_makes_the_example_consumer(self):
        cargo = tomllib.loads((ROOT / "consumer" / "Cargo.toml").read_text())
        (binary,) = cargo["bin"]
        self.assertEqual(CONSUMER["Metadata"]["BuildProperties"]["Binary"], binary["name"])
        self.assertEqual(CONSUMER_PROPS["CodeUri"], "consumer", "its package, a workspace member")

    def test_the_queue_hands_over_batches_with_partial_failures(self):
        (event,) = CONSUMER_PROPS["Events"].values()
        props = event["Properties"]
        self.assertEqual((event["Type"], props["Queue"]), ("SQS", {"Fn::GetAtt": ["NotificationQueue", "Arn"]}))
        self.assertEqual(props["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertEqual(props["ScalingConfig"]["MaximumConcurrency"], {"Ref": "ConsumerMaximumConcurrency"})
        self.assertLessEqual(props["BatchSize"], 10, "10 is the most a FIFO queue hands over")
        queue = RESOURCES["NotificationQueue"]["Properties"]
        # AWS's rule for an SQS trigger: at least six times the function's timeout.
        self.assertGreaterEqual(queue["VisibilityTimeout"], 6 * CONSUMER_PROPS["Timeout"])

    def test_the_table_is_the_one_the_code_writes(self):
        code = consumer_source("idempotency.rs")
        table = RESOURCES["IdempotencyTable"]
        props = table["Properties"]
        self.assertEqual(props["KeySchema"], [{"AttributeName": "id", "KeyType": "HASH"}])
        self.assertIn('("id".to_owned()', code)
        ttl = props["TimeToLiveSpecification"]
        self.assertTrue(ttl["Enabled"])
        self.assertIn(f'("{ttl["AttributeName"]}".to_owned(), seconds(', code, "TTL reads Unix seconds")
        self.assertEqual(props["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual((table["DeletionPolicy"], table["UpdateReplacePolicy"]), ("Retain", "Retain"))
        variable = CONSUMER_PROPS["Environment"]["Variables"]
        self.assertEqual(list(variable), ["IDEMPOTENCY_TABLE", "DEAD_LETTER_QUEUE_URL", "MAX_RECEIVE_COUNT"])
        self.assertIn('var("IDEMPOTENCY_TABLE")', consumer_source("lib.rs"))
        self.assertEqual(variable["IDEMPOTENCY_TABLE"], {"Ref": "IdempotencyTable"})

    def test_a_fifo_poison_message_is_dead_lettered_on_the_redrive_s_last_receive(self):
        variable = CONSUMER_PROPS["Environment"]["Variables"]
        redrive = RESOURCES["NotificationQueue"]["Properties"]["RedrivePolicy"]
        self.assertEqual(variable["MAX_RECEIVE_COUNT"], redrive["maxReceiveCount"])
        self.assertEqual(variable["DEAD_LETTER_QUEUE_URL"], {"Ref": "DeadLetterQueue"})
        self.assertEqual(redrive["deadLetterTargetArn"], {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
        for name in ("DEAD_LETTER_QUEUE_URL", "MAX_RECEIVE_COUNT"):
            self.assertIn(f'var("{name}")', consumer_source("lib.rs"))

    def test_the_consumer_may_do_what_it_does_and_no_more(self):
        self.assertEqual(CONSUMER_PROPS["Role"], {"Fn::GetAtt": ["ConsumerRole", "Arn"]})
        granted = {
            (action, str(s["Resource"]))
            for s in statements(CONSUMER_ROLE)
            for action in as_list(s["Action"])
            if not action.startswith(("xray:", "logs:"))
        }
        queue, table = str({"Fn::GetAtt": ["NotificationQueue", "Arn"]}), str({"Fn::GetAtt": ["IdempotencyTable", "Arn"]})
        dead = str({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
        self.assertEqual(granted, {
            ("sqs:ReceiveMessage", queue), ("sqs:DeleteMessage", queue), ("sqs:GetQueueAttributes", queue),
            ("dynamodb:PutItem", table), ("dynamodb:DeleteItem", table), ("sqs:SendMessage", dead),
        })
        self.assertIn(".send_message()", consumer_source("dead_letter.rs"))
        code = consumer_source("idempotency.rs")
        for call in (".put_item()", ".delete_item()"):
            self.assertIn(call, code)
        for call in (".get_item()", ".update_item()", ".query()"):
            self.assertNotIn(call, code, "a call the role does not allow")
        (logs,) = allowed("logs:PutLogEvents", CONSUMER_ROLE)
        self.assertIn(f"log-group:/aws/lambda/{CONSUMER_PROPS['FunctionName']['Fn::Sub']}:*", logs["Fn::Sub"])

    def test_consumer_failures_raise_an_alarm(self):
        failures = RESOURCES["ConsumerFailuresAlarm"]["Properties"]
        self.assertEqual((failures["Namespace"], failures["MetricName"]), ("NylasWebhookSqs", "Failed"))
        self.assertEqual(failures["Dimensions"], [{"Name": "FunctionName", "Value": {"Ref": "ConsumerFunction"}}])
        self.assertIn('"Failed"', consumer_source("log.rs"))
        errors = RESOURCES["ConsumerErrorsAlarm"]["Properties"]
        self.assertEqual(errors["Dimensions"][0]["Value"], {"Ref": "ConsumerFunction"})


def headings(path):
    """The sections of a Markdown file: (title, GitHub's anchor for it)."""
    titles = [line.lstrip("#").strip() for line in path.read_text().splitlines() if re.match(r"#+ ", line)]
    return {title: re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for title in titles}


# `README, "Section"`, `docs/x.md, "Section"` and `docs/x.md's "Section"`, also broken across
# comment lines (`//`, `//!`, `#`) and inside Rust strings (\").
CITATION = re.compile(r'(README|docs/[\w-]+\.md)(?:\'s\s+|,\s*(?:(?://!?|#)\s*)?)\\?"([^"\\\n]+)\\?"')
# In Markdown: `[text](docs/x.md), "Section"` and links with an anchor.
LINK = re.compile(r'\]\(((?:docs/)?[\w-]+\.md)?(#[\w-]+)?\)(?:,\s*"([^"]+)")?')


class ReadmeTest(unittest.TestCase):
    DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

    def test_every_section_a_message_a_comment_or_a_doc_cites_exists(self):
        sources = [*(ROOT / "src").glob("*.rs"), *(ROOT / "scripts").glob("*.py"), *(ROOT / "tests").glob("*.rs"),
                   *(ROOT / "tests").glob("*.py"), *(ROOT / "consumer" / "src").rglob("*.rs"),
                   *(ROOT / "contract" / "src").glob("*.rs"), ROOT / "template.yaml", ROOT / ".ci" / "run",
                   ROOT / "Makefile", *self.DOCS]
        cited = {(path.relative_to(ROOT), document, section)
                 for path in sources if path.name != "template_test.py"
                 for document, section in CITATION.findall(path.read_text())}
        self.assertGreater(len({document for _, document, _ in cited}), 4, "README and docs are cited")
        for path, document, section in sorted(cited):
            target = ROOT / ("README.md" if document == "README" else document)
            self.assertTrue(target.is_file(), f"{path} cites {document}, which does not exist")
            self.assertIn(section, headings(target), f"{path} cites a section of {document} that does not exist")

    def test_every_link_between_readme_and_docs_reaches_a_file_and_a_section(self):
        links = 0
        for path in self.DOCS:
            for target, anchor, section in LINK.findall(path.read_text()):
                links += 1
                document = (path.parent / target).resolve() if target else path
                self.assertTrue(document.is_file(), f"{path.name} links to {target}, which does not exist")
                if anchor:
                    self.assertIn(anchor[1:], headings(document).values(), f"{path.name}: {target}{anchor}")
                if section:
                    section = " ".join(section.split())
                    self.assertIn(section, headings(document), f"{path.name} cites {target}, \"{section}\"")
        self.assertGreater(links, 20)

    def test_readme_is_a_first_hour_read_and_names_every_alarm_of_the_stack(self):
        readme = (ROOT / "README.md").read_text()
        self.assertLessEqual(len(readme.splitlines()), 300)
        operations = (ROOT / "docs" / "operations.md").read_text()
        alarms = [name[: -len("Alarm")] for name, resource in RESOURCES.items()
                  if resource["Type"] == "AWS::CloudWatch::Alarm"]
        self.assertGreaterEqual(len(alarms), 12)
        for alarm in alarms:
            self.assertIn(f"`{alarm}`", readme.split("\n## Alarms\n")[1].split("\n## ")[0], alarm)
            self.assertRegex(operations, rf"\n\| `{alarm}`", f"{alarm} has a row in docs/operations.md's table")

    def test_dated_figures_live_only_in_docs_performance(self):
        for path in self.DOCS:
            if path.name != "performance.md":
                # A date, not a time in an example command (FROM=2026-12-06T08:00:00Z).
                self.assertNotRegex(path.read_text(), r"20\d\d-\d\d-\d\d(?!T)", f"{path.name} holds a dated figure")


if __name__ == "__main__":
    summary.run(verbosity=2)
