//! The text of each generated region, from the functions' metadata. Plain
//! `format!` rather than a YAML serializer: the output keeps CloudFormation's
//! short tags (`!Ref`, `!GetAtt`), the flow style of the hand-written
//! template and a fixed order, so the same metadata always gives the same bytes.

use std::collections::BTreeMap;

use super::metadata::{Function, Kind, Method, Resource, Resources, Route, Statement, Trigger, pascal};

/// template.yaml: every function's Function, Role, LogGroup and DeploymentAlarm,
/// API functions first, then queue consumers, then scheduled functions.
pub fn template_functions(functions: &[Function]) -> String {
    let sections = [
        (Kind::Api, "API functions: one per route"),
        (
            Kind::Consumer,
            "queue consumers: each reads one queue in batches, reports partial failures\n  # and parks poison messages in its queue's dead-letter queue itself",
        ),
        (
            Kind::Scheduled,
            "scheduled functions: one run at a time; a schedule event that run cannot\n  # take is dropped, not retried or queued (the next run does the same work)",
        ),
    ];
    let mut blocks = Vec::new();
    for (kind, heading) in sections {
        let mut first = true;
        for function in functions.iter().filter(|f| f.trigger.kind() == kind) {
            let mut block = String::new();
            if first {
                block.push_str(&format!("  # {heading}\n"));
                first = false;
            }
            block.push_str(&function_resource(function));
            blocks.push(block);
            blocks.push(role(function));
            blocks.push(log_group(function));
            blocks.push(deployment_alarm(function));
        }
    }
    blocks.join("\n")
}

fn function_resource(function: &Function) -> String {
    let id = pascal(&function.package);
    let mut out = format!(
        "  {id}Function:\n    Type: AWS::Serverless::Function\n    Properties:\n      Description: {}\n      CodeUri: target/lambda/{}/\n",
        scalar(&function.description),
        function.package
    );
    if let Some(memory) = function.memory {
        out.push_str(&format!("      MemorySize: {memory}\n"));
    }
    if let Some(timeout) = function.timeout {
        out.push_str(&format!("      Timeout: {timeout}\n"));
    }
    if let Some(reserved) = function.reserved_concurrency {
        out.push_str(&format!("      ReservedConcurrentExecutions: {reserved}\n"));
    }
    if function.timeout.is_some() || !function.env_parameters.is_empty() {
        out.push_str("      Environment:\n        Variables:\n");
        if let Some(timeout) = function.timeout {
            // The SDK timeouts follow the function's own (the stack check keeps them equal).
            out.push_str(&format!("          FUNCTION_TIMEOUT_SECONDS: \"{timeout}\"\n"));
        }
        for (name, parameter) in &function.env_parameters {
            out.push_str(&format!("          {name}: !Ref {parameter}\n"));
        }
    }
    if matches!(function.trigger, Trigger::Schedule(_)) {
        out.push_str(
            "      EventInvokeConfig:\n        MaximumRetryAttempts: 0\n        MaximumEventAgeInSeconds: 60\n",
        );
    }
    out.push_str(&format!(
        "      LoggingConfig:\n        LogFormat: JSON\n        ApplicationLogLevel: INFO\n        SystemLogLevel: INFO\n        LogGroup: !Ref {id}LogGroup\n      Events:\n"
    ));
    match &function.trigger {
        Trigger::Route(route) => out.push_str(&format!(
            "        Api:\n          Type: Api\n          Properties: {{RestApiId: !Ref Api, Path: {}, Method: {}}}\n",
            scalar(&route.path),
            route.method.as_str()
        )),
        Trigger::Queue(queue) => out.push_str(&format!(
            "        Queue:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Queues.Outputs.{}QueueArn\n            BatchSize: {}\n            MaximumBatchingWindowInSeconds: {}\n            FunctionResponseTypes: [ReportBatchItemFailures]\n            ScalingConfig: {{MaximumConcurrency: {}}}\n",
            pascal(&queue.name),
            queue.batch_size,
            queue.batching_window_seconds,
            queue.max_concurrency
        )),
        Trigger::Schedule(schedule) => out.push_str(&format!(
            "        Schedule:\n          Type: Schedule\n          Properties:\n            Schedule: {}\n            RetryPolicy:\n              MaximumRetryAttempts: 0\n              MaximumEventAgeInSeconds: 60\n",
            scalar(schedule)
        )),
    }
    out.push_str(&format!(
        "      Role: !GetAtt {id}Role.Arn\n      DeploymentPreference:\n        Alarms: [!Ref {id}DeploymentAlarm]\n"
    ));
    out
}

fn role(function: &Function) -> String {
    let id = pascal(&function.package);
    let package = &function.package;
    let mut out = format!(
        "  {id}Role:
    Type: AWS::IAM::Role
    Properties:
      Description: Execution role of {package}
      AssumeRolePolicyDocument:
        Version: \"2012-10-17\"
        Statement:
          - Effect: Allow
            Principal: {{Service: lambda.amazonaws.com}}
            Action: sts:AssumeRole
      ManagedPolicyArns: [!Ref FunctionTracingPolicy]
      Policies:
        - PolicyName: {package}
          PolicyDocument:
            Version: \"2012-10-17\"
            Statement:
              # Used by Lambda for the function (not by its code):
              - Sid: WritesItsOwnLogGroup
                Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !GetAtt {id}LogGroup.Arn
"
    );
    if let Trigger::Queue(queue) = &function.trigger {
        out.push_str(&format!(
            "              - Sid: ReadsItsQueue
                Effect: Allow
                Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]
                Resource: !GetAtt Queues.Outputs.{}QueueArn
",
            pascal(&queue.name)
        ));
    }
    if !function.allow.is_empty() {
        out.push_str("              # Used by its code (checked against its calls by cargo xtask test):\n");
    }
    for statement in &function.allow {
        out.push_str(&statement_text(statement));
    }
    out
}

fn statement_text(statement: &Statement) -> String {
    let mut out = String::new();
    if let Some(reason) = &statement.unconditioned {
        // The metadata's reason, beside the statement a reviewer reads.
        for line in format!("Every partition, because: {reason}").lines() {
            out.push_str(&format!("              # {}\n", line.trim()));
        }
    }
    out.push_str(&format!(
        "              - Effect: Allow\n                Action: [{}]\n",
        statement.actions.join(", ")
    ));
    match &statement.resources {
        Resources::One(resource) => out.push_str(&format!("                Resource: {}\n", resource_ref(resource))),
        Resources::List(resources) => {
            out.push_str("                Resource:\n");
            for resource in resources {
                out.push_str(&format!("                  - {}\n", resource_ref(resource)));
            }
        }
    }
    // IAM evaluates dynamodb:LeadingKeys on the partition key value each item
    // or query names: a transaction's items one by one as PutItem, UpdateItem,
    // DeleteItem or ConditionCheckItem, a Query on an index by the index's
    // partition key (on the index ARN). See adapters::recorder.
    if !statement.leading_keys.is_empty() {
        let keys: Vec<String> = statement.leading_keys.iter().map(|key| quoted(key)).collect();
        out.push_str(&format!(
            "                Condition:\n                  ForAllValues:StringLike:\n                    dynamodb:LeadingKeys: [{}]\n",
            keys.join(", ")
        ));
    }
    out
}

fn resource_ref(resource: &Resource) -> String {
    match resource {
        Resource::Table => "!GetAtt Data.Outputs.TableArn".to_owned(),
        Resource::Index(name) => {
            format!("!Sub [\"${{TableArn}}/index/{name}\", {{TableArn: !GetAtt Data.Outputs.TableArn}}]")
        }
        Resource::TokenSigningKey => "!GetAtt Security.Outputs.TokenSigningKeySecretArn".to_owned(),
        Resource::TokenSigningKmsKey => "!GetAtt Security.Outputs.TokenSigningKmsKeyArn".to_owned(),
        Resource::TokenPublicKeys => "!GetAtt Security.Outputs.TokenPublicKeysSecretArn".to_owned(),
        Resource::CursorKey => "!GetAtt Security.Outputs.CursorKeySecretArn".to_owned(),
        Resource::SenderIdentity => "!If [UsesSenderAddressIdentity, \
             !Sub \"arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}\", \
             !Sub \"arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderDomain}\"]"
            .to_owned(),
        Resource::Queue(name) => format!("!GetAtt Queues.Outputs.{}QueueArn", pascal(name)),
        Resource::DeadLetterQueue(name) => format!("!GetAtt Queues.Outputs.{}DeadLetterQueueArn", pascal(name)),
    }
}

fn log_group(function: &Function) -> String {
    format!(
        "  {}LogGroup:
    Type: AWS::Logs::LogGroup
    DeletionPolicy: RetainExceptOnCreate
    UpdateReplacePolicy: Retain
    Properties:
      LogGroupName: !Sub \"/aws/lambda/shop-${{Environment}}/{}\"
      RetentionInDays: !Ref LogRetentionDays
",
        pascal(&function.package),
        function.package
    )
}

/// Errors and throttles of the live alias's new version, and for an API
/// function its 5xx responses (the ServerErrors metric of that version).
fn deployment_alarm(function: &Function) -> String {
    let id = pascal(&function.package);
    let package = &function.package;
    let api = matches!(function.trigger, Trigger::Route(_));
    let (what, expression, label) = if api {
        (
            "errors, throttles or 5xx responses",
            "SUM([errors, throttles, server_errors])",
            "errors, throttles or 5xx responses",
        )
    } else if function.reports_records {
        (
            "errors, throttles or records failed or parked",
            "SUM([errors, throttles, records_failed])",
            "errors, throttles or records failed or parked",
        )
    } else {
        ("errors or throttles", "SUM([errors, throttles])", "errors or throttles")
    };
    let mut out = format!(
        "  {id}DeploymentAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: {package} live version {what} (rolls back its deployment)
      ComparisonOperator: GreaterThanThreshold
      Threshold: 0
      EvaluationPeriods: 1
      DatapointsToAlarm: 1
      TreatMissingData: notBreaching
      AlarmActions: [!GetAtt Monitoring.Outputs.LowUrgencyTopicArn]
      Metrics:
        - Id: failures
          Expression: \"{expression}\"
          Label: {label}
        - Id: errors
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: Errors
              Dimensions:
                - {{Name: FunctionName, Value: !Ref {id}Function}}
                - {{Name: Resource, Value: !Sub \"${{{id}Function}}:live\"}}
                - {{Name: ExecutedVersion, Value: !GetAtt {id}Function.Version.Version}}
            Period: 60
            Stat: Sum
        - Id: throttles
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: Throttles
              Dimensions:
                - {{Name: FunctionName, Value: !Ref {id}Function}}
                - {{Name: Resource, Value: !Sub \"${{{id}Function}}:live\"}}
            Period: 60
            Stat: Sum
"
    );
    // A consumer reports a failed record back to SQS and succeeds: Lambda's
    // Errors never sees a bad version that fails every record.
    if function.reports_records {
        out.push_str(&own_metric_of_new_version("records_failed", "RecordsFailed", package, &id));
    }
    if api {
        out.push_str(&own_metric_of_new_version("server_errors", "ServerErrors", package, &id));
    }
    out
}

/// One of the functions' own metrics (EMF, `MetricsNamespace`), summed over a
/// minute for the new version only: a metric query of a deployment alarm.
fn own_metric_of_new_version(query_id: &str, metric: &str, package: &str, id: &str) -> String {
    format!(
        "        - Id: {query_id}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: !Ref MetricsNamespace
              MetricName: {metric}
              Dimensions:
                - {{Name: Service, Value: shop}}
                - {{Name: Environment, Value: !Ref Environment}}
                - {{Name: Function, Value: {package}}}
                - {{Name: Version, Value: !GetAtt {id}Function.Version.Version}}
            Period: 60
            Stat: Sum
"
    )
}

/// The API paths with their routes, paths in order, methods in the order of [`Method`].
fn routes(functions: &[Function]) -> BTreeMap<&str, Vec<(Method, &str)>> {
    let mut paths: BTreeMap<&str, Vec<(Method, &str)>> = BTreeMap::new();
    for function in functions {
        if let Trigger::Route(Route { method, path }) = &function.trigger {
            paths.entry(path.as_str()).or_default().push((*method, function.package.as_str()));
        }
    }
    for methods in paths.values_mut() {
        methods.sort_unstable();
    }
    paths
}

/// template.yaml, under the API's `paths:`: every path's OPTIONS, a mock
/// integration API Gateway answers itself (see Mappings.Preflight).
pub fn preflights(functions: &[Function]) -> String {
    let mut out = String::new();
    for path in routes(functions).keys() {
        out.push_str(&format!(
            "          {}:
            options:
              summary: CORS preflight, answered by API Gateway (Mappings.Preflight)
              responses:
                \"204\":
                  description: the preflight's answer
                  headers:
                    X-Content-Type-Options: {{schema: {{type: string}}}}
                    X-Frame-Options: {{schema: {{type: string}}}}
                    Strict-Transport-Security: {{schema: {{type: string}}}}
                    Content-Security-Policy: {{schema: {{type: string}}}}
                    Referrer-Policy: {{schema: {{type: string}}}}
                    Cache-Control: {{schema: {{type: string}}}}
                    Vary: {{schema: {{type: string}}}}
                    Access-Control-Allow-Origin: {{schema: {{type: string}}}}
                    Access-Control-Expose-Headers: {{schema: {{type: string}}}}
                    Access-Control-Allow-Methods: {{schema: {{type: string}}}}
                    Access-Control-Allow-Headers: {{schema: {{type: string}}}}
                    Access-Control-Max-Age: {{schema: {{type: string}}}}
              x-amazon-apigateway-integration:
                type: mock
                passthroughBehavior: when_no_match
                requestTemplates: {{application/json: '{{\"statusCode\": 200}}'}}
                responses:
                  default:
                    statusCode: \"204\"
                    responseParameters:
                      method.response.header.X-Content-Type-Options: \"'nosniff'\"
                      method.response.header.X-Frame-Options: \"'DENY'\"
                      method.response.header.Strict-Transport-Security: \"'max-age=31536000; includeSubDomains'\"
                      method.response.header.Content-Security-Policy: \"'default-src 'self'; frame-ancestors 'none''\"
                      method.response.header.Referrer-Policy: \"'no-referrer'\"
                      method.response.header.Cache-Control: \"'no-store'\"
                      method.response.header.Vary: \"'Origin'\"
                    responseTemplates:
                      application/json: !Join
                        - \"\\n\"
                        - - !Sub ['#set($allowed = [\"${{Origins}}\"])##', {{Origins: !Join ['\", \"', !Split [\",\", !Ref CorsAllowedOrigins]]}}]
                          - !FindInMap [Preflight, Answer, Template]
",
            scalar(path)
        ));
    }
    out
}

/// Cargo.toml: `[workspace.metadata.lambda.watch.router]`, every API route.
pub fn watch_router(functions: &[Function]) -> String {
    let mut out = String::from("[workspace.metadata.lambda.watch.router]\n");
    for (path, methods) in routes(functions) {
        out.push_str(&format!("{} = [\n", quoted(path)));
        for (method, package) in methods {
            out.push_str(&format!("    {{ method = \"{}\", function = \"{package}\" }},\n", method.as_str()));
        }
        out.push_str("]\n");
    }
    out
}

/// infra/monitoring.yaml: each consumer's alarm on the messages it failed.
pub fn consumer_alarms(functions: &[Function]) -> String {
    let mut blocks = Vec::new();
    for function in functions {
        let Trigger::Queue(queue) = &function.trigger else { continue };
        blocks.push(format!(
            "  {id}FailuresAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: {package} failed {queue} messages for 10 minutes (they are being retried)
      Namespace: !Ref MetricsNamespace
      MetricName: MessagesFailed
      Dimensions:
        - {{Name: Service, Value: !Ref ServiceName}}
        - {{Name: Environment, Value: !Ref Environment}}
        - {{Name: Function, Value: {package}}}
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 2
      DatapointsToAlarm: 2
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref LowUrgencyTopic]
      OKActions: [!Ref LowUrgencyTopic]
",
            id = pascal(&function.package),
            package = function.package,
            queue = queue.name
        ));
    }
    blocks.join("\n")
}

/// infra/monitoring.yaml: the conflicts alarm, summed over every function
/// whose metadata says it runs transactions.
pub fn transaction_conflicts_alarm(functions: &[Function]) -> String {
    let runs: Vec<&Function> = functions.iter().filter(|f| f.transactions).collect();
    let ids: Vec<String> = (0..runs.len()).map(|i| format!("c{i}")).collect();
    let mut out = format!(
        "  TransactionConflictsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: more than 50 DynamoDB transaction conflicts in each of two 5-minute windows (hot items)
      ComparisonOperator: GreaterThanThreshold
      Threshold: 50
      EvaluationPeriods: 2
      DatapointsToAlarm: 2
      TreatMissingData: notBreaching
      AlarmActions: [!Ref LowUrgencyTopic]
      OKActions: [!Ref LowUrgencyTopic]
      Metrics:
        - Id: conflicts
          Expression: \"SUM([{}])\"
          Label: transaction conflicts
",
        ids.join(", ")
    );
    for (id, function) in ids.iter().zip(runs) {
        out.push_str(&format!(
            "        - Id: {id}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: !Ref MetricsNamespace
              MetricName: TransactionConflicts
              Dimensions: [{{Name: Service, Value: !Ref ServiceName}}, {{Name: Environment, Value: !Ref Environment}}, {{Name: Function, Value: {}}}]
            Period: 300
            Stat: Sum
",
            function.package
        ));
    }
    out
}

/// infra/monitoring.yaml: each API function's cold-start rate alarm.
pub fn cold_start_alarms(functions: &[Function]) -> String {
    let mut blocks = Vec::new();
    for function in functions.iter().filter(|f| matches!(f.trigger, Trigger::Route(_))) {
        let metric = |id: &str, name: &str| {
            format!(
                "        - Id: {id}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: !Ref MetricsNamespace
              MetricName: {name}
              Dimensions: [{{Name: Service, Value: !Ref ServiceName}}, {{Name: Environment, Value: !Ref Environment}}, {{Name: Function, Value: {}}}]
            Period: 300
            Stat: Sum
",
                function.package
            )
        };
        blocks.push(format!(
            "  {}ColdStartAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: {} cold starts above 10% of its requests (at least 60 per 5 minutes) for 15 minutes
      ComparisonOperator: GreaterThanThreshold
      Threshold: 10
      EvaluationPeriods: 3
      DatapointsToAlarm: 3
      TreatMissingData: notBreaching
      AlarmActions: [!Ref LowUrgencyTopic]
      OKActions: [!Ref LowUrgencyTopic]
      Metrics:
        - Id: rate
          Expression: \"IF(requests >= 60, 100 * cold / requests, 0)\"
          Label: cold starts (% of requests)
{}{}",
            pascal(&function.package),
            function.package,
            metric("cold", "ColdStart"),
            metric("requests", "Requests")
        ));
    }
    blocks.join("\n")
}

/// A YAML scalar: plain when that reads back as the same string, else double-quoted.
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
        && !text.ends_with(' ')
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains(|c: char| "{}[],".contains(c) || c.is_control())
        && text.parse::<f64>().is_err()
        && !["true", "false", "yes", "no", "on", "off", "null", "~"].contains(&text.to_ascii_lowercase().as_str());
    if plain { text.to_owned() } else { quoted(text) }
}

/// A double-quoted string, valid in both YAML and TOML (JSON's escapes).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::codegen::metadata::parse;

    fn function(deploy: &str) -> Function {
        let queues: BTreeSet<String> = ["email-send".to_owned()].into();
        parse(&format!("[package]\nname = \"do-thing\"\n\n[package.metadata.deploy]\n{deploy}"), &queues).unwrap()
    }

    #[test]
    fn a_function_of_its_own_timeout_tells_its_code_that_timeout() {
        let text = function_resource(&function("route = { method = \"GET\", path = \"/api/v1/x\" }\ntimeout = 30\n"));
        assert!(text.contains("      Timeout: 30\n"), "{text}");
        assert!(text.contains("          FUNCTION_TIMEOUT_SECONDS: \"30\"\n"), "{text}");
    }

    #[test]
    fn a_consumer_reads_its_queue_and_alarms_on_failed_messages_but_has_no_cold_start_alarm() {
        let consumer = function(
            "description = \"Queue consumer\"\nqueue = { name = \"email-send\", batch-size = 10, \
             batching-window-seconds = 1, max-concurrency = 2 }\n",
        );
        assert!(role(&consumer).contains("Sid: ReadsItsQueue"));
        assert!(!deployment_alarm(&consumer).contains("server_errors"));
        assert!(
            deployment_alarm(&consumer).contains("MetricName: RecordsFailed"),
            "its failed and parked records, by version"
        );
        let functions = [consumer];
        assert!(consumer_alarms(&functions).contains("  DoThingFailuresAlarm:\n"));
        assert!(cold_start_alarms(&functions).is_empty());
        assert!(preflights(&functions).is_empty());
    }

    #[test]
    fn scalars_that_yaml_would_misread_are_quoted() {
        assert_eq!(scalar("GET /api/v1/health"), "GET /api/v1/health");
        assert_eq!(scalar("/api/v1/orders/{id}"), "\"/api/v1/orders/{id}\"");
        assert_eq!(scalar("rate(1 minute)"), "rate(1 minute)");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("yes # no"), "\"yes # no\"");
        assert_eq!(scalar("10"), "\"10\"");
        assert_eq!(scalar("No"), "\"No\"");
    }
}
